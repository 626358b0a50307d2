package exec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// sampleFrames is one of each frame type, with every field set.
func sampleFrames() []frame {
	return []frame{
		&helloFrame{Version: ProtocolVersion, Tenant: "public", Namespace: "default", Mesh: "word-count",
			Function: "split", Instance: 1, MaxFrameSize: DefaultMaxFrameSize, Config: []byte(`{"lang":"en"}`)},
		&readyFrame{Version: ProtocolVersion},
		&messageFrame{ID: 7, Topic: "persistent://public/default/in", Key: "k", Payload: []byte("Hello world"),
			Properties: map[string]string{"a": "1"}, EventTime: 1700000000123, PublishTime: 1700000000456,
			ProducerName: "p-1", SequenceID: 42},
		&outputFrame{ID: 7, Topic: "persistent://public/default/other", Key: "hello", Payload: []byte("hello"),
			Properties: map[string]string{"x": "y"}},
		&doneFrame{ID: 7},
		&failFrame{ID: 7, Error: "ValueError: bad"},
		&stateFrame{ID: 7, Request: 1, Op: opPutState, Key: "k", HasValue: true, Value: []byte("v")},
		&stateFrame{ID: 7, Request: 2, Op: opIncrCounter, Key: "n", Delta: -3},
		&stateResultFrame{Request: 1, OK: true, Counter: -3, HasValue: true, Value: []byte("v")},
		&stateResultFrame{Request: 2, Error: "unavailable"},
	}
}

func TestRoundTrip(t *testing.T) {
	var stream []byte
	for _, f := range sampleFrames() {
		b, err := encodeFrame(f, DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	for _, want := range sampleFrames() {
		typ, body, err := readFrame(r, DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFrame(typ, body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	if _, _, err := readFrame(r, DefaultMaxFrameSize); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

// docExampleHex is the MESSAGE frame shown in docs/exec-protocol.md.
const docExampleHex = "" +
	"00000053" + // length: 83 bytes follow
	"03" + // type: MESSAGE
	"0000000000000007" + // id 7
	"0000000c" + "746f706963732f696e707574" + // topic "topics/input"
	"00000001" + "6b" + // key "k"
	"00000005" + "68656c6c6f" + // payload "hello"
	"00000001" + "00000001" + "61" + "00000001" + "31" + // properties {a: 1}
	"0000018bcfe56800" + // event_time 1700000000000
	"0000018bcfe56bb9" + // publish_time 1700000000953
	"00000002" + "7031" + // producer_name "p1"
	"000000000000002a" // sequence_id 42

func TestDocExample(t *testing.T) {
	f := &messageFrame{ID: 7, Topic: "topics/input", Key: "k", Payload: []byte("hello"),
		Properties: map[string]string{"a": "1"}, EventTime: 1700000000000, PublishTime: 1700000000953,
		ProducerName: "p1", SequenceID: 42}
	b, err := encodeFrame(f, DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != docExampleHex {
		t.Fatalf("encoding\n got %s\nwant %s", got, docExampleHex)
	}
}

func TestReadFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		max   int
		want  string
		is    error
	}{
		{"zero length", []byte{0, 0, 0, 0}, 100, "frame length 0", ErrProtocol},
		{"over max", []byte{0, 0, 0, 101, 1}, 100, "frame length 101 exceeds the 100-byte limit", ErrFrameTooLarge},
		{"text", []byte("Traceback (most recent call last)"), DefaultMaxFrameSize, `"Traceback (most "`, ErrProtocol},
		{"cut header", []byte{0, 0}, 100, "unexpected EOF", io.ErrUnexpectedEOF},
		{"cut body", []byte{0, 0, 0, 9, 5, 0}, 100, "read 9-byte frame: unexpected EOF", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readFrame(bufio.NewReader(bytes.NewReader(tc.input)), tc.max)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q (%v)", err, tc.want, tc.is)
			}
		})
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  byte
		body []byte
		want string
	}{
		{"unknown type", 0x42, []byte{1, 2}, "unknown frame type 0x42"},
		{"short", typeDone, []byte{0, 0, 0}, "DONE frame: id: need 8 bytes, 3 left"},
		{"trailing", typeReady, []byte{0, 0, 0, 1, 9}, "READY frame: 1 trailing bytes"},
		{"string past end", typeFail, append(make([]byte, 8), 0, 0, 0, 9, 'x'), "FAIL frame: error: need 9 bytes, 1 left"},
		{"huge map", typeOutput, append(make([]byte, 8+4+4+4), 0xff, 0xff, 0xff, 0xff), "properties: 4294967295 pairs cannot fit"},
		{"dup key", typeOutput, append(make([]byte, 8+4+4+4), 0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0), `duplicate key "a"`},
		{"bad bool", typeStateResult, append(make([]byte, 8), 2), "ok: boolean byte 2"},
		{"bad op", typeState, append(make([]byte, 16), 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "unknown state operation 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeFrame(tc.typ, tc.body)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader and decoder: they
// must never panic, never hand out a frame over the limit, and whatever
// decodes must encode back to a body of the same length that decodes to
// the same frame.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := encodeFrame(fr, DefaultMaxFrameSize)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("hello world\n"))
	f.Add([]byte{0, 0, 0, 1, typeDone})
	f.Add([]byte{0, 0, 0, 0})
	const max = 1 << 12
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			typ, body, err := readFrame(r, max)
			if err != nil {
				if errors.Is(err, ErrFrameTooLarge) != strings.Contains(err.Error(), "exceeds") {
					t.Fatalf("inconsistent error %v", err)
				}
				return
			}
			if len(body)+1 > max {
				t.Fatalf("frame of %d bytes passed the %d-byte limit", len(body)+1, max)
			}
			fr, err := decodeFrame(typ, body)
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("decode error not ErrProtocol: %v", err)
				}
				continue
			}
			enc, err := encodeFrame(fr, max)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", fr, err)
			}
			if len(enc)-frameHeaderLen-1 != len(body) {
				t.Fatalf("re-encoded body is %d bytes, was %d", len(enc)-frameHeaderLen-1, len(body))
			}
			typ2, body2, err := readFrame(bufio.NewReader(bytes.NewReader(enc)), max)
			if err != nil || typ2 != typ {
				t.Fatalf("re-read: %v (type %d → %d)", err, typ, typ2)
			}
			fr2, err := decodeFrame(typ2, body2)
			if err != nil || !reflect.DeepEqual(fr, fr2) {
				t.Fatalf("round trip: %+v → %+v (%v)", fr, fr2, err)
			}
		}
	})
}
