package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime"
)

// buildDir holds the modules tests build; made by TestMain.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshfed-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type built struct {
	once sync.Once
	wasm []byte
	err  error
}

var (
	builtMu sync.Mutex
	builds  = map[string]*built{}
)

// buildModule compiles the Go package at pkg (relative to this package)
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, once per test binary.
func buildModule(t testing.TB, pkg string) []byte {
	t.Helper()
	builtMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &built{}
		builds[pkg] = b
	}
	builtMu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(buildDir, filepath.Base(pkg)+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
			return
		}
		b.wasm, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

const (
	guestPkg     = "./testdata/guest"
	wordsplitPkg = "../../../examples/wasm/wordsplit"
	wordcountPkg = "../../../examples/wasm/wordcount"
)

var (
	sharedOnce sync.Once
	shared     *Runtime
	sharedErr  error
)

// sharedRuntime is one runtime for the whole test binary, so that each
// module compiles once.
func sharedRuntime(t testing.TB) *Runtime {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = New(slog.New(slog.DiscardHandler), Options{Interpreter: raceEnabled}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// start starts module with a runtime and closes the function at the end.
func start(t testing.TB, r *Runtime, module []byte) runtime.Function {
	t.Helper()
	f, err := r.Start(context.Background(), runtime.Spec{Module: module})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// memState is an in-memory runtime.State.
type memState struct {
	mu       sync.Mutex
	counters map[string]int64
	values   map[string][]byte
	// fail, when set, fails every call.
	fail error
}

func newMemState() *memState {
	return &memState{counters: map[string]int64{}, values: map[string][]byte{}}
}

func (s *memState) IncrCounter(_ context.Context, key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.counters[key] += delta
	return s.counters[key], nil
}

func (s *memState) GetCounter(_ context.Context, key string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	return s.counters[key], nil
}

func (s *memState) PutState(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if value == nil {
		delete(s.values, key)
	} else {
		s.values[key] = value
	}
	return nil
}

func (s *memState) GetState(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	return s.values[key], nil
}

// fakeContext is a runtime.Context over a memState.
type fakeContext struct {
	*memState
	config map[string]any
	logger *slog.Logger
}

func newFakeContext() *fakeContext {
	return &fakeContext{memState: newMemState(), logger: slog.New(slog.DiscardHandler)}
}

func (c *fakeContext) Tenant() string         { return "public" }
func (c *fakeContext) Namespace() string      { return "default" }
func (c *fakeContext) Mesh() string           { return "word-count" }
func (c *fakeContext) Function() string       { return "split" }
func (c *fakeContext) InstanceIndex() int     { return 2 }
func (c *fakeContext) Config() map[string]any { return c.config }
func (c *fakeContext) Logger() *slog.Logger   { return c.logger }

var _ runtime.Context = (*fakeContext)(nil)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func process(t testing.TB, f runtime.Function, fctx runtime.Context, payload string) ([]runtime.Output, error) {
	t.Helper()
	return f.Process(context.Background(), fctx, &runtime.Message{Topic: "persistent://public/default/in", Payload: []byte(payload)})
}

func mustProcess(t testing.TB, f runtime.Function, fctx runtime.Context, payload string) []runtime.Output {
	t.Helper()
	outs, err := process(t, f, fctx, payload)
	if err != nil {
		t.Fatalf("process %q: %v", payload, err)
	}
	return outs
}

func wantCrash(t *testing.T, err error, contains string) {
	t.Helper()
	if !errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("err = %v, want one wrapping runtime.ErrFunctionCrashed", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(contains)) {
		t.Fatalf("err = %q, want it to name %q", err, contains)
	}
}
