package wasm

import (
	"context"
	goruntime "runtime"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime"
)

// BenchmarkWasmIdentity measures one instance of an identity module (the
// test guest) processing 100-byte messages with a key and a property.
func BenchmarkWasmIdentity(b *testing.B) {
	r := sharedRuntime(b)
	f := start(b, r, buildModule(b, guestPkg))
	fctx := newFakeContext()
	msg := &runtime.Message{
		Topic: "persistent://public/default/in", Key: "key-1",
		Payload:    make([]byte, 100),
		Properties: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		outs, err := f.Process(ctx, fctx, msg)
		if err != nil || len(outs) != 1 {
			b.Fatal(outs, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkIdleInstance starts instances of a Go-built module and keeps
// them idle, 32 at a time, reporting the Go heap each one holds (its linear
// memory included; compiled code is shared and not counted) and its linear
// memory alone.
func BenchmarkIdleInstance(b *testing.B) {
	r := sharedRuntime(b)
	mod := buildModule(b, guestPkg)
	start(b, r, mod).Close() // compile outside the measurement
	const batch = 32
	var live []runtime.Function
	var heapBytes, linearBytes, measured float64
	var before goruntime.MemStats
	measure := func() {
		var after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		heapBytes += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		for _, f := range live {
			linearBytes += float64(f.(*function).inst.mem.Size())
			f.Close()
		}
		measured += float64(len(live))
		live = live[:0]
	}
	for b.Loop() {
		if len(live) == 0 {
			b.StopTimer()
			goruntime.GC()
			goruntime.ReadMemStats(&before)
			b.StartTimer()
		}
		f, err := r.Start(context.Background(), runtime.Spec{Module: mod})
		if err != nil {
			b.Fatal(err)
		}
		live = append(live, f)
		if len(live) == batch {
			b.StopTimer()
			measure()
			b.StartTimer()
		}
	}
	b.StopTimer()
	if len(live) > 0 {
		measure()
	}
	b.ReportMetric(heapBytes/measured, "heap-B/instance")
	b.ReportMetric(linearBytes/measured, "linear-B/instance")
}
