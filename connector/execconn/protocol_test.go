package execconn

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime/exec"
)

func roundTrip(t *testing.T, f frame) frame {
	t.Helper()
	b, err := encode(f, exec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	typ, body, err := exec.ReadFrame(bufio.NewReader(bytes.NewReader(b)), exec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFramesRoundTrip(t *testing.T) {
	for _, f := range []frame{
		&openFrame{Version: 1, Role: roleSink, Tenant: "t", Namespace: "ns", Mesh: "m", Name: "out", Instance: 3,
			MaxFrameSize: 1 << 20, EffectivelyOnce: true, Config: []byte(`{"a":1}`)},
		&readyFrame{Version: 1},
		&readFrame{Request: 7, Max: 1000},
		&recordFrame{Request: 7, Key: "k", Value: []byte("v"), Properties: map[string]string{"a": "1", "b": ""},
			EventTime: 1700000000000, Position: "lsn/0/16B3748"},
		&recordFrame{Request: 1},
		&writeFrame{Request: 9, Topic: "persistent://t/ns/in", Key: "k", Value: []byte{0, 1, 2},
			Properties: map[string]string{"x": "y"}, EventTime: -1, Stream: "a/0", Sequence: 1 << 40},
		&flushFrame{Request: 9, Count: 2},
		&commitFrame{Request: 8, Position: "42"},
		&okFrame{Request: 8},
		&errorFrame{Request: 9, Error: "disk full"},
	} {
		if got := roundTrip(t, f); !reflect.DeepEqual(got, f) {
			t.Errorf("%T: got %+v, want %+v", f, got, f)
		}
	}
}

// TestDocExample checks the RECORD dump in docs/exec-protocol.md.
func TestDocExample(t *testing.T) {
	b, err := encode(&recordFrame{Request: 3, Key: "k", Value: []byte("17"), Properties: map[string]string{"a": "1"},
		EventTime: 1700000000000, Position: "17"}, exec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	const want = "00000030 12 0000000000000003 000000016b 000000023137 00000001 0000000161 0000000131 0000018bcfe56800 000000023137"
	if got := hex.EncodeToString(b); got != strings.ReplaceAll(want, " ", "") {
		t.Errorf("RECORD encodes as\n%s\nwant\n%s", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	ok := func(f frame) []byte {
		b, err := encode(f, exec.DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		return b[5:]
	}
	for _, tc := range []struct {
		name string
		t    byte
		body []byte
		want string
	}{
		{"unknown type", 0x42, nil, "unknown frame type 0x42"},
		{"function frame", 0x03, nil, "unknown frame type 0x03"},
		{"truncated", typeRecord, ok(&recordFrame{Request: 1, Key: "k"})[:10], "RECORD frame: key"},
		{"trailing", typeOK, append(ok(&okFrame{Request: 1}), 0), "trailing bytes"},
		{"bad bool", typeOpen, func() []byte {
			b := ok(&openFrame{Role: roleSource})
			b[len(b)-5] = 2 // effectively_once, before the empty config
			return b
		}(), "effectively_once: boolean byte 2"},
		{"bad role", typeOpen, ok(&openFrame{Role: 3}), "role: unknown role 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.t, tc.body)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode: %v, want ErrProtocol with %q", err, tc.want)
			}
		})
	}
}

func TestEncodeRefusesLargeFrame(t *testing.T) {
	_, err := encode(&writeFrame{Value: make([]byte, 100)}, 64)
	if !errors.Is(err, exec.ErrFrameTooLarge) || !strings.Contains(err.Error(), "WRITE") {
		t.Fatalf("encode: %v, want ErrFrameTooLarge naming WRITE", err)
	}
}

// FuzzDecode feeds arbitrary frames to the decoder: it must never panic,
// and what it accepts must encode back to the same bytes (maps aside,
// whose order is free).
func FuzzDecode(f *testing.F) {
	for _, fr := range []frame{
		&recordFrame{Request: 1, Key: "k", Value: []byte("v"), Position: "p"},
		&writeFrame{Request: 2, Stream: "s", Sequence: 3},
		&openFrame{Version: 1, Role: roleSource, Config: []byte("{}")},
		&errorFrame{Request: 1, Error: "x"},
		&okFrame{Request: 5},
	} {
		b, _ := encode(fr, exec.DefaultMaxFrameSize)
		f.Add(b[4], b[5:])
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		fr, err := decode(typ, body)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		b, err := encode(fr, exec.DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		if b[4] != typ || len(b)-5 != len(body) {
			t.Fatalf("re-encoded %x as type %x, %d bytes; want %x, %d", typ, b[4], len(b)-5, typ, len(body))
		}
	})
}
