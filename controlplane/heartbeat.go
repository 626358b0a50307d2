package controlplane

import (
	"sync"
	"time"
)

// heartbeats tracks agents' last heartbeats in the leader's memory only. A
// new leader starts every known agent's timer afresh (the grace period), so
// a leader election alone never marks an agent down.
type heartbeats struct {
	ttl time.Duration
	now func() time.Time

	// mu guards seen, reachable and authErrors.
	mu   sync.Mutex
	seen map[string]time.Time
	// reachable is the broker probe result each agent last reported.
	reachable map[string]bool
	// authErrors is the refusal of its credential each agent last
	// reported; absent: none.
	authErrors map[string]string
	// changed receives a value (without blocking) when a heartbeat
	// changes what the scheduler would see: an agent not alive until now,
	// or a new broker report. Heartbeats write nothing, so without it the
	// scheduler would notice only at its next tick.
	changed chan struct{}
}

func newHeartbeats(ttl time.Duration, now func() time.Time) *heartbeats {
	return &heartbeats{ttl: ttl, now: now, seen: map[string]time.Time{}, reachable: map[string]bool{}, authErrors: map[string]string{},
		changed: make(chan struct{}, 1)}
}

// reset starts the grace period for the given agents.
func (h *heartbeats) reset(agents []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = map[string]time.Time{}
	now := h.now()
	for _, a := range agents {
		h.seen[a] = now
		h.reachable[a] = true
	}
}

// beat records a heartbeat: whether the agent reaches its broker and
// the broker's refusal of its credential ("" for none).
func (h *heartbeats) beat(agent string, brokerReachable bool, authError string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	last, seen := h.seen[agent]
	wasReachable, known := h.reachable[agent]
	news := !seen || now.Sub(last) > h.ttl || !known || wasReachable != brokerReachable || h.authErrors[agent] != authError
	h.seen[agent] = now
	h.reachable[agent] = brokerReachable
	if authError == "" {
		delete(h.authErrors, agent)
	} else {
		h.authErrors[agent] = authError
	}
	if news {
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
}

// brokerAuthError is the agent's last reported refusal of its credential.
func (h *heartbeats) brokerAuthError(agent string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.authErrors[agent]
}

// alive reports whether the agent heartbeated within the TTL.
func (h *heartbeats) alive(agent string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.seen[agent]
	return ok && h.now().Sub(t) <= h.ttl
}

// brokerReachable reports the agent's last broker probe.
func (h *heartbeats) brokerReachable(agent string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reachable[agent]
}
