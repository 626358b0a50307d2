package abi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{},
		{Topic: "persistent://public/default/in", Key: "k", Payload: []byte("hello"),
			Properties: map[string]string{"a": "1", "b": "", "": "empty key"},
			EventTime:  1700000000123456789, PublishTime: -5, ProducerName: "p", SequenceID: 1<<62 + 3},
		{Payload: make([]byte, 1<<16)},
	} {
		b := AppendMessage(nil, &m)
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if m.Payload == nil {
			m.Payload = []byte{} // an empty payload decodes as empty, not nil
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	outs := []Output{
		{Topic: "t", Key: "k", Payload: []byte("v"), Properties: map[string]string{"x": "y"}},
		{Payload: []byte{}},
	}
	got, guestErr, err := DecodeResult(AppendResult(nil, outs))
	if err != nil || guestErr != "" || !reflect.DeepEqual(got, outs) {
		t.Fatalf("DecodeResult = %+v, %q, %v", got, guestErr, err)
	}
	got, guestErr, err = DecodeResult(AppendResult(nil, nil))
	if err != nil || guestErr != "" || got != nil {
		t.Fatalf("empty result = %+v, %q, %v", got, guestErr, err)
	}
	got, guestErr, err = DecodeResult(AppendError(nil, "nope"))
	if err != nil || guestErr != "nope" || got != nil {
		t.Fatalf("error result = %+v, %q, %v", got, guestErr, err)
	}
	if _, guestErr, _ := DecodeResult(AppendError(nil, "")); guestErr == "" {
		t.Fatal("an error result with an empty message must still be an error")
	}
}

func TestInfoRoundTrip(t *testing.T) {
	info := Info{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f", InstanceIndex: 3, ConfigJSON: []byte(`{"a":1}`)}
	got, err := DecodeInfo(AppendInfo(nil, &info))
	if err != nil || !reflect.DeepEqual(got, info) {
		t.Fatalf("DecodeInfo = %+v, %v", got, err)
	}
}

// duplicateProperty is one output whose properties hold "a" twice.
var duplicateProperty = []byte{
	0, 1, 0, 0, 0, // ok, one output
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // empty topic, key, payload
	2, 0, 0, 0, // two properties
	1, 0, 0, 0, 'a', 0, 0, 0, 0, // a=""
	1, 0, 0, 0, 'a', 0, 0, 0, 0, // a="" again
}

func TestDecodeResultRejects(t *testing.T) {
	valid := AppendResult(nil, []Output{{Key: "k", Properties: map[string]string{"a": "b"}}})
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "result tag at offset 0: needs 1 bytes, 0 left"},
		{"unknown tag", []byte{7}, "unknown tag 7"},
		{"truncated", valid[:len(valid)-1], "outputs[0].property value"},
		{"trailing", append(append([]byte{}, valid...), 0), "1 trailing bytes"},
		{"forged count", []byte{0, 0xff, 0xff, 0xff, 0xff}, "output count at offset 5: count 4294967295 exceeds the remaining input"},
		{"forged length", []byte{0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "outputs[0].topic at offset 9: length 4294967295 exceeds"},
		{"duplicate property", duplicateProperty, `outputs[0].properties at offset 39: duplicate key "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeResult(tc.in)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrMalformed naming %q", err, tc.want)
			}
		})
	}
}

func TestPack(t *testing.T) {
	p, l := Unpack(Pack(0xdeadbeef, 0x12345678))
	if p != 0xdeadbeef || l != 0x12345678 {
		t.Fatalf("Unpack(Pack) = %#x, %#x", p, l)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{Topic: "t", Key: "k", Payload: []byte("p"), Properties: map[string]string{"a": "b"}, SequenceID: 9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := DecodeMessage(AppendMessage(nil, &m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip: %+v vs %+v (%v)", m, again, err)
		}
	})
}
