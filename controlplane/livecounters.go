package controlplane

import (
	"sync"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// liveCounters keeps, in the leader's memory only, the newest status each
// instance reported. Instance counters change on every report; writing each
// one through Raft would make every report a log entry sent to every server
// and every watching agent. The leader writes a report through Raft when
// something other than the counters changed (state, since, last error, the
// agent) and otherwise at most once per interval per assignment, and lays
// the newest counters over the reads it serves. A new leader starts empty:
// counters read from it are the last written until the next report.
type liveCounters struct {
	// interval bounds how often one assignment's counters alone are
	// written; zero or negative: every change is written.
	interval time.Duration

	// mu guards byKey.
	mu sync.Mutex
	// byKey holds, per assignment key, the newest report accepted.
	byKey map[string]*liveReport
}

// liveReport is the newest report of one assignment's instance.
type liveReport struct {
	epoch  uint64
	agent  string
	status *meshfedv1.InstanceStatus
	// written is when a report of it was last written through Raft; zero:
	// not yet in this leadership term.
	written time.Time
}

func newLiveCounters(interval time.Duration) *liveCounters {
	return &liveCounters{interval: interval, byKey: map[string]*liveReport{}}
}

// reset forgets every report: leadership began or ended.
func (c *liveCounters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKey = map[string]*liveReport{}
}

// report records got, reported by agent for the assignment at key with
// epoch, whose stored status is stored, and says whether to write it
// through Raft now.
func (c *liveCounters) report(key string, epoch uint64, agent string, got, stored *meshfedv1.InstanceStatus, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.byKey[key]
	if r == nil || r.epoch != epoch || r.agent != agent {
		r = &liveReport{epoch: epoch, agent: agent}
		c.byKey[key] = r
	}
	r.status = got
	if c.interval <= 0 || !sameTransition(got, stored) || now.Sub(r.written) >= c.interval {
		r.written = now
		return true
	}
	return false
}

// forget drops the reports of assignments keep rejects (deleted ones).
func (c *liveCounters) forget(keep func(key string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.byKey {
		if !keep(k) {
			delete(c.byKey, k)
		}
	}
}

// newer returns the report held for the assignment at key with epoch when
// it differs from stored in its counters only, else nil.
func (c *liveCounters) newer(key string, epoch uint64, stored *meshfedv1.InstanceStatus) *meshfedv1.InstanceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.byKey[key]
	if r == nil || r.epoch != epoch || !sameTransition(r.status, stored) || proto.Equal(r.status, stored) {
		return nil
	}
	return r.status
}

// overlay returns o with the newest counters laid over its status: an
// Assignment's own, a FunctionMesh's per instance. o is not changed; it is
// returned as is when nothing newer is held.
func (c *liveCounters) overlay(o *meshfedv1.Object) *meshfedv1.Object {
	switch {
	case o.GetAssignment() != nil:
		a := o.GetAssignment()
		st := c.newer(objects.KeyOf(o), a.GetSpec().GetEpoch(), a.GetStatus())
		if st == nil {
			return o
		}
		a = proto.CloneOf(a)
		a.Status = proto.CloneOf(st)
		return objects.Wrap(a)
	case o.GetFunctionMesh() != nil:
		return c.overlayMesh(o)
	}
	return o
}

// overlayMesh lays counters over a mesh's per-instance status. The mesh
// status does not carry epochs: an instance matches a report of the same
// agent and the same status but for the counters.
func (c *liveCounters) overlayMesh(o *meshfedv1.Object) *meshfedv1.Object {
	m := o.GetFunctionMesh()
	md := m.GetMetadata()
	var out *meshfedv1.FunctionMesh
	for i, fs := range m.GetStatus().GetFunctions() {
		for j, in := range fs.GetInstances() {
			key := objects.Key("Assignment", md.GetTenant(), md.GetNamespace(), federation.AssignmentName(md.GetName(), fs.GetName(), int(in.GetIndex())))
			var st *meshfedv1.InstanceStatus
			c.mu.Lock()
			if r := c.byKey[key]; r != nil && r.agent == in.GetAgent() {
				// The mesh status names the instance by its assignment's
				// spec, the report may not.
				st = proto.CloneOf(r.status)
				st.Index, st.Agent, st.Cluster = in.GetIndex(), in.GetAgent(), in.GetCluster()
				if !sameTransition(st, in) || sameCounters(st, in) {
					st = nil
				}
			}
			c.mu.Unlock()
			if st == nil {
				continue
			}
			if out == nil {
				out = proto.CloneOf(m)
			}
			copyCounters(out.GetStatus().GetFunctions()[i].GetInstances()[j], st)
		}
	}
	if out == nil {
		return o
	}
	return objects.Wrap(out)
}

// sameTransition reports whether a and b agree on everything but the counters.
func sameTransition(a, b *meshfedv1.InstanceStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := proto.CloneOf(a), proto.CloneOf(b)
	copyCounters(x, &meshfedv1.InstanceStatus{})
	copyCounters(y, &meshfedv1.InstanceStatus{})
	return proto.Equal(x, y)
}

func sameCounters(a, b *meshfedv1.InstanceStatus) bool {
	return a.GetReceived() == b.GetReceived() && a.GetProcessed() == b.GetProcessed() && a.GetFailed() == b.GetFailed() &&
		a.GetDeduplicated() == b.GetDeduplicated() && a.GetUnproven() == b.GetUnproven()
}

// copyCounters sets dst's counters to src's.
func copyCounters(dst, src *meshfedv1.InstanceStatus) {
	dst.Received, dst.Processed, dst.Failed = src.GetReceived(), src.GetProcessed(), src.GetFailed()
	dst.Deduplicated, dst.Unproven = src.GetDeduplicated(), src.GetUnproven()
}
