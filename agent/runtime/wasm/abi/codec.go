package abi

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Message is the input message as the guest receives it. Times are Unix
// nanoseconds, zero when unset.
type Message struct {
	Topic        string
	Key          string
	Payload      []byte
	Properties   map[string]string
	EventTime    int64
	PublishTime  int64
	ProducerName string
	SequenceID   int64
}

// Output is one output message; empty Topic means the function's output
// topic and empty Key means no key.
type Output struct {
	Topic      string
	Key        string
	Payload    []byte
	Properties map[string]string
}

// Info is what get_context returns: the function's names, its instance
// index and its user configuration as JSON ("{}" when empty).
type Info struct {
	Tenant, Namespace, Mesh, Function string
	InstanceIndex                     int64
	ConfigJSON                        []byte
}

// Encoding, all integers little-endian:
//
//	bytes   = u32 length, then the bytes
//	map     = u32 count, then count × (bytes key, bytes value), keys unique
//	message = bytes topic, bytes key, bytes payload, map properties,
//	          i64 event_time, i64 publish_time, bytes producer_name, i64 sequence_id
//	result  = u8 0, u32 count, then count × output
//	        | u8 1, bytes error_message
//	output  = bytes topic, bytes key, bytes payload, map properties
//	info    = bytes tenant, bytes namespace, bytes mesh, bytes function,
//	          i64 instance_index, bytes config_json
//
// Decoders reject trailing bytes.

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed abi encoding")

// AppendMessage appends m's encoding to dst.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = appendString(dst, m.Topic)
	dst = appendString(dst, m.Key)
	dst = appendBytes(dst, m.Payload)
	dst = appendMap(dst, m.Properties)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.EventTime))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.PublishTime))
	dst = appendString(dst, m.ProducerName)
	return binary.LittleEndian.AppendUint64(dst, uint64(m.SequenceID))
}

// DecodeMessage decodes a message. Payload aliases b.
func DecodeMessage(b []byte) (Message, error) {
	d := decoder{b: b}
	var m Message
	m.Topic = d.string("topic")
	m.Key = d.string("key")
	m.Payload = d.bytes("payload")
	m.Properties = d.stringMap()
	m.EventTime = d.int64("event_time")
	m.PublishTime = d.int64("publish_time")
	m.ProducerName = d.string("producer_name")
	m.SequenceID = d.int64("sequence_id")
	return m, d.finish()
}

// AppendResult appends a successful result holding outs to dst.
func AppendResult(dst []byte, outs []Output) []byte {
	dst = append(dst, ResultOK)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(outs)))
	for i := range outs {
		o := &outs[i]
		dst = appendString(dst, o.Topic)
		dst = appendString(dst, o.Key)
		dst = appendBytes(dst, o.Payload)
		dst = appendMap(dst, o.Properties)
	}
	return dst
}

// AppendError appends a failed result carrying msg to dst.
func AppendError(dst []byte, msg string) []byte {
	return appendString(append(dst, ResultError), msg)
}

// minOutputSize is the smallest encoded output: four empty fields.
const minOutputSize = 4 * 4

// DecodeResult decodes a result: either the outputs, or the error message
// the function returned (guestErr, with outs nil). err reports a malformed
// encoding. Output payloads alias b.
func DecodeResult(b []byte) (outs []Output, guestErr string, err error) {
	d := decoder{b: b}
	switch tag := d.byte("result tag"); {
	case d.err != nil:
		return nil, "", d.err
	case tag == ResultError:
		guestErr = d.string("error message")
		if err := d.finish(); err != nil {
			return nil, "", err
		}
		if guestErr == "" {
			guestErr = "function failed without a message"
		}
		return nil, guestErr, nil
	case tag != ResultOK:
		return nil, "", d.fail("result tag", "unknown tag "+strconv.Itoa(int(tag)))
	}
	n := d.count("output count", minOutputSize)
	if n > 0 {
		outs = make([]Output, n)
	}
	for i := range outs {
		d.output = i + 1
		o := &outs[i]
		o.Topic = d.string("topic")
		o.Key = d.string("key")
		o.Payload = d.bytes("payload")
		o.Properties = d.stringMap()
		if d.err != nil {
			break
		}
	}
	if err := d.finish(); err != nil {
		return nil, "", err
	}
	return outs, "", nil
}

