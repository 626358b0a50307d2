package exec

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the version of the exec protocol this host speaks
// (docs/exec-protocol.md). It changes when a frame's layout changes.
const ProtocolVersion = 1

// DefaultMaxFrameSize bounds a frame's length field (type byte + body) in
// both directions unless Options.MaxFrameSize says otherwise.
const DefaultMaxFrameSize = 16 << 20

// frameHeaderLen is the 4-byte big-endian length that precedes every frame.
const frameHeaderLen = 4

// Frame types. Host → function: HELLO, MESSAGE, STATE_RESULT.
// Function → host: READY, OUTPUT, DONE, FAIL, STATE.
const (
	typeHello       byte = 0x01
	typeReady       byte = 0x02
	typeMessage     byte = 0x03
	typeOutput      byte = 0x04
	typeDone        byte = 0x05
	typeFail        byte = 0x06
	typeState       byte = 0x07
	typeStateResult byte = 0x08
)

// State operations carried by a STATE frame.
const (
	opIncrCounter byte = 1
	opGetCounter  byte = 2
	opPutState    byte = 3
	opGetState    byte = 4
)

// frameNames names the frame types in errors and logs.
var frameNames = map[byte]string{
	typeHello:       "HELLO",
	typeReady:       "READY",
	typeMessage:     "MESSAGE",
	typeOutput:      "OUTPUT",
	typeDone:        "DONE",
	typeFail:        "FAIL",
	typeState:       "STATE",
	typeStateResult: "STATE_RESULT",
}

func frameName(t byte) string { return FrameName(frameNames, t) }

// frame is one decoded protocol frame.
type frame interface {
	frameType() byte
	// appendBody appends the frame's body encoding to b.
	appendBody(b []byte) []byte
}

// helloFrame opens a session (host → function). Version is always the
// first field, in every protocol version.
type helloFrame struct {
	Version   uint32
	Tenant    string
	Namespace string
	Mesh      string
	Function  string
	Instance  uint32
	// MaxFrameSize is the frame size limit the host enforces; the
	// function must not send larger frames.
	MaxFrameSize uint32
	// Config is the user configuration as a JSON object.
	Config []byte
}

// readyFrame answers HELLO (function → host). Version is always the first
// field, in every protocol version.
type readyFrame struct {
	Version uint32
}

// messageFrame carries one input message (host → function).
type messageFrame struct {
	ID         uint64
	Topic      string
	Key        string
	Payload    []byte
	Properties map[string]string
	// EventTime and PublishTime are Unix milliseconds; zero: none.
	EventTime    int64
	PublishTime  int64
	ProducerName string
	SequenceID   int64
}

// outputFrame is one output of message ID (function → host).
type outputFrame struct {
	ID         uint64
	Topic      string
	Key        string
	Payload    []byte
	Properties map[string]string
}

// doneFrame ends message ID successfully (function → host).
type doneFrame struct {
	ID uint64
}

// failFrame ends message ID with a function error (function → host).
type failFrame struct {
	ID    uint64
	Error string
}

// stateFrame is a state request made while processing message ID
// (function → host). Which fields matter depends on Op.
type stateFrame struct {
	ID       uint64
	Request  uint64
	Op       byte
	Key      string
	Delta    int64
	HasValue bool
	Value    []byte
}

// stateResultFrame answers a stateFrame (host → function).
type stateResultFrame struct {
	Request  uint64
	OK       bool
	Counter  int64
	HasValue bool
	Value    []byte
	Error    string
}

func (*helloFrame) frameType() byte       { return typeHello }
func (*readyFrame) frameType() byte       { return typeReady }
func (*messageFrame) frameType() byte     { return typeMessage }
func (*outputFrame) frameType() byte      { return typeOutput }
func (*doneFrame) frameType() byte        { return typeDone }
func (*failFrame) frameType() byte        { return typeFail }
func (*stateFrame) frameType() byte       { return typeState }
func (*stateResultFrame) frameType() byte { return typeStateResult }

