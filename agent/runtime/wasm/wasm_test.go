package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	_ "github.com/meshfed/meshfed/agent/runtime/builtin"
	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
	"github.com/meshfed/meshfed/sdk"
)

func TestName(t *testing.T) {
	if got := sharedRuntime(t).Name(); got != "wasm" {
		t.Fatalf("Name() = %q", got)
	}
}

// normalize makes "no outputs" compare equal whether nil or empty.
func normalize(outs []runtime.Output) []runtime.Output {
	if len(outs) == 0 {
		return nil
	}
	return outs
}

func TestWordSplitMatchesBuiltin(t *testing.T) {
	builtin, ok := sdk.Lookup("word-split")
	if !ok {
		t.Fatal("builtin word-split is not registered")
	}
	f := start(t, sharedRuntime(t), buildModule(t, wordsplitPkg))
	for _, in := range []string{
		"The quick brown fox jumps over the lazy dog",
		"Hello, World! hello... WORLD?",
		"don't stop-believing 42 times",
		"Ünïcödé ΣΊΣΥΦΟΣ straße 東京 tokyo",
		"",
		"   \t\n  ",
		"!!!",
		strings.Repeat("Word ", 300),
	} {
		fctx := newFakeContext()
		msg := &runtime.Message{Topic: "persistent://public/default/sentences", Key: "k", Payload: []byte(in)}
		want, err := builtin(context.Background(), fctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Process(context.Background(), fctx, msg)
		if err != nil {
			t.Fatalf("wasm word-split %q: %v", in, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("word-split %.40q:\n wasm    %v\n builtin %v", in, got, want)
		}
	}
}

func TestWordCountCountsInHostState(t *testing.T) {
	builtin, ok := sdk.Lookup("word-count")
	if !ok {
		t.Fatal("builtin word-count is not registered")
	}
	f := start(t, sharedRuntime(t), buildModule(t, wordcountPkg))
	wasmCtx, builtinCtx := newFakeContext(), newFakeContext()
	words := []struct{ key, payload string }{
		{"", "apple"}, {"", "pear"}, {"", "apple"}, {"", " apple \n"},
		{"pear", ""}, {"", ""}, {"plum", "fig"},
	}
	for _, w := range words {
		msg := &runtime.Message{Key: w.key, Payload: []byte(w.payload)}
		want, err := builtin(context.Background(), builtinCtx, msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Process(context.Background(), wasmCtx, msg)
		if err != nil {
			t.Fatalf("wasm word-count %+v: %v", w, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("word-count %+v: wasm %v, builtin %v", w, got, want)
		}
	}
	wantCounts := map[string]int64{"apple": 3, "pear": 2, "fig": 1}
	if !reflect.DeepEqual(wasmCtx.counters, wantCounts) {
		t.Errorf("host counters = %v, want %v", wasmCtx.counters, wantCounts)
	}
	if got := mustProcess(t, f, wasmCtx, "apple"); len(got) != 1 || string(got[0].Payload) != "apple 4" || got[0].Key != "apple" {
		t.Errorf("fourth apple: %v", got)
	}
}

func TestTrapFailsOnlyThatMessage(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	fctx := newFakeContext()
	for _, tc := range []struct {
		payload string
		timeout time.Duration
		want    string
	}{
		{payload: "panic", want: "meshfed_process: panic: boom on purpose (wasm error: unreachable)"},
		{payload: "oob 4", want: "panic: runtime error: index out of range [7] with length 0"},
		{payload: "exit", want: "exited with code 3"},
		{payload: "loop", timeout: 300 * time.Millisecond, want: "meshfed_process timed out"},
		{payload: "oom", want: "out of memory"},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			// The instance counts its messages: more than one before the
			// trap ...
			mustProcess(t, f, fctx, "calls")
			if got := mustProcess(t, f, fctx, "calls"); string(got[0].Payload) == "1" {
				t.Fatalf("calls = 1 on the second message")
			}
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			started := time.Now()
			_, err := f.Process(ctx, fctx, &runtime.Message{Payload: []byte(tc.payload)})
			wantCrash(t, err, tc.want)
			if tc.timeout > 0 {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("timeout error %v does not wrap context.DeadlineExceeded", err)
				}
				if took := time.Since(started); took > tc.timeout+10*time.Second {
					t.Errorf("timed out after %v, want about %v", took, tc.timeout)
				}
			}
			// ... and the next message runs in a fresh instance.
			if got := mustProcess(t, f, fctx, "calls"); string(got[0].Payload) != "1" {
				t.Fatalf("after the trap calls = %s, want 1 (a fresh instance)", got[0].Payload)
			}
			if got := mustProcess(t, f, fctx, "hello"); string(got[0].Payload) != "hello" {
				t.Fatalf("identity after the trap = %q", got[0].Payload)
			}
		})
	}
}

func TestMessageTimeoutOption(t *testing.T) {
	r, err := New(slog.New(slog.DiscardHandler), Options{MessageTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	f := start(t, r, abiModule(abi.Version, loopForever, "").bytes())
	_, err = process(t, f, newFakeContext(), "x")
	wantCrash(t, err, "timed out")
}

func TestFunctionErrorIsNotACrash(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	fctx := newFakeContext()
	mustProcess(t, f, fctx, "calls")
	_, err := process(t, f, fctx, "error no thanks")
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != "refused: no thanks" || errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("err = %#v, want a FunctionError that is not a crash", err)
	}
	if got := mustProcess(t, f, fctx, "calls"); string(got[0].Payload) != "3" {
		t.Fatalf("calls = %s, want 3: the instance must survive a function error", got[0].Payload)
	}
}

func TestState(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	fctx := newFakeContext()
	// 10 bytes fit get_state's first buffer; 5000 take the retry.
	for i, n := range []int{10, 5000, 0} {
		got := mustProcess(t, f, fctx, "state "+strconv.Itoa(n))
		if want := strconv.Itoa(5 * (i + 1)); string(got[0].Payload) != want {
			t.Fatalf("state %d: counter = %s, want %s", n, got[0].Payload, want)
		}
	}
	if _, ok := fctx.values["k"]; ok {
		t.Error("put_state with a nil value did not delete the key")
	}
	if fctx.counters["c"] != 15 {
		t.Errorf("counter c = %d, want 15", fctx.counters["c"])
	}

	down := errors.New("state store down")
	fctx.fail = down
	_, err := process(t, f, fctx, "state 10")
	var fe *FunctionError
	if !errors.As(err, &fe) || !errors.Is(err, down) || errors.Is(err, runtime.ErrFunctionCrashed) {
		t.Fatalf("err = %v, want a FunctionError wrapping the state error", err)
	}
	if !strings.Contains(err.Error(), "put_state") {
		t.Errorf("err = %q, want it to name the host call", err)
	}
}

func TestInfo(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	fctx := newFakeContext()
	if got := mustProcess(t, f, fctx, "info"); string(got[0].Payload) != "public/default/word-count/split/2 {}" {
		t.Errorf("info without config = %q", got[0].Payload)
	}
	fctx.config = map[string]any{"expr": "a > 1", "n": 3}
	if got := mustProcess(t, f, fctx, "info"); string(got[0].Payload) != `public/default/word-count/split/2 {"expr":"a \u003e 1","n":3}` {
		t.Errorf("info with config = %q", got[0].Payload)
	}
}

func TestMessageFields(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	event, publish := time.Unix(1700000000, 123456789), time.Unix(1700000001, 5)
	msg := &runtime.Message{
		Topic: "persistent://a/b/c", Key: "the-key", Payload: []byte("fields"),
		Properties: map[string]string{"x": "1", "y": ""}, EventTime: event, PublishTime: publish,
		ProducerName: "prod-1", SequenceID: 77,
	}
	got, err := f.Process(context.Background(), newFakeContext(), msg)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("topic=persistent://a/b/c key=the-key props=map[x:1 y:] event=%d publish=%d producer=prod-1 seq=77", event.UnixNano(), publish.UnixNano())
	if string(got[0].Payload) != want {
		t.Errorf("guest saw\n %s\nwant\n %s", got[0].Payload, want)
	}

	// Identity keeps key, payload and properties.
	msg = &runtime.Message{Key: "k", Payload: []byte("p\x00q"), Properties: map[string]string{"trace": "abc"}}
	got, err = f.Process(context.Background(), newFakeContext(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []runtime.Output{{Key: "k", Payload: []byte("p\x00q"), Properties: map[string]string{"trace": "abc"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("identity = %+v, want %+v", got, want)
	}
}

func TestInputBuffer(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	fctx := newFakeContext()
	// A payload the guest keeps survives the next message, which the host
	// writes into the same input buffer.
	mustProcess(t, f, fctx, "keep this payload")
	mustProcess(t, f, fctx, strings.Repeat("z", 64))
	if got := mustProcess(t, f, fctx, "kept"); string(got[0].Payload) != "keep this payload" {
		t.Fatalf("kept payload = %q: the SDK must copy payloads out of the input buffer", got[0].Payload)
	}
	// The buffer grows for large messages and shrinks after a huge one.
	inCap := func() uint32 { return f.(*function).inst.inCap }
	for _, step := range []struct {
		size    int
		wantCap func(c uint32) bool
	}{
		{10, func(c uint32) bool { return c == minInput }},
		{5000, func(c uint32) bool { return c > 5000 && c < 6000 }},
		{10, func(c uint32) bool { return c > 5000 && c < 6000 }},
		{2 << 20, func(c uint32) bool { return c > 2<<20 }},
		{100 << 10, func(c uint32) bool { return c > 2<<20 }},
		{10, func(c uint32) bool { return c == minInput }},
	} {
		payload := strings.Repeat("p", step.size)
		got := mustProcess(t, f, fctx, payload)
		if len(got) != 1 || string(got[0].Payload) != payload {
			t.Fatalf("identity of %d bytes returned %d outputs", step.size, len(got))
		}
		if c := inCap(); !step.wantCap(c) {
			t.Fatalf("after a %d-byte message the input buffer holds %d bytes", step.size, c)
		}
	}
}

func TestManyOutputs(t *testing.T) {
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	got := mustProcess(t, f, newFakeContext(), "many 300")
	if len(got) != 300 {
		t.Fatalf("%d outputs, want 300", len(got))
	}
	for i, o := range got {
		if o.Topic != "t"+strconv.Itoa(i%3) || o.Key != strconv.Itoa(i) || string(o.Payload) != strconv.Itoa(i) {
			t.Fatalf("output %d = %+v", i, o)
		}
	}
	if got := mustProcess(t, f, newFakeContext(), "many 0"); got != nil {
		t.Fatalf("many 0 = %v, want no outputs", got)
	}
}

func TestLogs(t *testing.T) {
	var logs logBuffer
	fctx := newFakeContext()
	fctx.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("function", "split")
	f := start(t, sharedRuntime(t), buildModule(t, guestPkg))
	mustProcess(t, f, fctx, "print hi")
	out := logs.String()
	for _, want := range []string{
		`level=INFO msg="to stdout: hi" function=split runtime=wasm`,
		`level=WARN msg="to stderr: hi" function=split runtime=wasm`,
		`level=WARN msg="via log: hi" function=split runtime=wasm`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

func TestConcurrentInstancesAreIsolated(t *testing.T) {
	r := sharedRuntime(t)
	mod := buildModule(t, guestPkg)
	const instances, messages = 3, 40
	fs := make([]runtime.Function, instances)
	for i := range fs {
		fs[i] = start(t, r, mod)
	}
	var wg sync.WaitGroup
	errs := make(chan error, instances)
	for _, f := range fs {
		wg.Go(func() {
			fctx := newFakeContext()
			for i := 1; i <= messages; i++ {
				got, err := f.Process(context.Background(), fctx, &runtime.Message{Payload: []byte("calls")})
				if err != nil {
					errs <- err
					return
				}
				if string(got[0].Payload) != strconv.Itoa(i) {
					errs <- fmt.Errorf("message %d: calls = %s: instances share memory", i, got[0].Payload)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Hand-assembled process bodies.
var (
	loopForever    = cat([]byte{0x03, 0x40, 0x0c, 0x00, 0x0b}, i64Const(0))                   // loop br 0 end
	outOfBoundsRd  = cat(i32Const(0x7ffffff0), []byte{0x28, 0x02, 0x00, opDrop}, i64Const(0)) // i32.load
	resultBeyond   = i64Const(int64(abi.Pack(0x7fff0000, 16)))
	resultAt2048   = i64Const(int64(abi.Pack(2048, 5)))
	unreachableOp  = []byte{opUnreachable}
	logOutOfBounds = cat(i32Const(0), i32Const(0x7fff0000), i32Const(10), []byte{opCall, 0x00}, i64Const(0))
)

func TestHandAssembledTraps(t *testing.T) {
	logImport := wasmImport{module: abi.ImportModule, name: abi.ImportLog, params: []byte{tI32, tI32, tI32}}
	withData := func(m wasmModule, data []byte) wasmModule {
		m.data, m.dataOffset = data, 2048
		return m
	}
	withImport := func(m wasmModule, im wasmImport) wasmModule {
		m.imports = []wasmImport{im}
		return m
	}
	cases := []struct {
		name string
		mod  wasmModule
		want string
	}{
		{"unreachable", abiModule(abi.Version, unreachableOp, ""), "meshfed_process: wasm error: unreachable"},
		{"out-of-bounds load", abiModule(abi.Version, outOfBoundsRd, ""), "wasm error: out of bounds memory access"},
		{"result out of bounds", abiModule(abi.Version, resultBeyond, ""), "returned a result at [0x7fff0000, +16), out of bounds"},
		{"malformed result", withData(abiModule(abi.Version, resultAt2048, ""), []byte{9, 0, 0, 0, 0}), "malformed result: malformed abi encoding: result tag at offset 1: unknown tag 9"},
		{"host call out of bounds", withImport(abiModule(abi.Version, logOutOfBounds, ""), logImport), "host call log: guest range [0x7fff0000, +10) is out of bounds"},
	}
	for _, engine := range []struct {
		name        string
		interpreter bool
	}{{"compiler", false}, {"interpreter", true}} {
		r, err := New(slog.New(slog.DiscardHandler), Options{Interpreter: engine.interpreter})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		for _, tc := range cases {
			t.Run(engine.name+"/"+tc.name, func(t *testing.T) {
				f := start(t, r, tc.mod.bytes())
				for range 2 { // the second message runs in a fresh instance and traps again
					_, err := process(t, f, newFakeContext(), "x")
					wantCrash(t, err, tc.want)
				}
			})
		}
		t.Run(engine.name+"/timeout", func(t *testing.T) {
			f := start(t, r, abiModule(abi.Version, loopForever, "").bytes())
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := f.Process(ctx, newFakeContext(), &runtime.Message{})
			wantCrash(t, err, "meshfed_process timed out")
		})
		t.Run(engine.name+"/no outputs", func(t *testing.T) {
			f := start(t, r, withData(abiModule(abi.Version, resultAt2048, ""), []byte{0, 0, 0, 0, 0}).bytes())
			if got := mustProcess(t, f, newFakeContext(), "x"); got != nil {
				t.Fatalf("outputs = %v, want none", got)
			}
		})
	}
}

func TestHostCallsOutsideProcessFail(t *testing.T) {
	r, err := New(slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	// _initialize calls incr_counter and traps unless it returns -2
	// (StatusError): there is no message, hence no state, during it.
	m := abiModule(abi.Version, resultAt2048, "")
	m.data, m.dataOffset = []byte{0, 0, 0, 0, 0}, 2048
	m.imports = []wasmImport{{module: abi.ImportModule, name: abi.ImportIncrCounter, params: []byte{tI32, tI32, tI64, tI32}, results: []byte{tI32}}}
	m.funcs = append(m.funcs, wasmFunc{export: abi.ExportInitialize, body: cat(
		i32Const(0), i32Const(0), i64Const(1), i32Const(0), []byte{opCall, 0x00},
		i32Const(abi.StatusError), []byte{0x47, 0x04, 0x40, opUnreachable, 0x0b}, // i32.ne if unreachable end
	)})
	f := start(t, r, m.bytes())
	if got := mustProcess(t, f, newFakeContext(), "x"); got != nil {
		t.Fatalf("outputs = %v", got)
	}
}

func TestStartErrors(t *testing.T) {
	r, err := New(slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ok := abiModule(abi.Version, resultAt2048, "")
	wrongProcess := ok
	wrongProcess.funcs = append([]wasmFunc{}, ok.funcs...)
	wrongProcess.funcs[2] = wasmFunc{export: abi.ExportProcess, params: []byte{tI32}, results: []byte{tI64}, body: resultAt2048}
	unknownImport := ok
	unknownImport.imports = []wasmImport{{module: abi.ImportModule, name: "launch_missiles"}}
	badImportType := ok
	badImportType.imports = []wasmImport{{module: abi.ImportModule, name: abi.ImportLog, params: []byte{tI32}}}
	otherModule := ok
	otherModule.imports = []wasmImport{{module: "env", name: "abort"}}
	goModule := buildModule(t, wordsplitPkg)

	for _, tc := range []struct {
		name   string
		module []byte
		want   string
	}{
		{"no bytes", nil, "no module bytes"},
		{"garbage", []byte("this is not webassembly at all"), "invalid magic number"},
		{"truncated", goModule[:len(goModule)/2], "bad wasm module sha256:"},
		{"missing abi version", abiModule(abi.Version, resultAt2048, abi.ExportABIVersion).bytes(), `missing export "meshfed_abi_version" () -> (i32)`},
		{"missing alloc", abiModule(abi.Version, resultAt2048, abi.ExportAlloc).bytes(), `missing export "meshfed_alloc" (i32) -> (i32)`},
		{"missing process", abiModule(abi.Version, resultAt2048, abi.ExportProcess).bytes(), `missing export "meshfed_process" (i32, i32) -> (i64)`},
		{"missing memory", abiModule(abi.Version, resultAt2048, abi.ExportMemory).bytes(), `missing export "memory"`},
		{"mistyped process", wrongProcess.bytes(), `export "meshfed_process" has type (i32) -> (i64), want (i32, i32) -> (i64)`},
		{"abi version 2", abiModule(2, resultAt2048, "").bytes(), "meshfed_abi_version returned ABI version 2; this agent speaks version 1"},
		{"unknown host import", unknownImport.bytes(), "imports meshfed.launch_missiles, which this agent does not provide"},
		{"mistyped host import", badImportType.bytes(), "imports meshfed.log with type (i32) -> (), want (i32, i32, i32) -> ()"},
		{"foreign import module", otherModule.bytes(), `imports env.abort: only modules "meshfed" and "wasi_snapshot_preview1" are provided`},
		{"abi version traps", abiModule(abi.Version, resultAt2048, "").bytesWithVersionBody(unreachableOp), "meshfed_abi_version: wasm error: unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := r.Start(context.Background(), runtime.Spec{Module: tc.module})
			if err == nil {
				f.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
			if tc.name != "abi version traps" && !errors.Is(err, ErrBadModule) {
				t.Errorf("err = %v, want it to wrap ErrBadModule", err)
			}
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.modules {
		if m.refs != 0 {
			t.Errorf("module %s still has %d references after failed starts", m.name, m.refs)
		}
	}
}

func (m wasmModule) bytesWithVersionBody(body []byte) []byte {
	m.funcs = append([]wasmFunc{}, m.funcs...)
	m.funcs[0].body = body
	return m.bytes()
}

func TestCompiledModulesAreSharedAndEvicted(t *testing.T) {
	r, err := New(slog.New(slog.DiscardHandler), Options{MaxIdleModules: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	modA := abiModule(abi.Version, resultAt2048, "").bytes()
	modB := abiModule(abi.Version, unreachableOp, "").bytes()
	refs := func() map[string]int {
		r.mu.Lock()
		defer r.mu.Unlock()
		out := map[string]int{}
		for _, m := range r.modules {
			out[m.name] = m.refs
		}
		return out
	}
	a1 := start(t, r, modA)
	a2 := start(t, r, modA)
	nameA := a1.(*function).mod.name
	if a1.(*function).mod != a2.(*function).mod {
		t.Fatal("two instances of one module compiled it twice")
	}
	b1 := start(t, r, modB)
	nameB := b1.(*function).mod.name
	if got, want := refs(), map[string]int{nameA: 2, nameB: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("refs = %v, want %v", got, want)
	}
	a1.Close()
	a2.Close()
	if got, want := refs(), map[string]int{nameA: 0, nameB: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after closing A's instances refs = %v, want %v (A kept idle)", got, want)
	}
	b1.Close()
	if got, want := refs(), map[string]int{nameB: 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after closing B refs = %v, want %v (A, least recently used, evicted)", got, want)
	}
	if err := a1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := process(t, a1, newFakeContext(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Process after Close: %v, want ErrClosed", err)
	}
	// A restarts by compiling again.
	a3 := start(t, r, modA)
	if got := mustProcess(t, a3, newFakeContext(), "x"); got != nil {
		t.Fatalf("outputs = %v", got)
	}
}

func TestRuntimeClose(t *testing.T) {
	r, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod := abiModule(abi.Version, resultAt2048, "")
	mod.data, mod.dataOffset = []byte{0, 0, 0, 0, 0}, 2048
	f := start(t, r, mod.bytes())
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := process(t, f, newFakeContext(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Process after the runtime closed: %v, want ErrClosed", err)
	}
	if _, err := r.Start(context.Background(), runtime.Spec{Module: mod.bytes()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
}
