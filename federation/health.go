package federation

import (
	"fmt"
	"time"
)

// Cluster health states.
const (
	Healthy  = "Healthy"
	Suspect  = "Suspect"
	Degraded = "Degraded"
	Down     = "Down"
	Cordoned = "Cordoned"
)

// AgentHealth is what the leader knows of one agent of a cluster.
type AgentHealth struct {
	// Name of the agent, for reasons.
	Name string
	// Ready: the agent heartbeated within its TTL.
	Ready bool
	// BrokerReachable: the agent could reach the cluster's broker at its last probe.
	BrokerReachable bool
	// BrokerAuthError is the agent's last report of its cluster's broker
	// refusing its credential, naming the credential and the broker's
	// answer. Empty: no refusal.
	BrokerAuthError string
}

// ClusterHealth derives a cluster's health from its agents: Down when no
// agent is ready; Degraded when a ready agent reports that the broker
// refused its credential (the reason quotes the first such agent's report,
// by name); Down when every ready agent reports the broker unreachable,
// Suspect when only some of them are fine, Healthy otherwise. A cordoned
// cluster is Cordoned whatever its agents say.
func ClusterHealth(cordoned bool, agents []AgentHealth) (health, reason string) {
	if cordoned {
		return Cordoned, "cordoned by an operator"
	}
	if len(agents) == 0 {
		return Down, "no agent registered for this cluster"
	}
	ready, reach, refused := 0, 0, 0
	var first *AgentHealth
	for i, a := range agents {
		if a.Ready {
			ready++
			if a.BrokerReachable {
				reach++
			}
			if a.BrokerAuthError != "" {
				refused++
				if first == nil || a.Name < first.Name {
					first = &agents[i]
				}
			}
		}
	}
	switch {
	case ready == 0:
		return Down, fmt.Sprintf("none of %d agents is heartbeating", len(agents))
	case refused > 0:
		reason := fmt.Sprintf("agent %s: %s", first.Name, first.BrokerAuthError)
		if refused > 1 {
			reason += fmt.Sprintf(" (%d of %d ready agents report a refused credential)", refused, ready)
		}
		return Degraded, reason
	case reach == 0:
		return Down, fmt.Sprintf("all %d ready agents report the broker unreachable", ready)
	case ready < len(agents) || reach < ready:
		return Suspect, fmt.Sprintf("%d of %d agents ready, %d reach the broker", ready, len(agents), reach)
	}
	return Healthy, fmt.Sprintf("%d agents ready", ready)
}

// ClusterView is what placement knows of a cluster's health.
type ClusterView struct {
	Health string
	// Since is when Health last changed.
	Since time.Time
	// LastDown is when the cluster last went Down or was cordoned.
	LastDown time.Time
	// NoAgents: no agent ever registered for the cluster. Its functions
	// wait for it rather than fail over: a federation that is still coming
	// up is not an outage.
	NoAgents bool
}

// Usable clusters run instances: Healthy, Suspect or Degraded (a suspect
// or degraded cluster keeps its work; only a Down or Cordoned one loses
// it). A Degraded cluster's broker is up but refuses a credential: moving
// its work would not fix the credential, and its instances resume where
// they stopped once it is fixed.
func (v ClusterView) Usable() bool {
	return v.Health == Healthy || v.Health == Suspect || v.Health == Degraded
}

// stableFor reports whether the cluster has been Healthy for at least d.
func (v ClusterView) stableFor(d time.Duration, now time.Time) bool {
	return v.Health == Healthy && now.Sub(v.Since) >= d
}
