// Package runtime defines how an instance runs user functions: the Function
// and Runtime interfaces every runtime (builtin, exec, wasm) implements, the
// messages and outputs exchanged, and the state and context a function sees.
// The instance loop (consume → Process → produce → ack) lives in the agent;
// a runtime only turns one input message into zero or more outputs.
package runtime

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Message is one input message.
type Message struct {
	// Topic the message was consumed from (full persistent:// name).
	Topic string
	// Key is the message key; empty when none.
	Key string
	// Payload is the message body.
	Payload []byte
	// Properties are the message's user properties.
	Properties map[string]string
	// EventTime is the producer-set event time; zero when none.
	EventTime time.Time
	// PublishTime is when the broker accepted the message.
	PublishTime time.Time
	// ProducerName and SequenceID identify the message across
	// geo-replicated copies.
	ProducerName string
	SequenceID   int64
}

// Output is one message a function emits.
type Output struct {
	// Topic overrides the function's output topic; empty uses it.
	Topic string
	// Key of the output message; empty: none.
	Key string
	// Payload of the output message.
	Payload []byte
	// Properties of the output message.
	Properties map[string]string
}

// State is the key/value state a function keeps across messages, restarts
// and moves. Counters and values live in separate key spaces.
type State interface {
	// IncrCounter adds delta to a counter and returns the new value.
	IncrCounter(ctx context.Context, key string, delta int64) (int64, error)
	// GetCounter returns a counter's value; zero when never set.
	GetCounter(ctx context.Context, key string) (int64, error)
	// PutState stores a value; a nil value deletes the key.
	PutState(ctx context.Context, key string, value []byte) error
	// GetState returns a value; nil when absent.
	GetState(ctx context.Context, key string) ([]byte, error)
}

// Context is what a function sees of its instance.
type Context interface {
	State
	// Tenant, Namespace, Mesh and Function name the function.
	Tenant() string
	Namespace() string
	Mesh() string
	Function() string
	// InstanceIndex is this instance's index among the function's replicas.
	InstanceIndex() int
	// Config is the function's user configuration (spec.functions[].config).
	Config() map[string]any
	// Logger writes to the agent's log and, when set, the function's logTopic.
	Logger() *slog.Logger
}

// Function is one started function instance.
type Function interface {
	// Process handles one message and returns its outputs (possibly none).
	// An error fails this message only: the instance retries it up to
	// maxMessageRetry and then dead-letters or skips it.
	Process(ctx context.Context, fctx Context, msg *Message) ([]Output, error)
	// Close stops the function and frees its resources.
	Close() error
}

// CPUMeter is implemented by functions whose CPU use can be measured
// (exec: the process's user and system time).
type CPUMeter interface {
	// CPUTime is the CPU time the function's processes used since it
	// started; false when it cannot be measured here.
	CPUTime() (time.Duration, bool)
}

// Spec is what a runtime needs to start a function.
type Spec struct {
	// Builtin names a compiled-in function (runtime "builtin").
	Builtin string
	// Command and Env start an executable (runtime "exec"); Dir is its
	// working directory (an unpacked package, or empty).
	Command []string
	Env     map[string]string
	Dir     string
	// Module is a WebAssembly module's bytes (runtime "wasm").
	Module []byte
	// Config is the user configuration.
	Config map[string]any
	// Resources are the function's resources, enforced as limits where
	// the runtime can (docs/limits.md).
	Resources Resources
}

// Resources are a function's CPU and memory. Zero fields are not limited.
type Resources struct {
	// CPUMillis is in thousandths of a core.
	CPUMillis int64
	// MemoryBytes is in bytes.
	MemoryBytes int64
}

// Limited is implemented by runtimes that enforce Resources; the agent
// reports LimitsMechanism (cgroup2, cgroup1, rlimit, wasm or none) in each
// instance's status. A runtime without it enforces nothing.
type Limited interface {
	LimitsMechanism() string
}

// Runtime starts functions of one kind.
type Runtime interface {
	// Name is "builtin", "exec" or "wasm".
	Name() string
	// Start prepares a function; it fails fast on a spec it cannot run.
	Start(ctx context.Context, spec Spec) (Function, error)
}

// ErrUnknownFunction is returned by the builtin runtime for an unknown name.
var ErrUnknownFunction = errors.New("unknown builtin function")

// ErrOutOfMemory wraps, besides ErrFunctionCrashed, the error of a function
// killed for exceeding its memory limit: the instance reports OOMKilled.
var ErrOutOfMemory = errors.New("memory limit exceeded")

// ErrFunctionCrashed wraps errors of a function process or module that
// stopped working; the instance restarts the function with backoff.
var ErrFunctionCrashed = errors.New("function crashed")
