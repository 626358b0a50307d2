package execconn

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/meshfed/meshfed/agent/runtime/exec"
)

// Frame types of the connector protocol. They share the exec function
// protocol's framing, field encodings and READY frame; their numbers do
// not overlap with the function frames (0x01-0x08).
const (
	typeReady  byte = 0x02 // connector → host: version u32
	typeOpen   byte = 0x10 // host → connector
	typeRead   byte = 0x11 // host → source
	typeRecord byte = 0x12 // source → host
	typeWrite  byte = 0x13 // host → sink
	typeFlush  byte = 0x14 // host → sink
	typeCommit byte = 0x15 // host → source
	typeOK     byte = 0x16 // connector → host
	typeError  byte = 0x17 // connector → host
)

// Roles an OPEN frame gives the process.
const (
	roleSource byte = 1
	roleSink   byte = 2
)

var frameNames = map[byte]string{
	typeReady:  "READY",
	typeOpen:   "OPEN",
	typeRead:   "READ",
	typeRecord: "RECORD",
	typeWrite:  "WRITE",
	typeFlush:  "FLUSH",
	typeCommit: "COMMIT",
	typeOK:     "OK",
	typeError:  "ERROR",
}

func frameName(t byte) string { return exec.FrameName(frameNames, t) }

var (
	// ErrProtocol reports a frame the connector process should not have
	// sent; the process is killed.
	ErrProtocol = errors.New("exec connector protocol error")
	// ErrCrashed reports a connector process that ended, or was killed
	// for a protocol error or a timeout. The call fails; the agent
	// restarts the connector, which starts a new process.
	ErrCrashed = errors.New("exec connector process crashed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("exec connector closed")
)

// ConnectorError is a failure the process reported itself (an ERROR
// frame): the process keeps running.
type ConnectorError struct {
	// Op is the request it answers: "read", "commit" or "write".
	Op string
	// Reason is the process's text.
	Reason string
}

func (e *ConnectorError) Error() string { return "connector failed the " + e.Op + ": " + e.Reason }

// openFrame starts a session (host → connector). Version comes first, as
// in every exec-family handshake.
type openFrame struct {
	Version         uint32
	Role            byte
	Tenant          string
	Namespace       string
	Mesh            string
	Name            string
	Instance        uint32
	MaxFrameSize    uint32
	EffectivelyOnce bool
	// Config is the process's config (the connector's config.config) as
	// a JSON object.
	Config []byte
}

func (f *openFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, f.Version)
	b = append(b, f.Role)
	b = exec.AppendString(b, f.Tenant)
	b = exec.AppendString(b, f.Namespace)
	b = exec.AppendString(b, f.Mesh)
	b = exec.AppendString(b, f.Name)
	b = binary.BigEndian.AppendUint32(b, f.Instance)
	b = binary.BigEndian.AppendUint32(b, f.MaxFrameSize)
	b = exec.AppendBool(b, f.EffectivelyOnce)
	return exec.AppendBytes(b, f.Config)
}

// readFrame asks a source for up to Max records (host → source).
type readFrame struct {
	Request uint64
	Max     uint32
}

func (f *readFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	return binary.BigEndian.AppendUint32(b, f.Max)
}

// recordFrame is one record answering READ Request (source → host).
type recordFrame struct {
	Request    uint64
	Key        string
	Value      []byte
	Properties map[string]string
	// EventTime is Unix milliseconds; zero: unknown.
	EventTime int64
	Position  string
}

func (f *recordFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	b = exec.AppendString(b, f.Key)
	b = exec.AppendBytes(b, f.Value)
	b = exec.AppendMap(b, f.Properties)
	b = binary.BigEndian.AppendUint64(b, uint64(f.EventTime))
	return exec.AppendString(b, f.Position)
}

// writeFrame is one record of the batch of Request (host → sink).
type writeFrame struct {
	Request    uint64
	Topic      string
	Key        string
	Value      []byte
	Properties map[string]string
	EventTime  int64
	Stream     string
	Sequence   uint64
}

func (f *writeFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	b = exec.AppendString(b, f.Topic)
	b = exec.AppendString(b, f.Key)
	b = exec.AppendBytes(b, f.Value)
	b = exec.AppendMap(b, f.Properties)
	b = binary.BigEndian.AppendUint64(b, uint64(f.EventTime))
	b = exec.AppendString(b, f.Stream)
	return binary.BigEndian.AppendUint64(b, f.Sequence)
}

