package exec

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
)

// benchIdentity pushes b.N messages (100-byte payload, a key, two
// properties) through f one at a time and reports messages per second and
// the per-message latency percentiles.
func benchIdentity(b *testing.B, f *function) {
	fctx := newFakeContext()
	m := &runtime.Message{
		Topic:       "persistent://public/default/in",
		Key:         "key-1",
		Payload:     []byte(strings.Repeat("x", 100)),
		Properties:  map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "app": "bench"},
		EventTime:   time.UnixMilli(1700000000000),
		PublishTime: time.UnixMilli(1700000000001),
	}
	ctx := context.Background()
	if _, err := f.Process(ctx, fctx, m); err != nil { // start the process
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		outs, err := f.Process(ctx, fctx, m)
		lat = append(lat, time.Since(start))
		if err != nil || len(outs) != 1 || len(outs[0].Payload) != 100 {
			b.Fatalf("outputs %+v, %v", outs, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkExecIdentity runs examples/exec/identity.py (the Python SDK).
func BenchmarkExecIdentity(b *testing.B) {
	f := startPython(b, "identity.py", Options{})
	benchIdentity(b, f)
}

// BenchmarkExecIdentityGo runs a Go function (the test binary), which
// shows the host's and the pipes' share of the cost.
func BenchmarkExecIdentityGo(b *testing.B) {
	fn, err := New(nil, Options{}).Start(context.Background(), runtime.Spec{
		Command: []string{os.Args[0]},
		Env:     map[string]string{childEnv: "script", "GORACE": "atexit_sleep_ms=0"},
	})
	if err != nil {
		b.Fatal(err)
	}
	f := fn.(*function)
	b.Cleanup(func() { closeAndCheck(b, f) })
	benchIdentity(b, f)
}
