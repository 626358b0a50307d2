package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

// function is one function instance: a module instance that is replaced by
// a fresh one after a trap.
type function struct {
	rt   *Runtime
	mod  *module
	base *slog.Logger

	// mu serializes calls into the module and guards every field below
	// (the log writers run inside calls, so they hold it too).
	mu sync.Mutex
	// inst is the live module instance; nil after a trap until the next
	// Process instantiates a fresh one.
	inst *instance
	// closed is set by Close.
	closed bool
	// cur is the Process call in progress; nil between calls.
	cur *call
	// in is the reused encoding buffer of the input message.
	in []byte
	// stack is the reused parameter/result stack of exported calls.
	stack [2]uint64
	// stdout and stderr receive the module's WASI output.
	stdout, stderr *logWriter
}

var _ runtime.Function = (*function)(nil)

const (
	// minInput is the smallest input buffer the host asks meshfed_alloc
	// for, so that small messages of varying size share one buffer.
	minInput = 4 << 10
	// maxKeptInput: an input buffer larger than this is replaced by a
	// minInput one when a small message comes, so that one huge message
	// does not pin its buffer in the module forever.
	maxKeptInput = 1 << 20
)

// instance is one module instance and its exports.
type instance struct {
	mod                     api.Module
	mem                     api.Memory
	version, alloc, process api.Function
	// inPtr and inCap locate the input buffer meshfed_alloc last returned,
	// reused for every message that fits; inCap is zero before the first.
	inPtr, inCap uint32
}

func (i *instance) close() { i.mod.Close(context.Background()) }

func newFunction(r *Runtime, m *module) *function {
	f := &function{rt: r, mod: m, base: r.logger.With("module", m.name)}
	f.stdout = &logWriter{f: f, level: slog.LevelInfo, stream: "stdout"}
	f.stderr = &logWriter{f: f, level: slog.LevelWarn, stream: "stderr", keepTail: true}
	return f
}

// logger is the current call's function logger, else the runtime's.
func (f *function) logger() *slog.Logger {
	if f.cur != nil && f.cur.fctx != nil {
		if l := f.cur.fctx.Logger(); l != nil {
			return l.With("runtime", "wasm", "module", f.mod.name)
		}
	}
	return f.base
}

// callContext derives the context of one call into the module: it carries
// c for the host functions and the runtime's MessageTimeout.
func (f *function) callContext(ctx context.Context, c *call) (context.Context, context.CancelFunc) {
	if c != nil {
		ctx = context.WithValue(ctx, callKey{}, c)
	}
	if t := f.rt.opts.MessageTimeout; t > 0 {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > t {
			return context.WithTimeout(ctx, t)
		}
	}
	return ctx, func() {}
}

func (f *function) instantiateLocked(ctx context.Context) (*instance, error) {
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module
		WithStartFunctions(abi.ExportInitialize).
		WithStdout(f.stdout).
		WithStderr(f.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	f.stderr.resetTail()
	mod, err := f.mod.eng.wr.InstantiateModule(ctx, f.mod.compiled, cfg)
	if err != nil {
		if f.rt.closed.Load() {
			return nil, ErrClosed
		}
		return nil, f.trapError(ctx, abi.ExportInitialize, err)
	}
	inst := &instance{
		mod:     mod,
		mem:     mod.ExportedMemory(abi.ExportMemory),
		version: mod.ExportedFunction(abi.ExportABIVersion),
		alloc:   mod.ExportedFunction(abi.ExportAlloc),
		process: mod.ExportedFunction(abi.ExportProcess),
	}
	return inst, nil
}

// Process implements runtime.Function.
func (f *function) Process(ctx context.Context, fctx runtime.Context, msg *runtime.Message) ([]runtime.Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.rt.closed.Load() {
		return nil, ErrClosed
	}
	c := &call{fctx: fctx, fn: f}
	f.cur = c
	defer func() { f.cur = nil }()
	cctx, cancel := f.callContext(ctx, c)
	defer cancel()
	if f.inst == nil {
		inst, err := f.instantiateLocked(cctx)
		if err != nil {
			return nil, err
		}
		f.inst = inst
	}
	outs, err := f.processLocked(cctx, msg)
	if errors.Is(err, runtime.ErrFunctionCrashed) {
		if f.outOfMemory(err) {
			err = fmt.Errorf("%w (memory cap %d KiB): %w", err, uint64(f.mod.eng.pages)*64, runtime.ErrOutOfMemory)
		}
		f.inst.close()
		f.inst = nil
		f.logger().Warn("wasm module crashed; the next message runs in a fresh instance", "err", err)
		return nil, err
	}
	return outs, err
}

func (f *function) processLocked(ctx context.Context, msg *runtime.Message) ([]runtime.Output, error) {
	m := abi.Message{
		Topic:        msg.Topic,
		Key:          msg.Key,
		Payload:      msg.Payload,
		Properties:   msg.Properties,
		ProducerName: msg.ProducerName,
		SequenceID:   msg.SequenceID,
	}
	if !msg.EventTime.IsZero() {
		m.EventTime = msg.EventTime.UnixNano()
	}
	if !msg.PublishTime.IsZero() {
		m.PublishTime = msg.PublishTime.UnixNano()
	}
	if cap(f.in) > 1<<20 {
		f.in = nil // do not keep one huge message's buffer forever
	}
	f.in = abi.AppendMessage(f.in[:0], &m)
	if uint64(len(f.in)) > uint64(f.mod.eng.pages)*65536 {
		return nil, fmt.Errorf("message of %d encoded bytes exceeds the module's memory limit", len(f.in))
	}
	f.stderr.resetTail()
	inst, stack := f.inst, f.stack[:]
	n := uint32(len(f.in))
	if n > inst.inCap || (inst.inCap > maxKeptInput && n <= minInput) {
		size := max(n, minInput)
		stack[0] = api.EncodeU32(size)
		if err := inst.alloc.CallWithStack(ctx, stack); err != nil {
			return nil, f.trapError(ctx, abi.ExportAlloc, err)
		}
		inst.inPtr, inst.inCap = api.DecodeU32(stack[0]), size
		if _, ok := inst.mem.Read(inst.inPtr, size); !ok {
			inst.inCap = 0
			return nil, fmt.Errorf("%w: wasm module %s: %s(%d) returned %#x, out of bounds of memory (%d bytes)", runtime.ErrFunctionCrashed, f.mod.name, abi.ExportAlloc, size, inst.inPtr, inst.mem.Size())
		}
	}
	if !inst.mem.Write(inst.inPtr, f.in) {
		// The guest shrank its memory? Memory cannot shrink; be safe anyway.
		return nil, fmt.Errorf("%w: wasm module %s: input buffer [%#x, +%d) is out of bounds of memory", runtime.ErrFunctionCrashed, f.mod.name, inst.inPtr, n)
	}
	stack[0], stack[1] = api.EncodeU32(inst.inPtr), api.EncodeU32(n)
	if err := inst.process.CallWithStack(ctx, stack); err != nil {
		return nil, f.trapError(ctx, abi.ExportProcess, err)
	}
	rptr, rlen := abi.Unpack(stack[0])
	view, ok := inst.mem.Read(rptr, rlen)
	if !ok {
		return nil, fmt.Errorf("%w: wasm module %s: %s returned a result at [%#x, +%d), out of bounds of memory (%d bytes)", runtime.ErrFunctionCrashed, f.mod.name, abi.ExportProcess, rptr, rlen, inst.mem.Size())
	}
	// Copy out of guest memory: the next call may overwrite it. Output
	// payloads alias this copy.
	outs, guestErr, err := decodeResult(bytes.Clone(view))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: wasm module %s: %s returned a malformed result: %w", runtime.ErrFunctionCrashed, f.mod.name, abi.ExportProcess, err)
	case guestErr != "":
		return nil, &FunctionError{Message: guestErr, Host: f.cur.hostErr}
	}
	return outs, nil
}

