package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

// callKey is the context key of the *call a host function serves.
type callKey struct{}

// call is what host functions need of the Process call they serve.
type call struct {
	fctx runtime.Context
	fn   *function
	// hostErr is the first host call error of this call; nil when none.
	hostErr error
}

func (c *call) fail(name string, err error) {
	c.fn.logger().Warn("wasm host call failed", "call", name, "err", err)
	if c.hostErr == nil {
		c.hostErr = fmt.Errorf("%s: %w", name, err)
	}
}

// hostFunc is one function of the "meshfed" host module.
type hostFunc struct {
	name string
	sig  signature
	fn   func(ctx context.Context, c *call, mem api.Memory, stack []uint64)
}

// hostFuncs is the "meshfed" import module of ABI version 1.
var hostFuncs = []hostFunc{
	{abi.ImportIncrCounter, signature{[]api.ValueType{i32, i32, i64, i32}, []api.ValueType{i32}}, hostIncrCounter},
	{abi.ImportGetCounter, signature{[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}}, hostGetCounter},
	{abi.ImportPutState, signature{[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}}, hostPutState},
	{abi.ImportGetState, signature{[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}}, hostGetState},
	{abi.ImportGetContext, signature{[]api.ValueType{i32, i32}, []api.ValueType{i32}}, hostGetContext},
	{abi.ImportLog, signature{[]api.ValueType{i32, i32, i32}, nil}, hostLog},
}

func hostFuncByName(name string) (hostFunc, bool) {
	for _, h := range hostFuncs {
		if h.name == name {
			return h, true
		}
	}
	return hostFunc{}, false
}

func (r *Runtime) instantiateHost(ctx context.Context, wr wazero.Runtime) error {
	b := wr.NewHostModuleBuilder(abi.ImportModule)
	for _, h := range hostFuncs {
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				c, _ := ctx.Value(callKey{}).(*call)
				if c == nil {
					// Called outside meshfed_process (e.g. from _initialize):
					// there is no message and no state to serve.
					r.logger.Warn("wasm host call outside meshfed_process", "call", h.name)
					if len(h.sig.results) > 0 {
						stack[0] = api.EncodeI32(abi.StatusError)
					}
					return
				}
				h.fn(ctx, c, mod.Memory(), stack)
			}), h.sig.params, h.sig.results).
			Export(h.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// guestTrap is what a host function panics with when the guest hands it
// memory it does not have; wazero turns the panic into an error of the
// guest's call, which the function treats as a crash.
type guestTrap struct{ msg string }

func (t guestTrap) Error() string { return t.msg }

func read(mem api.Memory, call string, ptr, n uint32) []byte {
	b, ok := mem.Read(ptr, n)
	if !ok {
		panic(guestTrap{fmt.Sprintf("host call %s: guest range [%#x, +%d) is out of bounds of memory (%d bytes)", call, ptr, n, mem.Size())})
	}
	return b
}

func write(mem api.Memory, call string, ptr uint32, b []byte) {
	if !mem.Write(ptr, b) {
		panic(guestTrap{fmt.Sprintf("host call %s: guest range [%#x, +%d) is out of bounds of memory (%d bytes)", call, ptr, len(b), mem.Size())})
	}
}

func writeInt64(mem api.Memory, call string, ptr uint32, v int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	write(mem, call, ptr, b[:])
}

// answerInt64 ends host call name that returns a number: v written at out
// and StatusOK, or err recorded (see fail) and StatusError.
func (c *call) answerInt64(mem api.Memory, stack []uint64, name string, out uint32, v int64, err error) {
	if err != nil {
		c.fail(name, err)
		stack[0] = api.EncodeI32(abi.StatusError)
		return
	}
	writeInt64(mem, name, out, v)
	stack[0] = api.EncodeI32(abi.StatusOK)
}

func hostIncrCounter(ctx context.Context, c *call, mem api.Memory, stack []uint64) {
	key := string(read(mem, abi.ImportIncrCounter, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	delta, out := int64(stack[2]), api.DecodeU32(stack[3])
	v, err := c.fctx.IncrCounter(ctx, key, delta)
	c.answerInt64(mem, stack, abi.ImportIncrCounter, out, v, err)
}

func hostGetCounter(ctx context.Context, c *call, mem api.Memory, stack []uint64) {
	key := string(read(mem, abi.ImportGetCounter, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	out := api.DecodeU32(stack[2])
	v, err := c.fctx.GetCounter(ctx, key)
	c.answerInt64(mem, stack, abi.ImportGetCounter, out, v, err)
}

func hostPutState(ctx context.Context, c *call, mem api.Memory, stack []uint64) {
	key := string(read(mem, abi.ImportPutState, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	var value []byte // nil deletes
	if n := api.DecodeI32(stack[3]); n != abi.DeleteLen {
		if n < 0 {
			panic(guestTrap{fmt.Sprintf("host call %s: negative value length %d", abi.ImportPutState, n)})
		}
		// Copy: the state may keep the value, and guest memory changes.
		value = append([]byte{}, read(mem, abi.ImportPutState, api.DecodeU32(stack[2]), uint32(n))...)
	}
	if err := c.fctx.PutState(ctx, key, value); err != nil {
		c.fail(abi.ImportPutState, err)
		stack[0] = api.EncodeI32(abi.StatusError)
		return
	}
	stack[0] = api.EncodeI32(abi.StatusOK)
}

func hostGetState(ctx context.Context, c *call, mem api.Memory, stack []uint64) {
	key := string(read(mem, abi.ImportGetState, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	buf, capacity := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	v, err := c.fctx.GetState(ctx, key)
	switch {
	case err != nil:
		c.fail(abi.ImportGetState, err)
		stack[0] = api.EncodeI32(abi.StatusError)
		return
	case v == nil:
		stack[0] = api.EncodeI32(abi.StatusAbsent)
		return
	case len(v) > 1<<30:
		c.fail(abi.ImportGetState, fmt.Errorf("value of %d bytes is too large for a wasm module", len(v)))
		stack[0] = api.EncodeI32(abi.StatusError)
		return
	}
	if uint64(len(v)) <= uint64(capacity) {
		write(mem, abi.ImportGetState, buf, v)
	}
	stack[0] = api.EncodeI32(int32(len(v)))
}

func hostGetContext(_ context.Context, c *call, mem api.Memory, stack []uint64) {
	info, err := c.fn.info(c.fctx)
	if err != nil {
		c.fail(abi.ImportGetContext, err)
		stack[0] = api.EncodeI32(abi.StatusError)
		return
	}
	buf, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if uint64(len(info)) <= uint64(capacity) {
		write(mem, abi.ImportGetContext, buf, info)
	}
	stack[0] = api.EncodeI32(int32(len(info)))
}

func hostLog(ctx context.Context, c *call, mem api.Memory, stack []uint64) {
	level := slog.Level(api.DecodeI32(stack[0]))
	msg := read(mem, abi.ImportLog, api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	c.fn.logger().Log(ctx, level, string(msg))
}
