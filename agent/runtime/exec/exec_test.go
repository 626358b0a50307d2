package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	_ "github.com/meshfed/meshfed/agent/runtime/builtin"
	"github.com/meshfed/meshfed/sdk"
)

// fakeContext is an instance context with in-memory state and a logger
// that records what it is given.
type fakeContext struct {
	mu       sync.Mutex
	counters map[string]int64
	values   map[string][]byte
	calls    int
	// failState makes every state call fail.
	failState bool
	config    map[string]any
	logs      *recorder
}

func newFakeContext() *fakeContext {
	return &fakeContext{counters: map[string]int64{}, values: map[string][]byte{}, logs: &recorder{}}
}

func (c *fakeContext) state() error {
	c.calls++
	if c.failState {
		return errors.New("state store unavailable")
	}
	return nil
}

func (c *fakeContext) IncrCounter(_ context.Context, key string, delta int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.state(); err != nil {
		return 0, err
	}
	c.counters[key] += delta
	return c.counters[key], nil
}

func (c *fakeContext) GetCounter(_ context.Context, key string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.state(); err != nil {
		return 0, err
	}
	return c.counters[key], nil
}

func (c *fakeContext) PutState(_ context.Context, key string, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.state(); err != nil {
		return err
	}
	if value == nil {
		delete(c.values, key)
	} else {
		c.values[key] = append([]byte{}, value...)
	}
	return nil
}

func (c *fakeContext) GetState(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.state(); err != nil {
		return nil, err
	}
	return c.values[key], nil
}

func (c *fakeContext) Tenant() string         { return "public" }
func (c *fakeContext) Namespace() string      { return "default" }
func (c *fakeContext) Mesh() string           { return "word-count" }
func (c *fakeContext) Function() string       { return "split" }
func (c *fakeContext) InstanceIndex() int     { return 1 }
func (c *fakeContext) Config() map[string]any { return c.config }
func (c *fakeContext) Logger() *slog.Logger   { return slog.New(c.logs) }

var _ runtime.Context = (*fakeContext)(nil)

// recorder is a slog.Handler keeping the records it handles.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(msg string) (slog.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Message == msg {
			return rec, true
		}
	}
	return slog.Record{}, false
}

// testOptions keep restarts quick.
func testOptions() Options {
	return Options{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, StopGrace: 5 * time.Second}
}