// flushFrame ends the batch of Request, Count records (host → sink).
type flushFrame struct {
	Request uint64
	Count   uint32
}

func (f *flushFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	return binary.BigEndian.AppendUint32(b, f.Count)
}

// commitFrame tells a source that everything up to Position is durable.
type commitFrame struct {
	Request  uint64
	Position string
}

func (f *commitFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	return exec.AppendString(b, f.Position)
}

// okFrame ends a READ's records, or answers FLUSH or COMMIT.
type okFrame struct{ Request uint64 }

func (f *okFrame) appendBody(b []byte) []byte { return binary.BigEndian.AppendUint64(b, f.Request) }

// errorFrame fails request Request with the process's text.
type errorFrame struct {
	Request uint64
	Error   string
}

func (f *errorFrame) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Request)
	return exec.AppendString(b, f.Error)
}

// readyFrame answers OPEN with the version the process speaks.
type readyFrame struct{ Version uint32 }

func (f *readyFrame) appendBody(b []byte) []byte { return binary.BigEndian.AppendUint32(b, f.Version) }

type frame interface{ appendBody([]byte) []byte }

func frameType(f frame) byte {
	switch f.(type) {
	case *openFrame:
		return typeOpen
	case *readyFrame:
		return typeReady
	case *readFrame:
		return typeRead
	case *recordFrame:
		return typeRecord
	case *writeFrame:
		return typeWrite
	case *flushFrame:
		return typeFlush
	case *commitFrame:
		return typeCommit
	case *okFrame:
		return typeOK
	case *errorFrame:
		return typeError
	}
	panic(fmt.Sprintf("execconn: frame %T has no type", f))
}

// encode returns f as one frame of at most max bytes (type + body).
func encode(f frame, max int) ([]byte, error) {
	t := frameType(f)
	return exec.EncodeFrame(t, frameName(t), max, f.appendBody)
}

// decode decodes a frame body of type t. Byte slices alias body. Trailing
// bytes, truncated fields, bad booleans, duplicate property keys and an
// unknown role are errors.
func decode(t byte, body []byte) (frame, error) {
	d := exec.NewDecoder(body)
	var f frame
	switch t {
	case typeOpen:
		of := &openFrame{Version: d.U32("version"), Role: d.U8("role"), Tenant: d.Str("tenant"),
			Namespace: d.Str("namespace"), Mesh: d.Str("mesh"), Name: d.Str("name"), Instance: d.U32("instance"),
			MaxFrameSize: d.U32("max_frame_size"), EffectivelyOnce: d.Bool("effectively_once"), Config: d.Bytes("config")}
		if d.Err() == nil && of.Role != roleSource && of.Role != roleSink {
			return nil, fmt.Errorf("%w: OPEN frame: role: unknown role %d", ErrProtocol, of.Role)
		}
		f = of
	case typeReady:
		f = &readyFrame{Version: d.U32("version")}
	case typeRead:
		f = &readFrame{Request: d.U64("request"), Max: d.U32("max_records")}
	case typeRecord:
		f = &recordFrame{Request: d.U64("request"), Key: d.Str("key"), Value: d.Bytes("value"),
			Properties: d.StrMap("properties"), EventTime: d.I64("event_time"), Position: d.Str("position")}
	case typeWrite:
		f = &writeFrame{Request: d.U64("request"), Topic: d.Str("topic"), Key: d.Str("key"), Value: d.Bytes("value"),
			Properties: d.StrMap("properties"), EventTime: d.I64("event_time"), Stream: d.Str("stream"), Sequence: d.U64("sequence")}
	case typeFlush:
		f = &flushFrame{Request: d.U64("request"), Count: d.U32("count")}
	case typeCommit:
		f = &commitFrame{Request: d.U64("request"), Position: d.Str("position")}
	case typeOK:
		f = &okFrame{Request: d.U64("request")}
	case typeError:
		f = &errorFrame{Request: d.U64("request"), Error: d.Str("error")}
	default:
		return nil, fmt.Errorf("%w: %s (%d-byte body)", ErrProtocol, frameName(t), len(body))
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s frame: %v", ErrProtocol, frameName(t), err)
	}
	return f, nil
}
