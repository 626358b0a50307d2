// Package abi is meshfed's WebAssembly ABI, version 1: the names of the
// exports a guest module provides and of the host functions it may import,
// their status codes, and the binary encoding of the message the host passes
// in and of the result the guest hands back. docs/wasm-abi.md is its
// specification. The package has no dependencies so that both the host
// (agent/runtime/wasm) and the guest library (sdk/wasm, GOOS=wasip1) use it.
package abi

// Version is the ABI version this package implements; a guest's
// meshfed_abi_version export must return it.
const Version = 1

// Exports a guest module must provide (besides its linear memory, exported
// as "memory"). _initialize, when present, runs once at instantiation.
const (
	// ExportABIVersion: () -> i32.
	ExportABIVersion = "meshfed_abi_version"
	// ExportAlloc: (size i32) -> i32, a pointer to size writable bytes, the
	// input buffer: the host writes every message that fits into it until
	// it calls meshfed_alloc again.
	ExportAlloc = "meshfed_alloc"
	// ExportProcess: (ptr i32, len i32) -> i64, ptr<<32 | len of the result.
	ExportProcess = "meshfed_process"
	// ExportMemory is the exported linear memory.
	ExportMemory = "memory"
	// ExportInitialize is the WASI reactor initializer, optional.
	ExportInitialize = "_initialize"
)

// Host functions, all in import module ImportModule.
const (
	ImportModule = "meshfed"
	// ImportIncrCounter: (key_ptr, key_len i32, delta i64, out_ptr i32) -> i32 status;
	// the new value is written at out_ptr as a little-endian i64.
	ImportIncrCounter = "incr_counter"
	// ImportGetCounter: (key_ptr, key_len, out_ptr i32) -> i32 status.
	ImportGetCounter = "get_counter"
	// ImportPutState: (key_ptr, key_len, val_ptr, val_len i32) -> i32 status;
	// val_len -1 deletes the key.
	ImportPutState = "put_state"
	// ImportGetState: (key_ptr, key_len, buf_ptr, buf_cap i32) -> i32: the
	// value's length (written to buf only when it fits), StatusAbsent or
	// StatusError.
	ImportGetState = "get_state"
	// ImportGetContext: (buf_ptr, buf_cap i32) -> i32: the length of the
	// context JSON (written only when it fits) or StatusError.
	ImportGetContext = "get_context"
	// ImportLog: (level i32, msg_ptr, msg_len i32) -> (); level is a
	// log/slog level (-4 debug, 0 info, 4 warn, 8 error).
	ImportLog = "log"
)

// Status codes returned by host functions.
const (
	StatusOK     int32 = 0
	StatusAbsent int32 = -1
	StatusError  int32 = -2
)

// DeleteLen as put_state's val_len deletes the key.
const DeleteLen int32 = -1

// Result tags: the first byte of a result.
const (
	ResultOK    byte = 0
	ResultError byte = 1
)

// Pack returns the i64 meshfed_process returns for a result at ptr.
func Pack(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// Unpack splits meshfed_process's return value into pointer and length.
func Unpack(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }
