package agent

import "time"

// cpuRate turns a cumulative CPU time into millicores over the time
// between two readings. For exec instances the CPU time is the process's
// (runtime.CPUMeter); for in-process runtimes (builtin, wasm), which share
// the agent's process, it is the time spent inside the function's Process
// calls: an upper bound of their CPU (it includes waits inside the call),
// used as the autoscaler's CPU signal.
type cpuRate struct {
	// at and used are the previous reading; zero at: none yet.
	at   time.Time
	used time.Duration
	// src is the counter used was read from (compared by identity).
	src any
	// last is the rate reported at the previous reading.
	last int64
}

// minCPUWindow is the least time between two readings that gives a rate;
// readings closer together repeat the last rate.
const minCPUWindow = 500 * time.Millisecond

// millis returns the CPU use since the previous reading, in millicores.
// src identifies the counter used comes from: two counters are never
// subtracted from one another (an exec instance between two of its
// functions falls back to its Process time, which counts something else),
// so a new counter starts a new count.
func (r *cpuRate) millis(src any, used time.Duration, now time.Time) int64 {
	switch {
	case r.at.IsZero() || used < r.used || src != r.src:
		// First reading, a new counter, or a new function (a restart)
		// began its count again.
		r.at, r.used, r.src, r.last = now, used, src, 0
	case now.Sub(r.at) >= minCPUWindow:
		r.last = int64((used - r.used) * 1000 / now.Sub(r.at))
		r.at, r.used = now, used
	}
	return r.last
}
