package wasm

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/meshfed/meshfed/agent/runtime/wasm/abi"
)

// FuzzDecodeResult feeds arbitrary bytes, as a hostile module would return
// them, to the host's result decoder: it must never panic, must reject or
// accept without allocating beyond the input's size, and what it accepts
// must re-encode to an equal result.
func FuzzDecodeResult(f *testing.F) {
	f.Add(abi.AppendResult(nil, nil))
	f.Add(abi.AppendResult(nil, []abi.Output{{Key: "k", Payload: []byte("v")}}))
	f.Add(abi.AppendResult(nil, []abi.Output{
		{Topic: "persistent://public/default/out", Key: "a", Payload: []byte("1"), Properties: map[string]string{"x": "y"}},
		{Payload: []byte{}},
	}))
	f.Add(abi.AppendError(nil, "refused"))
	f.Add(abi.AppendError(nil, ""))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff})             // huge count
	f.Add([]byte{0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}) // huge length
	f.Add([]byte{1, 3, 0, 0, 0, 'a', 'b'})               // short error
	f.Add([]byte{2})                                     // unknown tag
	f.Add(append(abi.AppendResult(nil, nil), 0))         // trailing byte
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		outs, guestErr, err := decodeResult(b)
		if !bytes.Equal(in, b) {
			t.Fatal("decodeResult modified its input")
		}
		if err != nil {
			if !errors.Is(err, abi.ErrMalformed) {
				t.Fatalf("error %v does not wrap abi.ErrMalformed", err)
			}
			if outs != nil || guestErr != "" {
				t.Fatal("a malformed result also returned outputs or an error message")
			}
			return
		}
		if guestErr != "" {
			if outs != nil {
				t.Fatal("an error result also returned outputs")
			}
			return
		}
		// At least 16 input bytes per output: no amplification.
		if len(outs)*16 > len(b) {
			t.Fatalf("%d outputs from %d bytes", len(outs), len(b))
		}
		again := make([]abi.Output, len(outs))
		for i, o := range outs {
			again[i] = abi.Output(o)
		}
		outs2, guestErr2, err := decodeResult(abi.AppendResult(nil, again))
		if err != nil || guestErr2 != "" {
			t.Fatalf("re-encoded result does not decode: %v %q", err, guestErr2)
		}
		if !reflect.DeepEqual(outs2, outs) {
			t.Fatalf("round trip changed the outputs:\n %+v\n %+v", outs, outs2)
		}
	})
}
