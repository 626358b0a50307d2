package wire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed reports bytes that are not a valid encoding of the expected
// message. Callers answer it with a protocol error or by closing the
// connection.
var ErrMalformed = errors.New("malformed protobuf")

// field is one decoded protobuf field: varints and fixed values are in v,
// length-delimited values in b (aliasing the input).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// fields is a decoded protobuf message, in wire order.
type fields []field

// parse splits b into fields without interpreting them.
func parse(b []byte) (fields, error) {
	var out fields
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: tag: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		out = append(out, f)
	}
	return out, nil
}

// parseBase parses a BaseCommand into its type (field 1) and its fields;
// the body is the field numbered like the type (see body).
func parseBase(b []byte) (Type, fields, error) {
	fs, err := parse(b)
	if err != nil {
		return 0, nil, err
	}
	t, ok := fs.uint(1)
	if !ok {
		return 0, nil, fmt.Errorf("%w: BaseCommand without type", ErrMalformed)
	}
	return Type(int32(t)), fs, nil
}

// body parses the body of a BaseCommand of type t.
func (f fields) body(t Type) (fields, error) {
	body, ok := f.bytes(protowire.Number(t))
	if !ok || t <= 0 || t > 1000 {
		return nil, fmt.Errorf("%w: command type %d without body", ErrMalformed, t)
	}
	return parse(body)
}

// last returns the last occurrence of field num (proto2 semantics for
// non-repeated fields).
func (fs fields) last(num protowire.Number) (field, bool) {
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].num == num {
			return fs[i], true
		}
	}
	return field{}, false
}

func (fs fields) has(num protowire.Number) bool {
	_, ok := fs.last(num)
	return ok
}

func (fs fields) uint(num protowire.Number) (uint64, bool) {
	f, ok := fs.last(num)
	if !ok || f.typ == protowire.BytesType {
		return 0, false
	}
	return f.v, true
}

func (fs fields) u64(num protowire.Number, def uint64) uint64 {
	if v, ok := fs.uint(num); ok {
		return v
	}
	return def
}

func (fs fields) i64(num protowire.Number, def int64) int64 {
	if v, ok := fs.uint(num); ok {
		return int64(v)
	}
	return def
}

func (fs fields) i32(num protowire.Number, def int32) int32 {
	if v, ok := fs.uint(num); ok {
		return int32(v)
	}
	return def
}

func (fs fields) boolean(num protowire.Number, def bool) bool {
	if v, ok := fs.uint(num); ok {
		return v != 0
	}
	return def
}

func (fs fields) bytes(num protowire.Number) ([]byte, bool) {
	f, ok := fs.last(num)
	if !ok || f.typ != protowire.BytesType {
		return nil, false
	}
	return f.b, true
}

func (fs fields) str(num protowire.Number) string {
	b, _ := fs.bytes(num)
	return string(b)
}

// all returns every length-delimited occurrence of num (repeated messages,
// strings and bytes).
func (fs fields) all(num protowire.Number) [][]byte {
	var out [][]byte
	for _, f := range fs {
		if f.num == num && f.typ == protowire.BytesType {
			out = append(out, f.b)
		}
	}
	return out
}

// varints returns a repeated varint field, accepting both packed and
// unpacked encodings.
func (fs fields) varints(num protowire.Number) ([]uint64, error) {
	var out []uint64
	for _, f := range fs {
		if f.num != num {
			continue
		}
		switch f.typ {
		case protowire.VarintType:
			out = append(out, f.v)
		case protowire.BytesType:
			b := f.b
			for len(b) > 0 {
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return nil, fmt.Errorf("%w: packed field %d", ErrMalformed, num)
				}
				out = append(out, v)
				b = b[n:]
			}
		}
	}
	return out, nil
}

// need fails unless every listed (required) field is present.
func (fs fields) need(msg string, nums ...protowire.Number) error {
	for _, n := range nums {
		if !fs.has(n) {
			return fmt.Errorf("%w: %s: missing required field %d", ErrMalformed, msg, n)
		}
	}
	return nil
}

// enc builds a protobuf message.
type enc []byte

func (e *enc) uint(num protowire.Number, v uint64) {
	*e = protowire.AppendTag(*e, num, protowire.VarintType)
	*e = protowire.AppendVarint(*e, v)
}

func (e *enc) int(num protowire.Number, v int64) { e.uint(num, uint64(v)) }

func (e *enc) boolean(num protowire.Number, v bool) {
	var x uint64
	if v {
		x = 1
	}
	e.uint(num, x)
}

func (e *enc) bytes(num protowire.Number, b []byte) {
	*e = protowire.AppendTag(*e, num, protowire.BytesType)
	*e = protowire.AppendBytes(*e, b)
}

func (e *enc) str(num protowire.Number, s string) {
	*e = protowire.AppendTag(*e, num, protowire.BytesType)
	*e = protowire.AppendString(*e, s)
}

func (e *enc) msg(num protowire.Number, sub enc) { e.bytes(num, sub) }