func (f *helloFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, f.Version)
	b = appendString(b, f.Tenant)
	b = appendString(b, f.Namespace)
	b = appendString(b, f.Mesh)
	b = appendString(b, f.Function)
	b = binary.BigEndian.AppendUint32(b, f.Instance)
	b = binary.BigEndian.AppendUint32(b, f.MaxFrameSize)
	return appendBytes(b, f.Config)
}

func (f *readyFrame) appendBody(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, f.Version)
}

func (f *messageFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.ID)
	b = appendString(b, f.Topic)
	b = appendString(b, f.Key)
	b = appendBytes(b, f.Payload)
	b = appendMap(b, f.Properties)
	b = binary.BigEndian.AppendUint64(b, uint64(f.EventTime))
	b = binary.BigEndian.AppendUint64(b, uint64(f.PublishTime))
	b = appendString(b, f.ProducerName)
	return binary.BigEndian.AppendUint64(b, uint64(f.SequenceID))
}

func (f *outputFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.ID)
	b = appendString(b, f.Topic)
	b = appendString(b, f.Key)
	b = appendBytes(b, f.Payload)
	return appendMap(b, f.Properties)
}

func (f *doneFrame) appendBody(b []byte) []byte {
	return binary.BigEndian.AppendUint64(b, f.ID)
}

func (f *failFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.ID)
	return appendString(b, f.Error)
}

func (f *stateFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.ID)
	b = binary.BigEndian.AppendUint64(b, f.Request)
	b = append(b, f.Op)
	b = appendString(b, f.Key)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Delta))
	b = appendBool(b, f.HasValue)
	return appendBytes(b, f.Value)
}

func (f *stateResultFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	b = appendBool(b, f.OK)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Counter))
	b = appendBool(b, f.HasValue)
	b = appendBytes(b, f.Value)
	return appendString(b, f.Error)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// appendMap writes the pairs in Go map order: the protocol does not order
// them (docs/exec-protocol.md).
func appendMap(b []byte, m map[string]string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	for k, v := range m {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return b
}

// encodeFrame returns f as one frame: length, type, body. It fails when
// the frame would exceed max bytes (type byte + body).
func encodeFrame(f frame, max int) ([]byte, error) {
	b := make([]byte, frameHeaderLen+1, 64)
	b[frameHeaderLen] = f.frameType()
	b = f.appendBody(b)
	n := len(b) - frameHeaderLen
	if n > max {
		name := frameName(f.frameType())
		if s, ok := f.(fmt.Stringer); ok {
			name = s.String() // a frame of another exec-family protocol
		}
		return nil, fmt.Errorf("%w: %s frame of %d bytes exceeds the %d-byte limit", ErrFrameTooLarge, name, n, max)
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	return b, nil
}

// readFrame reads one frame from r: its type and body. It never allocates
// more than max bytes, and reports a length over max without reading on.
// A clean end of stream before the first header byte returns io.EOF; a
// stream cut inside a frame returns io.ErrUnexpectedEOF.
func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
	var hdr [frameHeaderLen + 1]byte
	if _, err := io.ReadFull(r, hdr[:frameHeaderLen]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:frameHeaderLen])
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: frame length 0 (a frame has at least its type byte)", ErrProtocol)
	}
	if uint64(n) > uint64(max) {
		// Show what the function wrote: text on stdout is the usual cause.
		peek, _ := r.Peek(min(r.Buffered(), 12))
		start := append(hdr[:frameHeaderLen:frameHeaderLen], peek...)
		return 0, nil, fmt.Errorf("%w: %w: frame length %d exceeds the %d-byte limit (stream starts %s %q; stdout must carry only protocol frames, log to stderr)",
			ErrProtocol, ErrFrameTooLarge, n, max, hex.EncodeToString(start), start)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("read %d-byte frame: %w", n, err)
	}
	return body[0], body[1:], nil
}

