package controlplane

import (
	"testing"
	"time"
)

// TestHeartbeatsSignalNews: a heartbeat wakes the scheduler only when it
// changes what a pass would see.
func TestHeartbeatsSignalNews(t *testing.T) {
	now := time.Unix(1000, 0)
	h := newHeartbeats(time.Second, func() time.Time { return now })
	signalled := func() bool {
		select {
		case <-h.changed:
			return true
		default:
			return false
		}
	}
	for _, step := range []struct {
		name      string
		advance   time.Duration
		reachable bool
		authError string
		want      bool
	}{
		{name: "first heartbeat", reachable: true, want: true},
		{name: "again within the TTL", advance: 300 * time.Millisecond, reachable: true},
		{name: "broker unreachable", advance: 300 * time.Millisecond, want: true},
		{name: "still unreachable", advance: 300 * time.Millisecond},
		{name: "credential refused", advance: 300 * time.Millisecond, authError: "refused", want: true},
		{name: "back after the TTL", advance: 2 * time.Second, authError: "refused", want: true},
	} {
		now = now.Add(step.advance)
		h.beat("a1", step.reachable, step.authError)
		if got := signalled(); got != step.want {
			t.Fatalf("%s: signalled %v, want %v", step.name, got, step.want)
		}
	}
}