// AppendInfo appends info's encoding to dst.
func AppendInfo(dst []byte, info *Info) []byte {
	dst = appendString(dst, info.Tenant)
	dst = appendString(dst, info.Namespace)
	dst = appendString(dst, info.Mesh)
	dst = appendString(dst, info.Function)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(info.InstanceIndex))
	return appendBytes(dst, info.ConfigJSON)
}

// DecodeInfo decodes a context info. ConfigJSON aliases b.
func DecodeInfo(b []byte) (Info, error) {
	d := decoder{b: b}
	var info Info
	info.Tenant = d.string("tenant")
	info.Namespace = d.string("namespace")
	info.Mesh = d.string("mesh")
	info.Function = d.string("function")
	info.InstanceIndex = d.int64("instance_index")
	info.ConfigJSON = d.bytes("config_json")
	return info, d.finish()
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendMap(dst []byte, m map[string]string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(m)))
	for k, v := range m {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	return dst
}

// decoder reads fields from b; after the first error every read returns a
// zero value and err keeps that first error.
type decoder struct {
	b   []byte
	off int
	err error
	// output is 1 + the index of the output being decoded; zero outside.
	output int
}

// fail records the first error; field names are static strings so that
// decoding allocates nothing for them.
func (d *decoder) fail(field, reason string) error {
	if d.err == nil {
		if d.output > 0 {
			field = "outputs[" + strconv.Itoa(d.output-1) + "]." + field
		}
		d.err = &DecodeError{Field: field, Offset: d.off, Reason: reason}
	}
	return d.err
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail(field, "needs "+strconv.Itoa(n)+" bytes, "+strconv.Itoa(len(d.b)-d.off)+" left")
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *decoder) byte(field string) byte {
	v := d.take(field, 1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) uint32(field string) uint32 {
	v := d.take(field, 4)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

func (d *decoder) int64(field string) int64 {
	v := d.take(field, 8)
	if v == nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(v))
}

// count reads an element count and checks that the rest of the input can
// hold that many elements of at least minSize bytes each, so that a forged
// count cannot make the decoder allocate more than the input's size.
func (d *decoder) count(field string, minSize int) int {
	n := d.uint32(field)
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(len(d.b)-d.off) {
		d.fail(field, "count "+strconv.FormatUint(uint64(n), 10)+" exceeds the remaining input")
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(field string) []byte {
	n := d.uint32(field)
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)-d.off) {
		d.fail(field, "length "+strconv.FormatUint(uint64(n), 10)+" exceeds the remaining input")
		return nil
	}
	return d.take(field, int(n))
}

func (d *decoder) string(field string) string { return string(d.bytes(field)) }

func (d *decoder) stringMap() map[string]string {
	n := d.count("properties count", 8)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.string("property key")
		v := d.string("property value")
		if d.err != nil {
			return nil
		}
		if _, dup := m[k]; dup {
			d.fail("properties", "duplicate key "+strconv.Quote(k))
			return nil
		}
		m[k] = v
	}
	return m
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("end", strconv.Itoa(len(d.b)-d.off)+" trailing bytes")
	}
	return d.err
}

// DecodeError says which field of an encoding is malformed and where.
type DecodeError struct {
	Field  string
	Offset int
	Reason string
}

func (e *DecodeError) Error() string {
	return "malformed abi encoding: " + e.Field + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrMalformed) hold.
func (e *DecodeError) Unwrap() error { return ErrMalformed }
