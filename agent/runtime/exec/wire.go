package exec

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"time"
)

// The frame layer and the child process are shared with the other
// protocols of the exec family (the exec connector protocol of
// connector/execconn, docs/exec-protocol.md): same framing, same field
// encodings, same process handling; only the frame types differ.

// ReadFrame reads one frame: its type and body. It allocates at most max
// bytes and refuses a longer length without reading on; a clean end of
// stream before the header returns io.EOF.
func ReadFrame(r *bufio.Reader, max int) (byte, []byte, error) { return readFrame(r, max) }

// EncodeFrame returns a frame of type t whose body appendBody appends:
// length, type, body. It fails with ErrFrameTooLarge over max bytes
// (type byte + body); name names the frame in that error.
func EncodeFrame(t byte, name string, max int, appendBody func([]byte) []byte) ([]byte, error) {
	return encodeFrame(&rawFrame{t: t, name: name, appendFn: appendBody}, max)
}

// FrameName names frame type t in errors and logs: its name in names, or
// its number when it has none.
func FrameName(names map[byte]string, t byte) string {
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("unknown frame type 0x%02x", t)
}

func errTrailing(n int) error { return fmt.Errorf("%d trailing bytes after the last field", n) }

type rawFrame struct {
	t        byte
	name     string
	appendFn func([]byte) []byte
}

func (f *rawFrame) String() string { return f.name }

func (f *rawFrame) frameType() byte            { return f.t }
func (f *rawFrame) appendBody(b []byte) []byte { return f.appendFn(b) }

// AppendBool, AppendBytes, AppendString and AppendMap append a field in
// the protocol's encoding (docs/exec-protocol.md, "Field types").
func AppendBool(b []byte, v bool) []byte             { return appendBool(b, v) }
func AppendBytes(b, v []byte) []byte                 { return appendBytes(b, v) }
func AppendString(b []byte, v string) []byte         { return appendString(b, v) }
func AppendMap(b []byte, m map[string]string) []byte { return appendMap(b, m) }

// Decoder reads the fields of a frame body in order; the first error
// sticks and names its field. Byte slices alias the body.
type Decoder struct{ d decoder }

// NewDecoder reads body.
func NewDecoder(body []byte) *Decoder { return &Decoder{d: decoder{b: body}} }

// U8, Bool, U32, U64, I64, Bytes, Str and StrMap read the next field;
// field names it in errors.
func (d *Decoder) U8(field string) byte                  { return d.d.u8(field) }
func (d *Decoder) Bool(field string) bool                { return d.d.bool(field) }
func (d *Decoder) U32(field string) uint32               { return d.d.u32(field) }
func (d *Decoder) U64(field string) uint64               { return d.d.u64(field) }
func (d *Decoder) I64(field string) int64                { return d.d.i64(field) }
func (d *Decoder) Bytes(field string) []byte             { return d.d.bytes(field) }
func (d *Decoder) Str(field string) string               { return d.d.str(field) }
func (d *Decoder) StrMap(field string) map[string]string { return d.d.strMap(field) }

// Err returns the first field error, or an error for bytes left after the
// last field.
func (d *Decoder) Err() error {
	if d.d.err == nil && len(d.d.b) > 0 {
		d.d.err = errTrailing(len(d.d.b))
	}
	return d.d.err
}

// Child is a process speaking a protocol of the exec family: started in
// its own process group with fresh pipes, killed with the agent (Linux:
// parent-death signal), its stderr lines logged with their level prefix.
// Send, ReadFrame, Stop and Reap must not run concurrently; Kill may run
// at any time.
type Child struct{ p *process }

// StartChild starts path with args (args[0] is the program's name), in
// dir, with exactly env.
func StartChild(path string, args []string, dir string, env []string, logger *slog.Logger) (*Child, error) {
	p, err := spawn(path, args, dir, env, logger, nil)
	if err != nil {
		return nil, err
	}
	return &Child{p: p}, nil
}

// ResolveCommand finds the executable name the way StartChild will run
// it: a bare name through PATH, a relative path from dir.
func ResolveCommand(name, dir string) (string, error) { return resolveCommand(name, dir) }

// Pid is the child's process id (and process group id).
func (c *Child) Pid() int { return c.p.pid }

// Send writes one whole frame to the child's stdin.
func (c *Child) Send(b []byte) error { return c.p.send(b) }

// ReadFrame reads the child's next frame from its stdout.
func (c *Child) ReadFrame(max int) (byte, []byte, error) { return readFrame(c.p.outBuf, max) }

// Watch makes pending and future reads and writes fail once ctx is done;
// call the returned func before the next exchange.
func (c *Child) Watch(ctx context.Context) (unwatch func()) { return c.p.watch(ctx) }

// Kill sends SIGKILL to the child's process group and unblocks pending
// reads and writes.
func (c *Child) Kill() { c.p.kill() }

// Stop closes the child's stdin, waits up to grace for it to close its
// stdout, then kills and reaps it.
func (c *Child) Stop(grace time.Duration) { c.p.stop(grace) }

// Reap kills the child if it still runs, waits for it and returns how it
// ended with its last stderr lines ("exited with status 1; last stderr:
// ..."), for errors.
func (c *Child) Reap() string { return c.p.reap() }
