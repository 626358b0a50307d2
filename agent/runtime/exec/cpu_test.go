package exec

import (
	goruntime "runtime"
	"testing"
	"time"
)

func TestCPUTimeOfTheProcess(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("process CPU time is read from /proc")
	}
	f := startChild(t, "script", testOptions())
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), newFakeContext(), msg("burn")); err != nil {
		t.Fatal(err)
	}
	used, ok := f.CPUTime()
	// 300ms of spinning, at 100 ticks a second; a loaded machine may
	// deschedule the child for part of it, never give it more.
	if !ok || used < 100*time.Millisecond || used > 5*time.Second {
		t.Errorf("CPUTime = %s, %v; want about 300ms", used, ok)
	}
}
