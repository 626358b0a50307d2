package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/builtin"
)

func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "MemFree: 10 kB\nMemTotal:       16318412 kB\n", want: 16318412 << 10},
		{in: "MemTotal: 12\n", err: true},
		{in: "MemFree: 10 kB\n", err: true},
	} {
		got, err := memTotal(strings.NewReader(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("memTotal(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestProbeCapabilities: configured CPU and memory win over the host's;
// interpreters are looked up whatever the runtimes (exec sources and sinks
// need them too).
func TestProbeCapabilities(t *testing.T) {
	c := probeCapabilities(Config{Runtimes: map[string]runtime.Runtime{"builtin": builtin.Runtime{}}, CPUMillis: 1500, MemoryBytes: 1 << 30})
	if !slices.Equal(c.runtimes, []string{"builtin"}) || !slices.Contains(c.interpreters, "bash") || c.cpuMillis != 1500 || c.memoryBytes != 1<<30 {
		t.Fatalf("capabilities %+v", c)
	}
	c = probeCapabilities(Config{Runtimes: map[string]runtime.Runtime{"builtin": builtin.Runtime{}, "exec": nil}})
	if c.cpuMillis <= 0 || !slices.Contains(c.interpreters, "bash") {
		t.Fatalf("host capabilities %+v: want the host's CPUs and bash found on PATH", c)
	}
}
