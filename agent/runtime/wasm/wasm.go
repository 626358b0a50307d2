// Package wasm is the runtime of WebAssembly functions ("wasm"): modules
// speaking meshfed's ABI (docs/wasm-abi.md, package abi), run with wazero —
// pure Go, no cgo. A module is compiled once per content (keyed by its
// SHA-256) and shared by every instance of it; each function instance gets
// its own module instance with WASI, a memory cap and a per-message timeout.
// A function's resources.memory lowers its memory cap (one wazero runtime
// per distinct cap); CPU has no fuel in wazero, so only the timeout bounds
// a call's CPU time (docs/limits.md).
// A trap fails only the message that caused it; the next message runs in a
// fresh module instance.
package wasm

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

// Options tune the runtime. The zero value is usable.
type Options struct {
	// MaxMemoryPages caps each module instance's linear memory, in 64 KiB
	// pages; zero means 1024 (64 MiB). A function's resources.memory
	// lowers it for that function, never raises it.
	MaxMemoryPages uint32
	// MessageTimeout bounds one Process call (and an instantiation) when the
	// caller's context has no earlier deadline; zero means 30 s, negative
	// means no bound beyond the caller's context.
	MessageTimeout time.Duration
	// MaxIdleModules is how many compiled modules no instance uses are kept
	// for a later Start; zero means 8, negative means none.
	MaxIdleModules int
	// Interpreter runs modules in wazero's interpreter instead of its
	// compiler; zero uses the compiler where wazero supports the platform.
	Interpreter bool
}

const (
	defaultMaxMemoryPages = 1024
	defaultMessageTimeout = 30 * time.Second
	defaultMaxIdleModules = 8
)

// Runtime runs WebAssembly functions. It is safe for concurrent use.
type Runtime struct {
	logger *slog.Logger
	opts   Options

	// closed is set by Close.
	closed atomic.Bool

	// mu guards engines, modules and tick.
	mu sync.Mutex
	// engines are the wazero runtimes by memory cap in pages; the one of
	// MaxMemoryPages is made by New, others on first use.
	engines map[uint32]*engine
	// modules caches compiled modules by the SHA-256 of their bytes and
	// their engine's memory cap.
	modules map[moduleKey]*module
	// tick orders idle modules for eviction; it only grows.
	tick uint64
}

var (
	_ runtime.Runtime = (*Runtime)(nil)
	_ runtime.Limited = (*Runtime)(nil)
)

// engine is one wazero runtime, with WASI and the host module, whose
// module instances' memories are capped at pages.
type engine struct {
	pages uint32
	wr    wazero.Runtime
	// ready is closed once wr and err are set.
	ready chan struct{}
	err   error
}

// moduleKey identifies a compiled module: content and engine.
type moduleKey struct {
	sum   [sha256.Size]byte
	pages uint32
}

// module is one compiled module, shared by all instances of its content
// with one memory cap.
type module struct {
	key  moduleKey
	eng  *engine
	name string // "sha256:" and the first 12 hex digits, for messages
	// ready is closed once compiled and err are set.
	ready    chan struct{}
	compiled wazero.CompiledModule
	err      error
	// refs counts the functions using the module; idleAt is the tick at
	// which refs dropped to zero. Both guarded by Runtime.mu.
	refs   int
	idleAt uint64
}

// New returns a wasm runtime logging to logger (nil: slog.Default()). Close
// it to free its compiled modules.
func New(logger *slog.Logger, opts Options) (*Runtime, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if opts.MaxMemoryPages == 0 {
		opts.MaxMemoryPages = defaultMaxMemoryPages
	}
	if opts.MessageTimeout == 0 {
		opts.MessageTimeout = defaultMessageTimeout
	}
	if opts.MaxIdleModules == 0 {
		opts.MaxIdleModules = defaultMaxIdleModules
	}
	r := &Runtime{
		logger:  logger.With("runtime", "wasm"),
		opts:    opts,
		engines: map[uint32]*engine{},
		modules: map[moduleKey]*module{},
	}
	if _, err := r.engine(opts.MaxMemoryPages); err != nil {
		return nil, err
	}
	return r, nil
}

