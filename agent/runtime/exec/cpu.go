package exec

import (
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
)

var _ runtime.CPUMeter = (*function)(nil)

// CPUTime implements runtime.CPUMeter: the user and system time of the
// processes the function ran, read from /proc (Linux only). A process's
// time is counted up to its last reading, so a crash loses at most the
// time since the previous call.
func (f *function) CPUTime() (time.Duration, bool) {
	f.lifeMu.Lock()
	p := f.live
	f.lifeMu.Unlock()
	f.cpuMu.Lock()
	defer f.cpuMu.Unlock()
	if p != nil && p.pid != f.cpuPid {
		f.cpuDone += f.cpuLast
		f.cpuPid, f.cpuLast = p.pid, 0
	}
	if p != nil {
		if d, ok := processCPU(p.pid); ok {
			f.cpuLast = d
		} else if !cpuMeasurable {
			return 0, false
		}
	}
	return f.cpuDone + f.cpuLast, true
}
