//go:build !linux

package exec

import "time"

// cpuMeasurable: no /proc here; the instance estimates CPU instead.
const cpuMeasurable = false

func processCPU(int) (time.Duration, bool) { return 0, false }
