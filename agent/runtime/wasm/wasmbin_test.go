package wasm

import (
	"encoding/binary"

	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

// A tiny WebAssembly binary assembler, enough to hand-craft modules that
// break the ABI or trap in ways a Go-built module cannot.

const (
	tI32 = 0x7f
	tI64 = 0x7e
)

type wasmImport struct {
	module, name    string
	params, results []byte
}

type wasmFunc struct {
	export          string // "" when not exported
	params, results []byte
	body            []byte // instructions, without locals and the final end
}

type wasmModule struct {
	imports      []wasmImport
	funcs        []wasmFunc
	exportMemory bool
	// data is written to memory at dataOffset.
	data       []byte
	dataOffset uint32
}

func uleb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func vec(items ...[]byte) []byte {
	out := uleb(uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(content)))...), content...)
}

func funcType(params, results []byte) []byte {
	return append(append([]byte{0x60}, vec(bytesOf(params)...)...), vec(bytesOf(results)...)...)
}

func bytesOf(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func (m wasmModule) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	var types, imports, funcs, exports, codes [][]byte
	for _, im := range m.imports {
		imports = append(imports, append(append(append(name(im.module), name(im.name)...), 0x00), uleb(uint64(len(types)))...))
		types = append(types, funcType(im.params, im.results))
	}
	for i, f := range m.funcs {
		funcs = append(funcs, uleb(uint64(len(types))))
		types = append(types, funcType(f.params, f.results))
		if f.export != "" {
			exports = append(exports, append(append(name(f.export), 0x00), uleb(uint64(len(m.imports)+i))...))
		}
		body := append(append([]byte{0x00}, f.body...), 0x0b) // no locals
		codes = append(codes, append(uleb(uint64(len(body))), body...))
	}
	if m.exportMemory {
		exports = append(exports, append(name(abi.ExportMemory), 0x02, 0x00))
	}
	out = append(out, section(1, vec(types...))...)
	if len(imports) > 0 {
		out = append(out, section(2, vec(imports...))...)
	}
	out = append(out, section(3, vec(funcs...))...)
	out = append(out, section(5, vec([]byte{0x00, 0x01}))...) // one memory, min 1 page
	out = append(out, section(7, vec(exports...))...)
	out = append(out, section(10, vec(codes...))...)
	if m.data != nil {
		seg := append(append([]byte{0x00, 0x41}, sleb(int64(m.dataOffset))...), 0x0b)
		seg = append(append(seg, uleb(uint64(len(m.data)))...), m.data...)
		out = append(out, section(11, vec(seg))...)
	}
	return out
}

// Instructions.
func i32Const(v int32) []byte { return append([]byte{0x41}, sleb(int64(v))...) }
func i64Const(v int64) []byte { return append([]byte{0x42}, sleb(v)...) }

const (
	opUnreachable = 0x00
	opDrop        = 0x1a
	opCall        = 0x10
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// abiModule is a module with the three exports and memory, whose
// meshfed_process runs process; version is what meshfed_abi_version
// returns, and omit names an export to leave out.
func abiModule(version int32, process []byte, omit string) wasmModule {
	fs := []wasmFunc{
		{export: abi.ExportABIVersion, results: []byte{tI32}, body: i32Const(version)},
		{export: abi.ExportAlloc, params: []byte{tI32}, results: []byte{tI32}, body: i32Const(1024)},
		{export: abi.ExportProcess, params: []byte{tI32, tI32}, results: []byte{tI64}, body: process},
	}
	m := wasmModule{exportMemory: omit != abi.ExportMemory}
	for _, f := range fs {
		if f.export != omit {
			m.funcs = append(m.funcs, f)
		}
	}
	return m
}
