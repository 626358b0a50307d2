package exec

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv switches the test binary into a fake exec function: tests start
// os.Args[0] with MESHFED_EXEC_TEST_CHILD=<mode>.
const childEnv = "MESHFED_EXEC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of package exec left after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to d for every goroutine running code of this
// package (other than TestMain) to end, and returns the stacks of those
// that did not.
func leakedGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	for {
		var leaked []string
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "meshfed/agent/runtime/exec.") && !strings.Contains(g, "exec.TestMain(") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(time.Millisecond)
	}
}

// runChild is a Go exec function with misbehaviours for tests. Modes:
//
//	script      speaks the protocol; each message's payload picks what it
//	            does (see childScript)
//	version     answers HELLO with READY version 99
//	silent      reads HELLO and never answers
//	exit        writes to stderr and exits 7 before reading anything
//	early       sends OUTPUT instead of READY
func runChild(mode string) int {
	in := bufio.NewReader(os.Stdin)
	out := os.Stdout
	send := func(f frame) {
		b, err := encodeFrame(f, DefaultMaxFrameSize)
		if err != nil {
			panic(err)
		}
		if _, err := out.Write(b); err != nil {
			os.Exit(1)
		}
	}
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "ERROR: cannot load model.bin")
		return 7
	}
	t, body, err := readFrame(in, DefaultMaxFrameSize)
	if err != nil {
		return 1
	}
	if _, err := decodeFrame(t, body); err != nil || t != typeHello {
		fmt.Fprintln(os.Stderr, "bad HELLO:", err)
		return 2
	}
	switch mode {
	case "version":
		send(&readyFrame{Version: 99})
		in.ReadByte() // wait for the host to give up
		return 0
	case "silent":
		time.Sleep(time.Hour)
		return 0
	case "early":
		send(&outputFrame{ID: 1})
		in.ReadByte()
		return 0
	}
	send(&readyFrame{Version: ProtocolVersion})
	for {
		t, body, err := readFrame(in, DefaultMaxFrameSize)
		if err != nil {
			return 0 // stdin closed: the host is done with us
		}
		f, err := decodeFrame(t, body)
		if err != nil {
			return 3
		}
		m, ok := f.(*messageFrame)
		if !ok {
			return 4
		}
		if code := childScript(m, in, send); code >= 0 {
			return code
		}
	}
}

// childScript handles one message by its payload; it returns an exit code
// to exit with, or -1 to keep serving.
func childScript(m *messageFrame, in *bufio.Reader, send func(frame)) int {
	raw := func(b []byte) { os.Stdout.Write(b) }
	switch p := string(m.Payload); p {
	case "burn":
		// Spins for 300ms of CPU time.
		for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		}
		send(&outputFrame{ID: m.ID, Payload: []byte("burnt")})
		send(&doneFrame{ID: m.ID})
	case "crash":
		send(&outputFrame{ID: m.ID, Payload: []byte("half")})
		fmt.Fprintln(os.Stderr, "panic: boom")
		return 3
	case "garbage":
		raw([]byte("hello world, this is not a frame\n"))
	case "unknown":
		raw([]byte{0, 0, 0, 3, 0x7f, 1, 2})
	case "truncated-body":
		raw([]byte{0, 0, 0, 5, typeOutput, 0, 0, 0, 0})
	case "wrong-id":
		send(&doneFrame{ID: m.ID + 1})
	case "ready-again":
		send(&readyFrame{Version: ProtocolVersion})
	case "hang":
		time.Sleep(time.Hour)
	case "fail":
		send(&failFrame{ID: m.ID, Error: "ValueError: no good"})
	case "spawn":
		// A grandchild in our process group; Close must kill it too.
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			send(&failFrame{ID: m.ID, Error: err.Error()})
			return -1
		}
		send(&outputFrame{ID: m.ID, Payload: []byte(strconv.Itoa(cmd.Process.Pid))})
		send(&doneFrame{ID: m.ID})
	case "state":
		// incr "n" by 5, put "v", get "v", get counter "n".
		reqs := []*stateFrame{
			{ID: m.ID, Request: 1, Op: opIncrCounter, Key: "n", Delta: 5},
			{ID: m.ID, Request: 2, Op: opPutState, Key: "v", HasValue: true, Value: []byte("x")},
			{ID: m.ID, Request: 3, Op: opGetState, Key: "v"},
			{ID: m.ID, Request: 4, Op: opGetCounter, Key: "n"},
		}
		for _, r := range reqs {
			send(r)
			t, body, err := readFrame(in, DefaultMaxFrameSize)
			if err != nil {
				return 5
			}
			f, err := decodeFrame(t, body)
			res, ok := f.(*stateResultFrame)
			if err != nil || !ok || res.Request != r.Request || !res.OK {
				return 6
			}
			send(&outputFrame{ID: m.ID, Key: strconv.Itoa(int(r.Op)),
				Payload: []byte(fmt.Sprintf("%d %t %s", res.Counter, res.HasValue, res.Value))})
		}
		send(&doneFrame{ID: m.ID})
	case "env":
		cwd, _ := os.Getwd()
		env := os.Environ()
		sort.Strings(env)
		send(&outputFrame{ID: m.ID, Key: cwd, Payload: []byte(strings.Join(env, "\n"))})
		send(&doneFrame{ID: m.ID})
	case "log":
		fmt.Fprintln(os.Stderr, "WARNING: disk almost full")
		fmt.Fprintln(os.Stderr, "plain line")
		send(&doneFrame{ID: m.ID})
	case "big-output":
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], 1<<30)
		raw(hdr[:])
	default:
		send(&outputFrame{ID: m.ID, Topic: m.Topic, Key: m.Key, Payload: m.Payload, Properties: m.Properties})
		send(&doneFrame{ID: m.ID})
	}
	return -1
}