// decodeFrame decodes a frame body of type t. Byte slices in the result
// alias body. Trailing bytes, truncated fields, booleans other than 0 or 1
// and duplicate property keys are errors.
func decodeFrame(t byte, body []byte) (frame, error) {
	d := decoder{b: body}
	var f frame
	switch t {
	case typeHello:
		f = &helloFrame{Version: d.u32("version"), Tenant: d.str("tenant"), Namespace: d.str("namespace"),
			Mesh: d.str("mesh"), Function: d.str("function"), Instance: d.u32("instance"), MaxFrameSize: d.u32("max_frame_size"), Config: d.bytes("config")}
	case typeReady:
		f = &readyFrame{Version: d.u32("version")}
	case typeMessage:
		f = &messageFrame{ID: d.u64("id"), Topic: d.str("topic"), Key: d.str("key"), Payload: d.bytes("payload"),
			Properties: d.strMap("properties"), EventTime: d.i64("event_time"), PublishTime: d.i64("publish_time"),
			ProducerName: d.str("producer_name"), SequenceID: d.i64("sequence_id")}
	case typeOutput:
		f = &outputFrame{ID: d.u64("id"), Topic: d.str("topic"), Key: d.str("key"), Payload: d.bytes("payload"),
			Properties: d.strMap("properties")}
	case typeDone:
		f = &doneFrame{ID: d.u64("id")}
	case typeFail:
		f = &failFrame{ID: d.u64("id"), Error: d.str("error")}
	case typeState:
		sf := &stateFrame{ID: d.u64("id"), Request: d.u64("request"), Op: d.u8("op"), Key: d.str("key"),
			Delta: d.i64("delta"), HasValue: d.bool("has_value"), Value: d.bytes("value")}
		if d.err == nil && (sf.Op < opIncrCounter || sf.Op > opGetState) {
			d.err = fmt.Errorf("op: unknown state operation %d", sf.Op)
		}
		f = sf
	case typeStateResult:
		f = &stateResultFrame{Request: d.u64("request"), OK: d.bool("ok"), Counter: d.i64("counter"),
			HasValue: d.bool("has_value"), Value: d.bytes("value"), Error: d.str("error")}
	default:
		return nil, fmt.Errorf("%w: %s (%d-byte body)", ErrProtocol, frameName(t), len(body))
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d trailing bytes after the last field", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s frame: %v", ErrProtocol, frameName(t), d.err)
	}
	return f, nil
}

// decoder reads fields off a frame body; the first error sticks and names
// the field.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(field string, n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%s: need %d bytes, %d left", field, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(field string) byte {
	if v := d.take(field, 1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) bool(field string) bool {
	v := d.u8(field)
	if d.err == nil && v > 1 {
		d.err = fmt.Errorf("%s: boolean byte %d (want 0 or 1)", field, v)
	}
	return v == 1
}

func (d *decoder) u32(field string) uint32 {
	if v := d.take(field, 4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if v := d.take(field, 8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) i64(field string) int64 { return int64(d.u64(field)) }

// length reads the 4-byte length or count that prefixes field.
func (d *decoder) length(field, what string) uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = fmt.Errorf("%s %s: need 4 bytes, %d left", field, what, len(d.b))
		return 0
	}
	n := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return n
}

// bytes reads a length-prefixed field; empty is nil.
func (d *decoder) bytes(field string) []byte {
	n := d.length(field, "length")
	if v := d.take(field, uint64(n)); len(v) > 0 {
		return v
	}
	return nil
}

func (d *decoder) str(field string) string { return string(d.bytes(field)) }

func (d *decoder) strMap(field string) map[string]string {
	n := d.length(field, "count")
	if d.err != nil || n == 0 {
		return nil
	}
	// Every pair takes at least its two 4-byte lengths: a count the
	// body cannot hold is refused before anything is allocated.
	if uint64(n) > uint64(len(d.b))/8 {
		d.err = fmt.Errorf("%s: %d pairs cannot fit in the %d bytes left", field, n, len(d.b))
		return nil
	}
	m := make(map[string]string, n)
	for i := uint32(0); i < n; i++ {
		k := d.str("key")
		v := d.str("value")
		if d.err != nil {
			d.err = fmt.Errorf("%s[%d] %w", field, i, d.err)
			return nil
		}
		if _, dup := m[k]; dup {
			d.err = fmt.Errorf("%s: duplicate key %q", field, k)
			return nil
		}
		m[k] = v
	}
	return m
}