// engine returns the wazero runtime whose memories are capped at pages,
// making it on first use.
func (r *Runtime) engine(pages uint32) (*engine, error) {
	r.mu.Lock()
	e, ok := r.engines[pages]
	if !ok {
		e = &engine{pages: pages, ready: make(chan struct{})}
		r.engines[pages] = e
	}
	r.mu.Unlock()
	if ok {
		<-e.ready
		return e, e.err
	}
	cfg := wazero.NewRuntimeConfig()
	if r.opts.Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	cfg = cfg.WithCloseOnContextDone(true).WithMemoryLimitPages(pages)
	ctx := context.Background()
	e.wr = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.wr); err != nil {
		e.err = fmt.Errorf("instantiate wasi: %w", err)
	} else if err := r.instantiateHost(ctx, e.wr); err != nil {
		e.err = fmt.Errorf("instantiate host module %q: %w", abi.ImportModule, err)
	}
	if e.err != nil {
		e.wr.Close(ctx)
		r.mu.Lock()
		delete(r.engines, pages)
		r.mu.Unlock()
	}
	close(e.ready)
	return e, e.err
}

// pagesFor is the memory cap of a function with memory bytes of
// resources (zero: none): MaxMemoryPages, or fewer.
func (r *Runtime) pagesFor(memory int64) uint32 {
	const page = 64 << 10
	if memory <= 0 {
		return r.opts.MaxMemoryPages
	}
	return uint32(min(max((memory+page-1)/page, 1), int64(r.opts.MaxMemoryPages)))
}

// LimitsMechanism implements runtime.Limited: module memories are capped
// by the runtime itself.
func (r *Runtime) LimitsMechanism() string { return "wasm" }

// Name implements runtime.Runtime.
func (r *Runtime) Name() string { return "wasm" }

// Start implements runtime.Runtime: it compiles spec.Module (or reuses its
// compiled form), checks its exports and imports, instantiates it and checks
// its ABI version.
func (r *Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Function, error) {
	if len(spec.Module) == 0 {
		return nil, fmt.Errorf("%w: spec has no module bytes", ErrBadModule)
	}
	eng, err := r.engine(r.pagesFor(spec.Resources.MemoryBytes))
	if err != nil {
		return nil, err
	}
	m, err := r.acquire(ctx, eng, spec.Module)
	if err != nil {
		return nil, err
	}
	f := newFunction(r, m)
	f.mu.Lock()
	defer f.mu.Unlock()
	cctx, cancel := f.callContext(ctx, nil)
	defer cancel()
	inst, err := f.instantiateLocked(cctx)
	if err != nil {
		r.release(m)
		return nil, err
	}
	stack := f.stack[:]
	if err := inst.version.CallWithStack(cctx, stack); err != nil {
		inst.close()
		r.release(m)
		return nil, f.trapError(cctx, abi.ExportABIVersion, err)
	}
	if v := int32(stack[0]); v != abi.Version {
		inst.close()
		r.release(m)
		return nil, fmt.Errorf("%w %s: %s returned ABI version %d; this agent speaks version %d", ErrBadModule, m.name, abi.ExportABIVersion, v, abi.Version)
	}
	f.inst = inst
	return f, nil
}

// Close frees every compiled module and module instance; functions started
// by r fail from then on.
func (r *Runtime) Close(ctx context.Context) error {
	r.closed.Store(true)
	r.mu.Lock()
	r.modules = map[moduleKey]*module{}
	engines := r.engines
	r.engines = map[uint32]*engine{}
	r.mu.Unlock()
	var errs []error
	for _, e := range engines {
		<-e.ready
		if e.err == nil {
			errs = append(errs, e.wr.Close(ctx))
		}
	}
	return errors.Join(errs...)
}

// acquire returns the compiled module for b in eng, compiling it unless
// cached, with one more reference.
func (r *Runtime) acquire(ctx context.Context, eng *engine, b []byte) (*module, error) {
	sum := sha256.Sum256(b)
	key := moduleKey{sum: sum, pages: eng.pages}
	if r.closed.Load() {
		return nil, ErrClosed
	}
	r.mu.Lock()
	m, cached := r.modules[key]
	if !cached {
		m = &module{key: key, eng: eng, name: "sha256:" + hex.EncodeToString(sum[:6]), ready: make(chan struct{})}
		r.modules[key] = m
	}
	m.refs++
	r.mu.Unlock()
	if !cached {
		start := time.Now()
		m.compiled, m.err = r.compile(ctx, eng.wr, m.name, b)
		close(m.ready)
		if m.err == nil {
			r.logger.Debug("compiled wasm module", "module", m.name, "bytes", len(b), "took", time.Since(start))
		}
	}
	select {
	case <-m.ready:
	case <-ctx.Done():
		r.release(m)
		return nil, fmt.Errorf("wait for module %s to compile: %w", m.name, ctx.Err())
	}
	if m.err != nil {
		r.mu.Lock()
		if r.modules[key] == m {
			delete(r.modules, key) // let a later Start try again
		}
		r.mu.Unlock()
		return nil, m.err
	}
	return m, nil
}

