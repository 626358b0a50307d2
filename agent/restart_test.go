package agent

import (
	"testing"
	"time"
)

func TestRestartBackoff(t *testing.T) {
	const ms = time.Millisecond
	b := newRestartBackoff(200*ms, 2*time.Second, 30*time.Second)
	for _, step := range []struct {
		ranFor time.Duration
		want   time.Duration
	}{
		{0, 200 * ms},                       // first failure
		{50 * ms, 400 * ms},                 // doubling
		{time.Second, 800 * ms},             //
		{0, 1600 * ms},                      //
		{0, 2 * time.Second},                // capped
		{0, 2 * time.Second},                // stays capped
		{29 * time.Second, 2 * time.Second}, // not healthy long enough
		{30 * time.Second, 200 * ms},        // healthy: first failure again
		{0, 400 * ms},
	} {
		if got := b.failed(step.ranFor); got != step.want {
			t.Fatalf("failure %d after %v: wait %v, want %v", b.failures, step.ranFor, got, step.want)
		}
	}
}
