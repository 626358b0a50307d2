package wasm

import (
	"context"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

func BenchmarkExpCalls(b *testing.B) {
	r := sharedRuntime(b)
	f := start(b, r, buildModule(b, guestPkg)).(*function)
	ctx := context.Background()
	b.Run("alloc", func(b *testing.B) {
		for b.Loop() {
			st := []uint64{200}
			if err := f.inst.alloc.CallWithStack(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("version", func(b *testing.B) {
		for b.Loop() {
			st := []uint64{0}
			if err := f.inst.version.CallWithStack(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("version-timeoutctx", func(b *testing.B) {
		for b.Loop() {
			c, cancel := context.WithTimeout(ctx, 1e9)
			st := []uint64{0}
			if err := f.inst.version.CallWithStack(c, st); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
	})
	_ = abi.Version
}

func BenchmarkExpProcess(b *testing.B) {
	r := sharedRuntime(b)
	f := start(b, r, buildModule(b, guestPkg))
	fctx := newFakeContext()
	for _, tc := range []struct {
		name string
		msg  *runtime.Message
	}{
		{"bare", &runtime.Message{Payload: []byte("x")}},
		{"props", &runtime.Message{Payload: []byte("x"), Properties: map[string]string{"a": "b"}}},
		{"100B", &runtime.Message{Payload: make([]byte, 100)}},
		{"calls", &runtime.Message{Payload: []byte("calls")}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := f.Process(context.Background(), fctx, tc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
