package wasm

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime"
)

// TestResourcesMemoryCapsTheModule: a function's resources.memory caps its
// module's memory below the runtime's; past it the call crashes with
// ErrOutOfMemory, while a function of the same module without resources
// gets the runtime's cap.
func TestResourcesMemoryCapsTheModule(t *testing.T) {
	r, err := New(slog.New(slog.DiscardHandler), Options{Interpreter: raceEnabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	if got := r.LimitsMechanism(); got != "wasm" {
		t.Fatalf("LimitsMechanism = %q", got)
	}
	mod := buildModule(t, guestPkg)
	small, err := r.Start(context.Background(), runtime.Spec{Module: mod, Resources: runtime.Resources{MemoryBytes: 16 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { small.Close() })
	big := start(t, r, mod)
	fctx := newFakeContext()
	msg := &runtime.Message{Payload: []byte("grow 24")}
	if _, err := big.Process(context.Background(), fctx, msg); err != nil {
		t.Fatalf("24 MiB under the runtime's 64 MiB cap: %v", err)
	}
	_, err = small.Process(context.Background(), fctx, msg)
	if !errors.Is(err, runtime.ErrOutOfMemory) || !errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("24 MiB under a 16 MiB cap: err = %v, want ErrOutOfMemory and ErrFunctionCrashed", err)
	}
	t.Logf("16 MiB cap: %v", err)
	// The next message runs in a fresh instance with the same cap.
	if got := mustProcess(t, small, fctx, "grow 4"); string(got[0].Payload) != "4194304" {
		t.Fatalf("4 MiB after the crash: %v", got)
	}
	if r.pagesFor(1<<40) != r.opts.MaxMemoryPages || r.pagesFor(1) != 1 || r.pagesFor(0) != r.opts.MaxMemoryPages {
		t.Errorf("pagesFor: %d %d %d", r.pagesFor(1<<40), r.pagesFor(1), r.pagesFor(0))
	}
}
