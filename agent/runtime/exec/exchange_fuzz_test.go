package exec

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// FuzzExchange plays arbitrary bytes as a function's answer to one
// MESSAGE: the host must never panic or hang, and every outcome must be
// one the instance can classify — outputs after a DONE, a *FunctionError,
// a protocol error, or the end of the process's output.
func FuzzExchange(f *testing.F) {
	enc := func(frs ...frame) []byte {
		var b []byte
		for _, fr := range frs {
			e, err := encodeFrame(fr, DefaultMaxFrameSize)
			if err != nil {
				f.Fatal(err)
			}
			b = append(b, e...)
		}
		return b
	}
	f.Add(enc(&outputFrame{ID: 1, Key: "a", Payload: []byte("a")}, &doneFrame{ID: 1}))
	f.Add(enc(&stateFrame{ID: 1, Request: 1, Op: opIncrCounter, Key: "n", Delta: 1},
		&stateFrame{ID: 1, Request: 2, Op: opPutState, Key: "v", HasValue: true, Value: []byte("x")},
		&stateFrame{ID: 1, Request: 3, Op: opGetState, Key: "v"}, &doneFrame{ID: 1}))
	f.Add(enc(&failFrame{ID: 1, Error: "boom"}))
	f.Add(enc(&doneFrame{ID: 2}))
	f.Add(enc(&readyFrame{Version: 1}))
	f.Add([]byte("hello\n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, answer []byte) {
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		// The fake function: drain stdin, write the answer, close stdout.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, inR)
		}()
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			outW.Write(answer)
			outW.Close()
		}()
		opts := testOptions()
		opts.MaxFrameSize = 1 << 12
		opts.MaxOutputs = 16
		fn := &function{rt: New(nil, opts)}
		p := &process{in: inW, out: outR, outBuf: bufio.NewReader(outR)}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		outs, err := fn.exchangeLocked(ctx, newFakeContext(), p, msg("x"))
		var ferr *FunctionError
		switch {
		case err == nil:
			if len(outs) > opts.MaxOutputs {
				t.Fatalf("%d outputs passed the limit of %d", len(outs), opts.MaxOutputs)
			}
		case errors.As(err, &ferr), errors.Is(err, ErrProtocol), errors.Is(err, errStdoutClosed),
			errors.Is(err, io.ErrUnexpectedEOF):
		case ctx.Err() != nil:
			t.Fatalf("exchange hung: %v", err)
		default:
			t.Fatalf("unclassified error: %v", err)
		}
		outR.Close() // unblocks the writer, as killing the process would
		inW.Close()
		<-wrote
		<-drained
		inR.Close()
	})
}
