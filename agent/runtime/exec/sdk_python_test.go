package exec

import (
	"bytes"
	"errors"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonSDKProtocol drives the Python SDK with raw frames, as a host
// of another version or a broken host would.
func TestPythonSDKProtocol(t *testing.T) {
	py, err := osexec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	sdkDir, err := filepath.Abs("../../../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	enc := func(f frame) []byte {
		b, err := encodeFrame(f, DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hello := func(v uint32) []byte { return enc(&helloFrame{Version: v, Config: []byte("{}")}) }
	ready1 := enc(&readyFrame{Version: 1})
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	trailing := func(b []byte) []byte {
		b = append(b, 0)
		b[3]++ // one more byte in the length
		return b
	}
	// A MESSAGE with properties {a: 1, a: 2}: the Go encoder cannot make it.
	dupProps := cat([]byte{0, 0, 0, 0, typeMessage}, make([]byte, 8+4+4+4),
		[]byte{0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 1, '1', 0, 0, 0, 1, 'a', 0, 0, 0, 1, '2'}, make([]byte, 8+8+4+8))
	dupProps[3] = byte(len(dupProps) - 4)
	const identity = "import meshfed_function as mf\n" +
		"mf.run(lambda ctx, msg: mf.Output(payload=msg.payload, key=msg.key, topic=msg.topic, properties=msg.properties))"
	const swallow = "import meshfed_function as mf\n" +
		"def process(ctx, msg):\n" +
		"    try:\n" +
		"        return str(ctx.incr_counter('n'))\n" +
		"    except Exception:\n" +
		"        return 'swallowed'\n" +
		"mf.run(process)\n"
	for _, tc := range []struct {
		name       string
		stdin      []byte
		wantStdout []byte
		wantExit   int
		wantStderr string
		// script is the function's code; empty: an identity function.
		script string
	}{
		{"clean end", cat(hello(1)), ready1, 0, "", ""},
		{"other version", hello(2), ready1, 2, "host speaks exec protocol 2, this library speaks 1", ""},
		{"message", cat(hello(1), enc(&messageFrame{ID: 1, Topic: "t", Key: "k", Payload: []byte("p"), Properties: map[string]string{"a": "1"}, SequenceID: -1})),
			cat(ready1, enc(&outputFrame{ID: 1, Topic: "t", Key: "k", Payload: []byte("p"), Properties: map[string]string{"a": "1"}}), enc(&doneFrame{ID: 1})), 0, "", ""},
		{"non-UTF-8 strings", cat(hello(1), enc(&messageFrame{ID: 1, Topic: "t\xff", Key: "\xfe", Properties: map[string]string{"\xc3": "\x80"}})),
			cat(ready1, enc(&outputFrame{ID: 1, Topic: "t\xff", Key: "\xfe", Properties: map[string]string{"\xc3": "\x80"}}), enc(&doneFrame{ID: 1})), 0, "", ""},
		{"trailing bytes", cat(hello(1), trailing(enc(&messageFrame{ID: 1}))), ready1, 2, "MESSAGE frame: 1 trailing bytes", ""},
		{"duplicate property", cat(hello(1), dupProps), ready1, 2, "MESSAGE frame: properties: duplicate key 'a'", ""},
		{"not hello", enc(&messageFrame{ID: 1}), nil, 2, "expected HELLO", ""},
		{"truncated message", cat(hello(1), []byte{0, 0, 0, 5, typeMessage, 0, 0, 0, 0}), ready1, 2, "MESSAGE frame: id: need 8 bytes, 4 left", ""},
		{"oversized", cat(hello(1), []byte{0x7f, 0, 0, 0, typeMessage}), ready1, 2, "frame length 2130706432 outside", ""},
		{"cut", cat(hello(1), []byte{0, 0, 0, 9, typeMessage}), ready1, 2, "input ended inside a 9-byte frame", ""},
		// The user's code swallows the exception; the session ends anyway,
		// with nothing sent after the STATE request.
		{"bad state result", cat(hello(1), enc(&messageFrame{ID: 1}), enc(&doneFrame{ID: 1})),
			cat(ready1, enc(&stateFrame{ID: 1, Request: 1, Op: opIncrCounter, Key: "n", Delta: 1})), 2,
			"got frame type 0x05 while waiting for STATE_RESULT", swallow},
		{"state result", cat(hello(1), enc(&messageFrame{ID: 1}), enc(&stateResultFrame{Request: 1, OK: true, Counter: 41})),
			cat(ready1, enc(&stateFrame{ID: 1, Request: 1, Op: opIncrCounter, Key: "n", Delta: 1}),
				enc(&outputFrame{ID: 1, Payload: []byte("41")}), enc(&doneFrame{ID: 1})), 0, "", swallow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			script := tc.script
			if script == "" {
				script = identity
			}
			cmd := osexec.Command(py, "-c", script)
			cmd.Env = []string{"PYTHONPATH=" + sdkDir}
			cmd.Stdin = bytes.NewReader(tc.stdin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			code := 0
			var ee *osexec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantExit || !bytes.Equal(stdout, tc.wantStdout) || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("exit %d, stdout %x, stderr %q; want exit %d, stdout %x, stderr with %q",
					code, stdout, stderr.String(), tc.wantExit, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}
