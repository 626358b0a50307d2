// Package exec is the runtime of functions written in any language: one
// child process per instance, speaking meshfed's exec protocol (a versioned,
// length-framed binary protocol, docs/exec-protocol.md) on its stdin and
// stdout, logging on its stderr. It owns the process's life: start and
// handshake on the first message, one message in flight at a time, state
// calls answered from the instance's runtime.Context, restart with
// exponential backoff after a crash, a bad frame or a timeout, and a clean
// stop (process group killed and reaped) on Close.
package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/limits"
)

// Options tune the runtime. The zero value is ready to use.
type Options struct {
	// MaxFrameSize bounds a frame (type byte + body) in both directions;
	// zero: DefaultMaxFrameSize (16 MiB). It is announced in HELLO, and
	// kept between 64 bytes and 4 GiB-1.
	MaxFrameSize int
	// MinBackoff and MaxBackoff bound the wait before restarting a process
	// that crashed, sent a bad frame or timed out: MinBackoff after the
	// first failure, doubling up to MaxBackoff. Zero: 100 ms and 10 s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HealthyAfter is how long a process must have run for its failure to
	// count as the first one again (resetting the backoff); zero: 30 s.
	HealthyAfter time.Duration
	// StartTimeout bounds process start plus handshake (HELLO → READY);
	// zero: 10 s. The message's own deadline applies too.
	StartTimeout time.Duration
	// StopGrace is how long Close waits, after closing an idle process's
	// stdin, for it to exit before killing its process group; zero: 2 s.
	StopGrace time.Duration
	// MaxOutputs bounds the OUTPUT frames of one message; zero: 100,000.
	MaxOutputs int
	// BaseEnv is the environment every process starts with, before the
	// spec's Env is added. Nil: PATH (the agent's, or a standard one),
	// LANG=C.UTF-8 and MESHFED_EXEC_PROTOCOL=<version>.
	BaseEnv map[string]string
	// Now reads the clock for backoff decisions; nil: time.Now.
	Now func() time.Time
	// Limits puts each process under its function's resources as CPU and
	// memory limits (a cgroup or rlimits, see package limits); nil: no
	// limits.
	Limits *limits.Enforcer
}

func (o Options) withDefaults() Options {
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	// The length field is 32 bits; the minimum fits a HELLO and a DONE.
	o.MaxFrameSize = min(max(o.MaxFrameSize, 64), math.MaxUint32)
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.HealthyAfter <= 0 {
		o.HealthyAfter = 30 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.MaxOutputs <= 0 {
		o.MaxOutputs = 100_000
	}
	if o.BaseEnv == nil {
		path := os.Getenv("PATH")
		if path == "" {
			path = "/usr/local/bin:/usr/bin:/bin"
		}
		o.BaseEnv = map[string]string{
			"PATH":                  path,
			"LANG":                  "C.UTF-8",
			"MESHFED_EXEC_PROTOCOL": fmt.Sprint(ProtocolVersion),
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Runtime starts exec functions.
type Runtime struct {
	logger *slog.Logger
	opts   Options
}

var (
	_ runtime.Runtime = (*Runtime)(nil)
	_ runtime.Limited = (*Runtime)(nil)
)

// New returns the exec runtime. Process output on stderr goes to the
// instance's logger (runtime.Context.Logger), or to logger when the
// instance has none. A nil logger discards.
func New(logger *slog.Logger, opts Options) *Runtime {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runtime{logger: logger, opts: opts.withDefaults()}
}

// Name implements runtime.Runtime.
func (*Runtime) Name() string { return "exec" }

// LimitsMechanism implements runtime.Limited: how processes are held to
// their function's resources.
func (r *Runtime) LimitsMechanism() string { return string(r.opts.Limits.Mechanism()) }

// groupSeq numbers the limits groups of this agent process's children.
var groupSeq atomic.Uint64

// Start implements runtime.Runtime. It checks that the command can run and
// that the configuration encodes; the process itself starts with the first
// message, because HELLO carries the instance's identity, which the
// instance passes with each message (runtime.Context).
func (r *Runtime) Start(_ context.Context, spec runtime.Spec) (runtime.Function, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, fmt.Errorf("exec: spec has no command")
	}
	if spec.Dir != "" {
		st, err := os.Stat(spec.Dir)
		if err != nil {
			return nil, fmt.Errorf("exec: working directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("exec: working directory %s is not a directory", spec.Dir)
		}
	}
	path, err := resolveCommand(spec.Command[0], spec.Dir)
	if err != nil {
		return nil, fmt.Errorf("exec: command %q: %w", spec.Command[0], err)
	}
	config := []byte("{}")
	if len(spec.Config) > 0 {
		config, err = json.Marshal(spec.Config)
		if err != nil {
			return nil, fmt.Errorf("exec: config does not encode as JSON: %w", err)
		}
	}
	env := make(map[string]string, len(r.opts.BaseEnv)+len(spec.Env))
	for k, v := range r.opts.BaseEnv {
		env[k] = v
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	envList := make([]string, 0, len(env))
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)
	return &function{
		rt:      r,
		path:    path,
		args:    append([]string(nil), spec.Command...),
		dir:     spec.Dir,
		env:     envList,
		config:  config,
		limits:  limits.Limits{CPUMillis: spec.Resources.CPUMillis, MemoryBytes: spec.Resources.MemoryBytes},
		closing: make(chan struct{}),
	}, nil
}

// resolveCommand finds the executable the way the process start will: a
// bare name through PATH, a relative path from dir.
func resolveCommand(name, dir string) (string, error) {
	if filepath.Base(name) == name {
		return osexec.LookPath(name)
	}
	check := name
	if !filepath.IsAbs(name) && dir != "" {
		check = filepath.Join(dir, name)
	}
	st, err := os.Stat(check)
	if err != nil {
		return "", err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", check)
	}
	return name, nil
}
