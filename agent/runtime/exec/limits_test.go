package exec

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/limits"
)

// TestMemoryLimit runs examples/exec/memhog.py, asked to allocate 512 MiB
// under a 64 MiB limit, with each mechanism this host offers: under a
// cgroup the kernel kills it and the error says ErrOutOfMemory (the next
// message runs in a fresh process); under rlimits its allocation fails
// and it fails the message with MemoryError. The limits group is gone
// after Close. (Python rather than the test binary: a binary built with
// -race cannot start under a data limit.)
func TestMemoryLimit(t *testing.T) {
	for _, m := range []limits.Mechanism{limits.Auto, limits.Rlimit} {
		t.Run(string(m), func(t *testing.T) {
			parent := "meshfed-exec-test-" + strings.ToLower(string(m))
			enf, err := limits.Detect(m, limits.Options{Parent: parent})
			if err != nil {
				t.Skipf("no limits mechanism: %v", err)
			}
			t.Cleanup(func() {
				for _, dir := range []string{parent, "memory/" + parent, "cpu/" + parent, "unified/" + parent} {
					os.Remove(filepath.Join(limits.DefaultRoot, dir))
				}
			})
			opts := testOptions()
			opts.Limits = enf
			rt := New(nil, opts)
			if got := rt.LimitsMechanism(); got != string(enf.Mechanism()) {
				t.Fatalf("LimitsMechanism = %q, want %q", got, enf.Mechanism())
			}
			py, err := osexec.LookPath("python3")
			if err != nil {
				t.Skip("python3 not installed")
			}
			sdkDir, _ := filepath.Abs("../../../sdk/python")
			examples, _ := filepath.Abs("../../../examples/exec")
			fn, err := rt.Start(context.Background(), runtime.Spec{
				Command:   []string{py, "memhog.py"},
				Dir:       examples,
				Env:       map[string]string{"PYTHONPATH": sdkDir},
				Resources: runtime.Resources{MemoryBytes: 64 << 20, CPUMillis: 500},
			})
			if err != nil {
				t.Fatal(err)
			}
			f := fn.(*function)
			t.Cleanup(func() { closeAndCheck(t, f) })
			fctx := newFakeContext()
			ctx := context.Background()
			if _, err := f.Process(ctx, fctx, msg("before")); err != nil {
				t.Fatalf("a small message failed: %v", err)
			}
			_, err = f.Process(ctx, fctx, msg("grow 512"))
			if err == nil {
				t.Fatalf("allocating 512 MiB under a 64 MiB limit (%s) succeeded", enf.Mechanism())
			}
			oom := errors.Is(err, runtime.ErrOutOfMemory)
			var ferr *FunctionError
			switch enf.Mechanism() {
			case limits.Cgroup1, limits.Cgroup2:
				if !oom || !errors.Is(err, runtime.ErrFunctionCrashed) || !strings.Contains(err.Error(), "OOM killer") {
					t.Fatalf("err = %v, want ErrOutOfMemory and ErrFunctionCrashed naming the OOM killer", err)
				}
			case limits.Rlimit:
				if oom || !errors.As(err, &ferr) || !strings.Contains(err.Error(), "MemoryError") {
					t.Fatalf("err = %v, want the function's MemoryError", err)
				}
			}
			t.Logf("%s: %v", enf.Mechanism(), err)
			if _, err := f.Process(ctx, fctx, msg("after")); err != nil {
				t.Fatalf("the restarted process failed a small message: %v", err)
			}
			f.mu.Lock()
			group := f.proc.group
			f.mu.Unlock()
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if group.Mechanism() == limits.Cgroup1 || group.Mechanism() == limits.Cgroup2 {
				entries, _ := os.ReadDir(filepath.Join(limits.DefaultRoot, "memory", parent))
				for _, e := range entries {
					if e.IsDir() {
						t.Errorf("cgroup %s left after Close", e.Name())
					}
				}
			}
		})
	}
}