// decodeResult parses what meshfed_process returned: the outputs, or the
// function's error message. Payloads alias b.
func decodeResult(b []byte) ([]runtime.Output, string, error) {
	outs, guestErr, err := abi.DecodeResult(b)
	if err != nil || guestErr != "" {
		return nil, guestErr, err
	}
	if len(outs) == 0 {
		return nil, "", nil
	}
	res := make([]runtime.Output, len(outs))
	for i, o := range outs {
		res[i] = runtime.Output(o)
	}
	return res, "", nil
}

// outOfMemory tells whether a crash was the module running out of memory:
// the guest's runtime said so (Go: "fatal error: out of memory"), or its
// memory had reached the cap. A module that handles a failed memory.grow
// by trapping with another message reads as a plain crash.
func (f *function) outOfMemory(err error) bool {
	if strings.Contains(err.Error(), "out of memory") {
		return true
	}
	return f.inst != nil && f.inst.mem != nil && uint64(f.inst.mem.Size()) >= uint64(f.mod.eng.pages)*65536
}

// trapError turns the error of a call into the module into a crash error
// that names the trap: a Go panic (from the module's stderr), a wasm trap
// (unreachable, out-of-bounds access, …), an exit, or the timeout.
func (f *function) trapError(ctx context.Context, export string, err error) error {
	var what string
	var exit *sys.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded,
		errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		what = "interrupted"
		if ctx.Err() == context.DeadlineExceeded {
			what = "timed out"
		}
		return fmt.Errorf("%w: wasm module %s: %s %s: %w", runtime.ErrFunctionCrashed, f.mod.name, export, what, ctx.Err())
	case errors.As(err, &exit):
		what = fmt.Sprintf("exited with code %d", exit.ExitCode())
	default:
		what, _, _ = strings.Cut(err.Error(), "\n") // drop wazero's stack trace
		if i := strings.Index(what, "wasm error: "); i > 0 {
			what = what[i:] // drop "module[] function[_initialize] failed: "
		}
	}
	if p := f.stderr.panicLine(); p != "" {
		what = p + " (" + what + ")"
	}
	f.base.Debug("wasm trap", "export", export, "err", err)
	return fmt.Errorf("%w: wasm module %s: %s: %s", runtime.ErrFunctionCrashed, f.mod.name, export, what)
}

// info encodes get_context's answer for fctx.
func (f *function) info(fctx runtime.Context) ([]byte, error) {
	cfg := []byte("{}")
	if c := fctx.Config(); len(c) > 0 {
		var err error
		if cfg, err = json.Marshal(c); err != nil {
			return nil, fmt.Errorf("encode config: %w", err)
		}
	}
	return abi.AppendInfo(nil, &abi.Info{
		Tenant:        fctx.Tenant(),
		Namespace:     fctx.Namespace(),
		Mesh:          fctx.Mesh(),
		Function:      fctx.Function(),
		InstanceIndex: int64(fctx.InstanceIndex()),
		ConfigJSON:    cfg,
	}), nil
}

// Close implements runtime.Function.
func (f *function) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.inst != nil {
		f.inst.close()
		f.inst = nil
	}
	f.stdout.flush()
	f.stderr.flush()
	f.rt.release(f.mod)
	return nil
}
