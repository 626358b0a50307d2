package agent

import (
	"testing"
	"time"
)

func TestCPURate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var r cpuRate
	meter, next := new(int), new(int)
	steps := []struct {
		src      any
		at, used time.Duration
		want     int64
	}{
		{meter, 0, 5 * time.Second, 0},                                    // first reading
		{meter, time.Second, 5*time.Second + 250*time.Millisecond, 250},   // a quarter core
		{meter, time.Second + 100*time.Millisecond, 6 * time.Second, 250}, // too close: the last rate
		{meter, 3 * time.Second, 8 * time.Second, 1375},                   // 2.75s over the 2s since the reading at 1s
		{meter, 4 * time.Second, time.Second, 0},                          // restarted: the count began again
		{meter, 6 * time.Second, 2 * time.Second, 500},
		{nil, 7 * time.Second, 30 * time.Second, 0},  // between two functions: Process time, another count
		{next, 8 * time.Second, 40 * time.Second, 0}, // a new function's counter, even if higher
		{next, 9 * time.Second, 40*time.Second + 100*time.Millisecond, 100},
	}
	for i, s := range steps {
		if got := r.millis(s.src, s.used, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %d millicores, want %d", i, got, s.want)
		}
	}
}
