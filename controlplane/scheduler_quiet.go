package controlplane

import (
	"slices"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// quietMaxAge bounds how long the scheduler goes without a full pass
// while its inputs stay unchanged: a backstop for any input a pass reads
// that the quiet check does not cover.
const quietMaxAge = 10 * time.Second

// quietPass decides whether a scheduler pass can be skipped because
// nothing it reads changed since the last full pass, and that pass found
// nothing to do. A pass reads the store, the agents' heartbeats and the
// clock; the store is unchanged while its revision is, the heartbeats are
// compared agent by agent, and the clock matters only while something
// waits on it (see settle). Used by the scheduler goroutine only.
type quietPass struct {
	// store and rev are the store and its revision the last full pass
	// read, when it wrote nothing and nothing waited on the clock; store
	// nil: the next pass is a full one.
	store *state.Store
	rev   uint64
	// health is each agent's health as the last full pass saw it.
	health []federation.AgentHealth
	// at is when the last full pass ran.
	at time.Time
}

// unchanged reports whether a pass over st, whose agents are now as
// health says, would do what the last full pass did: nothing.
func (q *quietPass) unchanged(st *state.Store, health []federation.AgentHealth, now time.Time) bool {
	return q.store == st && st.Revision() == q.rev && now.Sub(q.at) < quietMaxAge && slices.Equal(q.health, health)
}

// settle records a full pass that began at revision rev, and whether it
// left anything waiting on the clock: a recovered cluster within its
// failback hold-down, an autoscaled function (samples arrive without
// writes), a mesh status whose counters were held back by their rate.
// A pass that wrote (the revision moved) is followed by a full one.
func (q *quietPass) settle(st *state.Store, rev uint64, health []federation.AgentHealth, now time.Time, waiting bool) {
	q.store, q.rev, q.health, q.at = nil, 0, health, now
	if waiting || st.Revision() != rev {
		return
	}
	q.store, q.rev = st, rev
}

// agentHealth is every agent's health from its heartbeats, in the order
// of agentObjs.
func (s *Server) agentHealth(agentObjs []*meshfedv1.Object) []federation.AgentHealth {
	out := make([]federation.AgentHealth, len(agentObjs))
	for i, o := range agentObjs {
		name := o.GetAgent().GetMetadata().GetName()
		ready := s.heartbeats.alive(name)
		out[i] = federation.AgentHealth{Name: name, Ready: ready, BrokerReachable: ready && s.heartbeats.brokerReachable(name),
			BrokerAuthError: s.heartbeats.brokerAuthError(name)}
	}
	return out
}

// waitsOnClock reports whether a pass that wrote nothing may still
// decide differently later with nothing else changed: a function the
// autoscaler sizes (its samples arrive without writes), or placement
// keeping a function in a fallback cluster while its home cluster is
// Healthy but within the failback hold-down (it fails back when the
// hold-down ends; federation.Plan.WaitsOnClock).
func waitsOnClock(meshes []*meshfedv1.FunctionMesh, placementWaits bool) bool {
	if placementWaits {
		return true
	}
	for _, m := range meshes {
		for _, f := range m.GetSpec().GetFunctions() {
			if f.GetAutoscaling() != nil {
				return true
			}
		}
	}
	return false
}
