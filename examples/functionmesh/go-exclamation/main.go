// Command go-exclamation is the Go function of examples/functionmesh: it
// appends "!" to each message, like Pulsar's exclamation examples. It speaks
// meshfed's exec protocol (docs/exec-protocol.md) with the standard library
// only; build it next to go-function.yaml as go_func_all:
//
//	go build -o examples/functionmesh/go_func_all ./examples/functionmesh/go-exclamation
//
// With MESHFED_FORWARD_SOURCE_PROPERTIES=true (forwardSourceMessageProperty
// in the Function Mesh resource) it copies the input's properties onto the
// output.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Frame types of exec protocol version 1.
const (
	frameHello   = 0x01
	frameReady   = 0x02
	frameMessage = 0x03
	frameOutput  = 0x04
	frameDone    = 0x05
)

// maxFrame is the protocol's default frame size limit.
const maxFrame = 16 << 20

func main() {
	forward := os.Getenv("MESHFED_FORWARD_SOURCE_PROPERTIES") == "true"
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	if err := serve(in, out, forward); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
		os.Exit(1)
	}
}

func serve(in *bufio.Reader, out *bufio.Writer, forward bool) error {
	typ, _, err := readFrame(in)
	if err != nil {
		return err
	}
	if typ != frameHello {
		return fmt.Errorf("expected HELLO, got frame type %d", typ)
	}
	if err := writeFrame(out, frameReady, binary.BigEndian.AppendUint32(nil, 1)); err != nil {
		return err
	}
	for {
		typ, body, err := readFrame(in)
		if err != nil {
			return err
		}
		if typ != frameMessage {
			return fmt.Errorf("expected MESSAGE, got frame type %d", typ)
		}
		m, err := parseMessage(body)
		if err != nil {
			return err
		}
		props := map[string]string{}
		if forward {
			props = m.props
		}
		o := binary.BigEndian.AppendUint64(nil, m.id)
		o = appendBytes(o, nil) // the function's output topic
		o = appendBytes(o, m.key)
		o = appendBytes(o, append(m.payload, '!'))
		o = binary.BigEndian.AppendUint32(o, uint32(len(props)))
		for k, v := range props {
			o = appendBytes(appendBytes(o, []byte(k)), []byte(v))
		}
		if err := writeFrame(out, frameOutput, o); err != nil {
			return err
		}
		if err := writeFrame(out, frameDone, binary.BigEndian.AppendUint64(nil, m.id)); err != nil {
			return err
		}
	}
}

type message struct {
	id           uint64
	key, payload []byte
	props        map[string]string
}

// parseMessage reads the fields of a MESSAGE body this function uses.
func parseMessage(b []byte) (message, error) {
	var m message
	r := reader{b: b}
	m.id = r.u64()
	r.bytes() // topic
	m.key = r.bytes()
	m.payload = r.bytes()
	n := r.u32()
	m.props = make(map[string]string, min(n, 1024))
	for i := uint32(0); i < n && r.err == nil; i++ {
		k := r.bytes()
		m.props[string(k)] = string(r.bytes())
	}
	return m, r.err
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errors.New("MESSAGE frame: truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) bytes() []byte { return r.take(int(r.u32())) }

func appendBytes(b, v []byte) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(v))), v...)
}

func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > maxFrame {
		return 0, nil, fmt.Errorf("frame length %d out of range", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return buf[0], buf[1:], nil
}

func writeFrame(w *bufio.Writer, typ byte, body []byte) error {
	hdr := binary.BigEndian.AppendUint32(nil, uint32(len(body)+1))
	if _, err := w.Write(append(append(hdr, typ), body...)); err != nil {
		return err
	}
	return w.Flush()
}