// startChild starts the test binary as an exec function in mode.
func startChild(t *testing.T, mode string, opts Options) *function {
	t.Helper()
	rt := New(nil, opts)
	fn, err := rt.Start(context.Background(), runtime.Spec{Command: []string{os.Args[0]}, Env: map[string]string{childEnv: mode, "GORACE": "atexit_sleep_ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	f := fn.(*function)
	t.Cleanup(func() { closeAndCheck(t, f) })
	return f
}

// startPython starts examples/exec/<script> with the Python SDK.
func startPython(t testing.TB, script string, opts Options) *function {
	t.Helper()
	py, err := osexec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	sdkDir, err := filepath.Abs("../../../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("../../../examples/exec")
	if err != nil {
		t.Fatal(err)
	}
	rt := New(nil, opts)
	fn, err := rt.Start(context.Background(), runtime.Spec{
		Command: []string{py, script},
		Dir:     examples,
		Env:     map[string]string{"PYTHONPATH": sdkDir},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := fn.(*function)
	t.Cleanup(func() { closeAndCheck(t, f) })
	return f
}

// closeAndCheck closes f and checks that its process is gone (reaped) and
// its stderr reader done. (TestMain checks that no goroutine of this
// package survives the tests.)
func closeAndCheck(t testing.TB, f *function) {
	t.Helper()
	f.mu.Lock()
	p := f.proc
	f.mu.Unlock()
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if p == nil {
		return
	}
	if err := syscall.Kill(p.pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Close (kill 0: %v)", p.pid, err)
	}
	select {
	case <-p.stderrDone:
	default:
		t.Errorf("process %d: stderr reader still running after Close", p.pid)
	}
}

func msg(payload string) *runtime.Message {
	return &runtime.Message{Topic: "persistent://public/default/in", Payload: []byte(payload)}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestEcho(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	in := &runtime.Message{
		Topic:       "persistent://public/default/in",
		Key:         "k",
		Payload:     []byte("payload"),
		Properties:  map[string]string{"a": "1", "traceparent": "00-x"},
		EventTime:   time.UnixMilli(1700000000123),
		PublishTime: time.UnixMilli(1700000000456),
	}
	for i := 0; i < 3; i++ {
		outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 || outs[0].Key != "k" || string(outs[0].Payload) != "payload" ||
			outs[0].Topic != in.Topic || outs[0].Properties["traceparent"] != "00-x" || len(outs[0].Properties) != 2 {
			t.Fatalf("outputs = %+v", outs)
		}
	}
}

// (a) the Python example gives what the builtin word-split gives.
func TestPythonSplitMatchesBuiltin(t *testing.T) {
	builtin, ok := sdk.Lookup("word-split")
	if !ok {
		t.Fatal("builtin word-split not registered")
	}
	f := startPython(t, "split.py", testOptions())
	fctx := newFakeContext()
	for _, s := range []string{
		"The quick brown fox jumps over the lazy dog",
		"Hello, World! It's a TEST: 3 words... or 42?",
		"naïve café ÜBER Straße — ΟΔΟΣ İstanbul",
		"tabs\tand\nnewlines  and   spaces",
		"",
		"--- !!! ...",
		"don't stop-believing 2024-01-01",
		"invalid \xff\xfe utf8 bytes\xe2\x82",
	} {
		want, err := builtin(context.Background(), fctx, msg(s))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg(s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d outputs, builtin %d: %+v vs %+v", s, len(got), len(want), got, want)
		}
		for i := range want {
			if got[i].Key != want[i].Key || string(got[i].Payload) != string(want[i].Payload) || got[i].Topic != want[i].Topic {
				t.Errorf("%q: output %d = %+v, builtin %+v", s, i, got[i], want[i])
			}
		}
	}
}

// (b) state calls from Python count correctly.
func TestPythonCount(t *testing.T) {
	f := startPython(t, "count.py", testOptions())
	fctx := newFakeContext()
	words := strings.Fields("a b a c a b")
	want := map[string]int{}
	for _, w := range words {
		want[w]++
		outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg(w))
		if err != nil {
			t.Fatal(err)
		}
		exp := fmt.Sprintf("%s %d", w, want[w])
		if len(outs) != 1 || string(outs[0].Payload) != exp || outs[0].Key != w {
			t.Fatalf("%s: outputs %+v, want %q", w, outs, exp)
		}
	}
	if fctx.counters["a"] != 3 || fctx.counters["b"] != 2 || fctx.counters["c"] != 1 {
		t.Fatalf("counters = %v", fctx.counters)
	}
	// The key is the word when the payload is empty; nothing at all gives
	// no output and no state call.
	outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, &runtime.Message{Key: "a"})
	if err != nil || len(outs) != 1 || string(outs[0].Payload) != "a 4" {
		t.Fatalf("keyed: %+v, %v", outs, err)
	}
	calls := fctx.calls
	outs, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, &runtime.Message{})
	if err != nil || len(outs) != 0 || fctx.calls != calls {
		t.Fatalf("empty: %+v, %v, %d state calls", outs, err, fctx.calls-calls)
	}
	// A state error reaches the Python code as an exception, which fails
	// the message only.
	fctx.failState = true
	_, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("a"))
	var ferr *FunctionError
	if !errors.As(err, &ferr) || !strings.Contains(ferr.Reason, "StateError: state store unavailable") {
		t.Fatalf("state failure: %v", err)
	}
	fctx.failState = false
	outs, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("a"))
	if err != nil || string(outs[0].Payload) != "a 5" {
		t.Fatalf("after a state failure: %+v, %v", outs, err)
	}
}

func TestStateOperations(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	fctx.counters["n"] = 10
	outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("state"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, o := range outs {
		got = append(got, o.Key+"="+string(o.Payload))
	}
	want := []string{"1=15 false ", "3=0 false ", "4=0 true x", "2=15 false "}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("outputs %q, want %q", got, want)
	}
	if string(fctx.values["v"]) != "x" {
		t.Fatalf("values = %q", fctx.values)
	}
}

// (c) a function exiting mid-message: the error wraps ErrFunctionCrashed
// and names the exit; the next message restarts the process.
func TestCrashRestarts(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("one")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	pid := f.proc.pid
	f.mu.Unlock()
	_, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("crash"))
	if !errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("crash: err = %v, want ErrFunctionCrashed", err)
	}
	for _, want := range []string{"exited with status 3", "panic: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("crash error %q lacks %q", err, want)
		}
	}
	outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("again"))
	if err != nil || len(outs) != 1 || string(outs[0].Payload) != "again" {
		t.Fatalf("after restart: %+v, %v", outs, err)
	}
	f.mu.Lock()
	newPid := f.proc.pid
	failures := f.failures
	f.mu.Unlock()
	if newPid == pid || failures != 1 {
		t.Fatalf("pid %d → %d, failures %d", pid, newPid, failures)
	}
}