// release drops a reference to m and closes the least recently used
// compiled modules beyond MaxIdleModules.
func (r *Runtime) release(m *module) {
	r.mu.Lock()
	m.refs--
	if m.refs > 0 || r.modules[m.key] != m {
		r.mu.Unlock()
		return
	}
	r.tick++
	m.idleAt = r.tick
	var idle []*module
	for _, o := range r.modules {
		if o.refs == 0 {
			idle = append(idle, o)
		}
	}
	var evict []*module
	if keep := max(r.opts.MaxIdleModules, 0); len(idle) > keep {
		slices.SortFunc(idle, func(a, b *module) int { return cmp.Compare(a.idleAt, b.idleAt) })
		evict = idle[:len(idle)-keep]
		for _, o := range evict {
			delete(r.modules, o.key)
		}
	}
	r.mu.Unlock()
	for _, o := range evict {
		if o.compiled != nil {
			o.compiled.Close(context.Background())
		}
	}
}

// compile compiles b and checks that it speaks the ABI.
func (r *Runtime) compile(ctx context.Context, wr wazero.Runtime, name string, b []byte) (wazero.CompiledModule, error) {
	c, err := wr.CompileModule(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("compile wasm module %s: %w", name, ctx.Err())
		}
		return nil, fmt.Errorf("%w %s: %v", ErrBadModule, name, err)
	}
	if err := checkModule(c); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("%w %s: %w", ErrBadModule, name, err)
	}
	return c, nil
}

type signature struct {
	params, results []api.ValueType
}

func (s signature) String() string {
	return "(" + valueTypes(s.params) + ") -> (" + valueTypes(s.results) + ")"
}

func valueTypes(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

func (s signature) matches(d api.FunctionDefinition) bool {
	return slices.Equal(s.params, d.ParamTypes()) && slices.Equal(s.results, d.ResultTypes())
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// requiredExports are the functions every module exports, in check order.
var requiredExports = []struct {
	name string
	sig  signature
}{
	{abi.ExportABIVersion, signature{nil, []api.ValueType{i32}}},
	{abi.ExportAlloc, signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
	{abi.ExportProcess, signature{[]api.ValueType{i32, i32}, []api.ValueType{i64}}},
}

// checkModule reports the first missing or mistyped export and the first
// import the host does not provide.
func checkModule(c wazero.CompiledModule) error {
	exports := c.ExportedFunctions()
	for _, e := range requiredExports {
		d, ok := exports[e.name]
		switch {
		case !ok:
			return fmt.Errorf("missing export %q %s (build the module with the meshfed wasm SDK, sdk/wasm, and -buildmode=c-shared)", e.name, e.sig)
		case !e.sig.matches(d):
			return fmt.Errorf("export %q has type (%s) -> (%s), want %s", e.name, valueTypes(d.ParamTypes()), valueTypes(d.ResultTypes()), e.sig)
		}
	}
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("missing export %q (the module's linear memory)", abi.ExportMemory)
	}
	for _, d := range c.ImportedFunctions() {
		mod, name, _ := d.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
			// wazero implements all of wasip1; instantiation names any gap.
		case abi.ImportModule:
			h, ok := hostFuncByName(name)
			if !ok {
				return fmt.Errorf("imports %s.%s, which this agent does not provide (ABI version %d)", mod, name, abi.Version)
			}
			if !h.sig.matches(d) {
				return fmt.Errorf("imports %s.%s with type (%s) -> (%s), want %s", mod, name, valueTypes(d.ParamTypes()), valueTypes(d.ResultTypes()), h.sig)
			}
		default:
			return fmt.Errorf("imports %s.%s: only modules %q and %q are provided", mod, name, abi.ImportModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	for _, d := range c.ImportedMemories() {
		mod, name, _ := d.Import()
		return fmt.Errorf("imports memory %s.%s: a module must define and export its own memory", mod, name)
	}
	return nil
}
