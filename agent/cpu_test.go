package agent

import (
	"testing"
	"time"
)

func TestCPURate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var r cpuRate
	steps := []struct {
		at, used time.Duration
		want     int64
	}{
		{0, 5 * time.Second, 0},                                    // first reading
		{time.Second, 5*time.Second + 250*time.Millisecond, 250},   // a quarter core
		{time.Second + 100*time.Millisecond, 6 * time.Second, 250}, // too close: the last rate
		{3 * time.Second, 8 * time.Second, 1375},                   // 2.75s over the 2s since the reading at 1s
		{4 * time.Second, time.Second, 0},                          // restarted: the count began again
		{6 * time.Second, 2 * time.Second, 500},
	}
	for i, s := range steps {
		if got := r.millis(s.used, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %d millicores, want %d", i, got, s.want)
		}
	}
}