func TestPythonCrashAndException(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "f.py")
	err := os.WriteFile(script, []byte(`
import os, sys
import meshfed_function as mf

def process(ctx, msg):
    if msg.text == "exit":
        print("about to exit")
        os._exit(9)
    if msg.text == "raise":
        raise ValueError("bad input")
    if msg.text == "gen-raise":
        return gen_raise()
    if msg.text == "big":
        return b"x" * 2000
    if msg.text == "config":
        return repr(sorted(ctx.config.items())) + f" {ctx.function}/{ctx.instance_index}"
    return msg.payload

def gen_raise():
    yield "first"
    raise KeyError("k")

mf.run(process)
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	py, err := osexec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	sdkDir, _ := filepath.Abs("../../../sdk/python")
	opts := testOptions()
	opts.MaxFrameSize = 1024
	fn, err := New(nil, opts).Start(context.Background(), runtime.Spec{
		Command: []string{py, "f.py"}, Dir: dir,
		Env:    map[string]string{"PYTHONPATH": sdkDir},
		Config: map[string]any{"threshold": 3, "name": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := fn.(*function)
	t.Cleanup(func() { closeAndCheck(t, f) })
	fctx := newFakeContext()

	outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("config"))
	if err != nil || len(outs) != 1 || string(outs[0].Payload) != "[('name', 'x'), ('threshold', 3)] split/1" {
		t.Fatalf("config: %+v, %v", outs, err)
	}
	_, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("raise"))
	var ferr *FunctionError
	if !errors.As(err, &ferr) || ferr.Reason != "ValueError: bad input" || errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("raise: %v", err)
	}
	// Outputs already sent by a failing generator are dropped.
	outs, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("gen-raise"))
	if !errors.As(err, &ferr) || ferr.Reason != "KeyError: 'k'" || outs != nil {
		t.Fatalf("gen-raise: %+v, %v", outs, err)
	}
	// The SDK keeps to the frame limit HELLO announced: the output fails
	// the message, the process stays.
	_, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("big"))
	if !errors.As(err, &ferr) || !strings.Contains(ferr.Reason, "exceeds the 1024-byte limit") {
		t.Fatalf("big: %v", err)
	}
	if f.failures != 0 {
		t.Fatalf("failures = %d before the crash", f.failures)
	}
	_, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("exit"))
	if !errors.Is(err, runtime.ErrFunctionCrashed) || !strings.Contains(err.Error(), "status 9") || !strings.Contains(err.Error(), "about to exit") {
		t.Fatalf("exit: %v", err)
	}
	outs, err = f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("ok"))
	if err != nil || string(outs[0].Payload) != "ok" {
		t.Fatalf("after restart: %+v, %v", outs, err)
	}
	if _, ok := fctx.logs.find("about to exit"); !ok {
		t.Error("print() output was not forwarded to the log")
	}
}

// (d) garbage and other bad frames fail the message with an error that
// names the frame and the reason; the next message gets a new process.
func TestBadFrames(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	for _, tc := range []struct{ payload, want string }{
		{"garbage", "frame length 1751477356 exceeds the 16777216-byte limit"},
		{"big-output", "frame length 1073741824 exceeds"},
		{"unknown", "unknown frame type 0x7f"},
		{"truncated-body", "OUTPUT frame: id: need 8 bytes, 4 left"},
		{"wrong-id", "DONE frame for message"},
		{"ready-again", "unexpected READY frame"},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			_, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg(tc.payload))
			if !errors.Is(err, ErrProtocol) || !errors.Is(err, runtime.ErrFunctionCrashed) {
				t.Fatalf("err = %v, want ErrProtocol and ErrFunctionCrashed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
			outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("fine"))
			if err != nil || len(outs) != 1 {
				t.Fatalf("next message: %+v, %v", outs, err)
			}
		})
	}
}

// A FAIL frame fails the message and keeps the process.
func TestFail(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("x")); err != nil {
		t.Fatal(err)
	}
	pid := f.proc.pid
	_, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("fail"))
	var ferr *FunctionError
	if !errors.As(err, &ferr) || ferr.Reason != "ValueError: no good" || errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("x")); err != nil || f.proc.pid != pid {
		t.Fatalf("after FAIL: %v (pid %d → %d)", err, pid, f.proc.pid)
	}
}

// (e) a function that never answers: Process returns at the deadline.
func TestTimeout(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	start := time.Now()
	_, err := f.Process(ctxTimeout(t, 200*time.Millisecond), fctx, msg("hang"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
	outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("fine"))
	if err != nil || len(outs) != 1 {
		t.Fatalf("next message: %+v, %v", outs, err)
	}
	// An expired context does not cost the process its life.
	pid := f.proc.pid
	expired, cancelExpired := context.WithCancel(context.Background())
	cancelExpired()
	if _, err := f.Process(expired, fctx, msg("x")); !errors.Is(err, context.Canceled) || f.proc == nil || f.proc.pid != pid {
		t.Fatalf("expired context: %v, process %+v", err, f.proc)
	}
	// A cancelled context is honoured too, and a handshake never answered
	// ends at the deadline.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the message is in flight.
		for {
			f.lifeMu.Lock()
			p := f.live
			f.lifeMu.Unlock()
			if p != nil {
				cancel()
				return
			}
			goruntime.Gosched()
		}
	}()
	_, err = f.Process(ctx, fctx, msg("hang"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v", err)
	}
	s := startChild(t, "silent", testOptions())
	_, err = s.Process(ctxTimeout(t, 200*time.Millisecond), fctx, msg("x"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "READY") {
		t.Fatalf("silent: err = %v", err)
	}
}

// (f) a function speaking another protocol version.
func TestVersionMismatch(t *testing.T) {
	f := startChild(t, "version", testOptions())
	_, err := f.Process(ctxTimeout(t, 10*time.Second), newFakeContext(), msg("x"))
	if !errors.Is(err, ErrVersionMismatch) || !errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "host speaks version 1, the function answered READY with version 99") {
		t.Fatalf("unclear error: %v", err)
	}
}

func TestHandshakeFailures(t *testing.T) {
	fctx := newFakeContext()
	f := startChild(t, "exit", testOptions())
	_, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("x"))
	if !errors.Is(err, runtime.ErrFunctionCrashed) || !strings.Contains(err.Error(), "cannot load model.bin") ||
		!strings.Contains(err.Error(), "status 7") {
		t.Fatalf("exit: %v", err)
	}
	rec, ok := fctx.logs.find("cannot load model.bin")
	if !ok || rec.Level != slog.LevelError {
		t.Fatalf("stderr line not logged at ERROR: %+v %v", rec, ok)
	}
	e := startChild(t, "early", testOptions())
	_, err = e.Process(ctxTimeout(t, 10*time.Second), fctx, msg("x"))
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "OUTPUT frame where READY was expected") {
		t.Fatalf("early: %v", err)
	}
}

func TestStderrForwarded(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("log")); err != nil {
		t.Fatal(err)
	}
	f.Close() // reaping drains stderr
	if rec, ok := fctx.logs.find("disk almost full"); !ok || rec.Level != slog.LevelWarn {
		t.Errorf("WARNING line: %+v %v", rec, ok)
	}
	if rec, ok := fctx.logs.find("plain line"); !ok || rec.Level != slog.LevelInfo {
		t.Errorf("plain line: %+v %v", rec, ok)
	}
}

func TestCloseKillsGroup(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("spawn"))
	if err != nil || len(outs) != 1 {
		t.Fatalf("spawn: %+v, %v", outs, err)
	}
	grandchild, _ := strconv.Atoi(string(outs[0].Payload))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The grandchild was killed with the group; its new parent reaps it
	// (or leaves a zombie if PID 1 does not reap: dead either way).
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", grandchild))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived Close: %s", grandchild, stat)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := f.Process(ctxTimeout(t, time.Second), fctx, msg("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Process after Close: %v", err)
	}
}

// Close while a message is in flight kills the process at once.
func TestCloseDuringProcess(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	done := make(chan error, 1)
	go func() {
		_, err := f.Process(context.Background(), fctx, msg("hang"))
		done <- err
	}()
	for {
		f.lifeMu.Lock()
		p := f.live
		f.lifeMu.Unlock()
		if p != nil {
			break
		}
		goruntime.Gosched()
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("in-flight Process: %v", err)
	}
}

func TestStartChecks(t *testing.T) {
	rt := New(nil, Options{})
	if rt.Name() != "exec" {
		t.Fatal(rt.Name())
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notexec"), []byte("x"), 0o644)
	for _, tc := range []struct {
		name string
		spec runtime.Spec
		want string
	}{
		{"empty", runtime.Spec{}, "no command"},
		{"missing", runtime.Spec{Command: []string{"meshfed-no-such-command"}}, "executable file not found"},
		{"relative", runtime.Spec{Command: []string{"./nope"}, Dir: dir}, "no such file"},
		{"not executable", runtime.Spec{Command: []string{"./notexec"}, Dir: dir}, "not an executable"},
		{"bad dir", runtime.Spec{Command: []string{"sh"}, Dir: filepath.Join(dir, "nope")}, "working directory"},
		{"bad config", runtime.Spec{Command: []string{"sh"}, Config: map[string]any{"f": func() {}}}, "config does not encode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.Start(context.Background(), tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMessageTooLarge(t *testing.T) {
	opts := testOptions()
	opts.MaxFrameSize = 1024
	f := startChild(t, "script", opts)
	fctx := newFakeContext()
	_, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg(strings.Repeat("x", 2000)))
	if !errors.Is(err, ErrFrameTooLarge) || errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("small")); err != nil || f.failures != 0 {
		t.Fatalf("next: %v, failures %d", err, f.failures)
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{7, 6400 * time.Millisecond}, {8, 10 * time.Second}, {1000, 10 * time.Second},
	} {
		if got := backoff(tc.n, 100*time.Millisecond, 10*time.Second); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	now := time.Unix(1000, 0)
	rt := New(nil, Options{Now: func() time.Time { return now }})
	f := &function{rt: rt}
	quick := &process{started: now}
	for i := 1; i <= 3; i++ {
		f.recordFailureLocked(quick)
	}
	if f.failures != 3 || !f.notBefore.Equal(now.Add(400*time.Millisecond)) {
		t.Fatalf("after 3 quick failures: %d, %v", f.failures, f.notBefore.Sub(now))
	}
	// A process that ran for HealthyAfter resets the count.
	healthy := &process{started: now}
	now = now.Add(31 * time.Second)
	f.recordFailureLocked(healthy)
	if f.failures != 1 || !f.notBefore.Equal(now.Add(100*time.Millisecond)) {
		t.Fatalf("after a healthy run: %d, %v", f.failures, f.notBefore.Sub(now))
	}
}

// The restart waits for the backoff, and a context ending first wins.
func TestBackoffWaitHonoursContext(t *testing.T) {
	opts := testOptions()
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour
	f := startChild(t, "script", opts)
	fctx := newFakeContext()
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("crash")); !errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatal(err)
	}
	_, err := f.Process(ctxTimeout(t, 50*time.Millisecond), fctx, msg("x"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "to restart") {
		t.Fatalf("err = %v", err)
	}
	// Close cuts the wait short as well.
	done := make(chan error, 1)
	go func() {
		_, err := f.Process(context.Background(), fctx, msg("x"))
		done <- err
	}()
	for f.mu.TryLock() { // until the goroutine holds mu, waiting
		f.mu.Unlock()
		goruntime.Gosched()
	}
	f.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Close during the backoff: %v", err)
	}
}

// A process killed while idle is noticed with the next message, which
// fails as a crash; the one after runs in a new process.
func TestDiedWhileIdle(t *testing.T) {
	f := startChild(t, "script", testOptions())
	fctx := newFakeContext()
	if _, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("x")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(f.proc.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("x"))
	if !errors.Is(err, runtime.ErrFunctionCrashed) || !strings.Contains(err.Error(), "killed by signal killed") {
		t.Fatalf("err = %v", err)
	}
	if outs, err := f.Process(ctxTimeout(t, 10*time.Second), fctx, msg("y")); err != nil || string(outs[0].Payload) != "y" {
		t.Fatalf("after restart: %+v, %v", outs, err)
	}
}

// The process gets the minimal environment plus the spec's, runs in Dir,
// and a relative command resolves from Dir.
func TestEnvironmentAndDir(t *testing.T) {
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "child.sh"), []byte("#!/bin/sh\nexec \"$CHILD\" \"$@\"\n"), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MESHFED_EXEC_TEST_SECRET", "must not leak")
	fn, err := New(nil, testOptions()).Start(context.Background(), runtime.Spec{
		Command: []string{"./child.sh"},
		Dir:     dir,
		Env:     map[string]string{"CHILD": os.Args[0], childEnv: "script", "GORACE": "atexit_sleep_ms=0", "LANG": "en_US.UTF-8"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := fn.(*function)
	t.Cleanup(func() { closeAndCheck(t, f) })
	outs, err := f.Process(ctxTimeout(t, 10*time.Second), newFakeContext(), msg("env"))
	if err != nil {
		t.Fatal(err)
	}
	// sh may add PWD (and OLDPWD, SHLVL) of its own.
	var env []string
	for _, kv := range strings.Split(string(outs[0].Payload), "\n") {
		if k, _, _ := strings.Cut(kv, "="); k != "PWD" && k != "OLDPWD" && k != "SHLVL" && k != "_" {
			env = append(env, kv)
		}
	}
	want := []string{"CHILD=" + os.Args[0], "GORACE=atexit_sleep_ms=0", "LANG=en_US.UTF-8", "MESHFED_EXEC_PROTOCOL=1",
		childEnv + "=script", "PATH=" + os.Getenv("PATH")}
	slices.Sort(want)
	if !slices.Equal(env, want) {
		t.Errorf("environment\n got %q\nwant %q", env, want)
	}
	if real, _ := filepath.EvalSymlinks(dir); outs[0].Key != dir && outs[0].Key != real {
		t.Errorf("working directory %q, want %q", outs[0].Key, dir)
	}
}
