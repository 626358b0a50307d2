//go:build wasip1

// Package wasmsdk is the guest side of meshfed's WebAssembly ABI (see
// docs/wasm-abi.md): a function written in Go, compiled with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fn.wasm .
//
// registers its handler from an init function and leaves main empty (a
// c-shared wasip1 module is a reactor: main never runs):
//
//	func init() { wasmsdk.Handle(split) }
//	func main() {}
//
// The package provides the module's exports (meshfed_abi_version,
// meshfed_alloc, meshfed_process) and wraps the host's imports (state,
// context, logging). A panic in the handler traps the module: the host fails
// that message and starts a fresh instance for the next one.
package wasmsdk

import (
	"errors"
	"time"
	"unsafe"

	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

// Message is one input message.
type Message struct {
	// Topic the message was consumed from.
	Topic string
	// Key is the message key; empty when none.
	Key string
	// Payload is the message body.
	Payload []byte
	// Properties are the message's user properties; nil when none.
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

// Output is one message the function emits: an empty Topic means the
// function's output topic, an empty Key means no key.
type Output = abi.Output

// Info names the function and carries its user configuration as JSON.
type Info = abi.Info

// Handler processes one message into zero or more outputs. An error fails
// this message only.
type Handler func(ctx *Context, msg Message) ([]Output, error)

// handler is the registered Handler; nil until Handle is called.
var handler Handler

// Handle registers the module's handler. Call it once, from an init
// function.
func Handle(h Handler) {
	if handler != nil {
		panic("wasmsdk: Handle called twice")
	}
	handler = h
}

// ErrHost is wrapped by errors of host calls (state, context); the agent's
// log says why the host call failed.
var ErrHost = errors.New("meshfed host call failed")

type hostError string

func (e hostError) Error() string { return "meshfed host call " + string(e) + " failed" }
func (e hostError) Unwrap() error { return ErrHost }

// Level is a log level, with log/slog's values.
type Level int32

// Log levels.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// Context is what the function sees of its instance during one message.
type Context struct {
	// info is the fetched context; nil until Info is first called.
	info *Info
}

// IncrCounter adds delta to a counter and returns its new value.
func (c *Context) IncrCounter(key string, delta int64) (int64, error) {
	var v int64
	if hostIncrCounter(unsafe.StringData(key), int32(len(key)), delta, &v) != abi.StatusOK {
		return 0, hostError(abi.ImportIncrCounter)
	}
	return v, nil
}

// GetCounter returns a counter's value; zero when never set.
func (c *Context) GetCounter(key string) (int64, error) {
	var v int64
	if hostGetCounter(unsafe.StringData(key), int32(len(key)), &v) != abi.StatusOK {
		return 0, hostError(abi.ImportGetCounter)
	}
	return v, nil
}

// PutState stores a value; a nil value deletes the key.
func (c *Context) PutState(key string, value []byte) error {
	n := int32(len(value))
	if value == nil {
		n = abi.DeleteLen
	}
	if hostPutState(unsafe.StringData(key), int32(len(key)), unsafe.SliceData(value), n) != abi.StatusOK {
		return hostError(abi.ImportPutState)
	}
	return nil
}

// GetState returns a value; nil when absent.
func (c *Context) GetState(key string) ([]byte, error) {
	buf := make([]byte, 256)
	for range 4 {
		n := hostGetState(unsafe.StringData(key), int32(len(key)), unsafe.SliceData(buf), int32(len(buf)))
		switch {
		case n == abi.StatusAbsent:
			return nil, nil
		case n < 0:
			return nil, hostError(abi.ImportGetState)
		case int(n) <= len(buf):
			return buf[:n:n], nil
		}
		buf = make([]byte, n) // too small: the host wrote nothing; retry
	}
	return nil, hostError(abi.ImportGetState)
}

// Info returns the function's names, instance index and configuration.
func (c *Context) Info() (Info, error) {
	if c.info != nil {
		return *c.info, nil
	}
	buf := make([]byte, 512)
	for range 4 {
		n := hostGetContext(unsafe.SliceData(buf), int32(len(buf)))
		if n < 0 {
			return Info{}, hostError(abi.ImportGetContext)
		}
		if int(n) <= len(buf) {
			info, err := abi.DecodeInfo(buf[:n])
			if err != nil {
				return Info{}, err
			}
			c.info = &info
			return info, nil
		}
		buf = make([]byte, n)
	}
	return Info{}, hostError(abi.ImportGetContext)
}

// Log writes msg to the agent's log (and the function's logTopic) at level.
func (c *Context) Log(level Level, msg string) {
	hostLog(int32(level), unsafe.StringData(msg), int32(len(msg)))
}

//go:wasmimport meshfed incr_counter
func hostIncrCounter(key *byte, keyLen int32, delta int64, out *int64) int32

//go:wasmimport meshfed get_counter
func hostGetCounter(key *byte, keyLen int32, out *int64) int32

//go:wasmimport meshfed put_state
func hostPutState(key *byte, keyLen int32, val *byte, valLen int32) int32

//go:wasmimport meshfed get_state
func hostGetState(key *byte, keyLen int32, buf *byte, bufCap int32) int32

//go:wasmimport meshfed get_context
func hostGetContext(buf *byte, bufCap int32) int32

//go:wasmimport meshfed log
func hostLog(level int32, msg *byte, msgLen int32)

var (
	// input is the buffer meshfed_alloc last handed out; the host writes
	// every message that fits into it, until it asks for another.
	input []byte
	// output holds the last result until the host has copied it (it does
	// so before its next call into the module).
	output []byte
)

//go:wasmexport meshfed_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport meshfed_alloc
func alloc(size int32) int32 {
	if size <= 0 {
		input = nil
		return 0
	}
	input = make([]byte, size)
	return pointer(input)
}

//go:wasmexport meshfed_process
func process(ptr, size int32) int64 {
	in := input
	if cap(output) > 1<<20 {
		output = nil // do not keep one huge result's buffer forever
	}
	switch {
	case handler == nil:
		output = abi.AppendError(output[:0], "wasmsdk: Handle was never called (call it from an init function)")
	case in == nil || pointer(in) != ptr || int(size) > len(in) || size < 0:
		output = abi.AppendError(output[:0], "wasmsdk: meshfed_process input was not allocated by meshfed_alloc")
	default:
		output = run(in[:size])
	}
	return int64(abi.Pack(uint32(pointer(output)), uint32(len(output))))
}

func run(in []byte) []byte {
	m, err := abi.DecodeMessage(in)
	if err != nil {
		return abi.AppendError(output[:0], "wasmsdk: "+err.Error())
	}
	msg := Message{
		Topic: m.Topic,
		Key:   m.Key,
		// Copy: the host reuses the input buffer for the next message,
		// and a handler may keep the payload.
		Payload:      append([]byte{}, m.Payload...),
		Properties:   m.Properties,
		ProducerName: m.ProducerName,
		SequenceID:   m.SequenceID,
	}
	if m.EventTime != 0 {
		msg.EventTime = time.Unix(0, m.EventTime)
	}
	if m.PublishTime != 0 {
		msg.PublishTime = time.Unix(0, m.PublishTime)
	}
	outs, err := handler(&Context{}, msg)
	if err != nil {
		return abi.AppendError(output[:0], err.Error())
	}
	return abi.AppendResult(output[:0], outs)
}

// pointer is b's address in linear memory.
func pointer(b []byte) int32 {
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
