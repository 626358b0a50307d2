package execconn

import (
	"context"
	"errors"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
)

// pythonEnv returns the config values that run script with python3 and
// the SDK on PYTHONPATH; it skips without python3.
func pythonEnv(t testing.TB, script string, processConfig map[string]any) map[string]any {
	t.Helper()
	if _, err := osexec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	sdk, err := filepath.Abs("../../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(script) {
		if script, err = filepath.Abs(script); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]any{
		"command":   []any{"python3", script},
		"env":       map[string]any{"PYTHONPATH": sdk},
		"timeout":   "20s",
		"stopGrace": "5s",
		"config":    processConfig,
	}
}

func cfgOf(name string, values map[string]any, eo bool) connector.Config {
	return connector.Config{Tenant: "public", Namespace: "default", Mesh: "m", Name: name, Type: "exec",
		Values: values, EffectivelyOnce: eo, Logger: slog.New(slog.DiscardHandler)}
}

func writeScript(t testing.TB, code string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "conn.py")
	if err := os.WriteFile(p, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPythonCounterSource runs examples/connectors/counter_source.py: it
// reads in order, commits, and a new process resumes after the commit.
func TestPythonCounterSource(t *testing.T) {
	state := filepath.Join(t.TempDir(), "counter.state")
	values := pythonEnv(t, "../../examples/connectors/counter_source.py",
		map[string]any{"every": 0.0, "batch": 10.0, "state_file": state})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := connector.LookupSource("exec")
	if err != nil {
		t.Fatal(err)
	}
	read := func(src connector.Source, from int) string {
		t.Helper()
		recs, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 10 {
			t.Fatalf("read %d records, want 10", len(recs))
		}
		for i, r := range recs {
			want := strconv.Itoa(from + i)
			if string(r.Value) != want || r.Position != want || r.Key != "counter" || r.Properties["source"] != "counter" || r.EventTime.IsZero() {
				t.Fatalf("record %d: %+v, want value and position %s, key counter, property source=counter, an event time", i, r, want)
			}
		}
		return recs[len(recs)-1].Position
	}

	src, err := f.Open(ctx, cfgOf("counter", values, false))
	if err != nil {
		t.Fatal(err)
	}
	read(src, 1)
	pos := read(src, 11)
	if err := src.Commit(ctx, pos); err != nil {
		t.Fatal(err)
	}
	read(src, 21) // read, never committed: read again after the restart
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}

	src, err = f.Open(ctx, cfgOf("counter", values, false))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	read(src, 21)
}

// TestPythonFileSink runs examples/connectors/file_sink.py: each batch is
// on disk when Write returns, and effectively-once skips a redelivered
// batch, across a new process too.
func TestPythonFileSink(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.txt")
	values := pythonEnv(t, "../../examples/connectors/file_sink.py", map[string]any{"path": out})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := connector.LookupSink("exec")
	if err != nil {
		t.Fatal(err)
	}
	batch := func(stream string, from, n int) []connector.SinkRecord {
		var b []connector.SinkRecord
		for i := from; i < from+n; i++ {
			b = append(b, connector.SinkRecord{Record: connector.Record{Key: "k", Value: []byte("v" + strconv.Itoa(i)),
				Properties: map[string]string{"p": "1"}, EventTime: time.UnixMilli(1700000000000)},
				Topic: "persistent://public/default/in", Stream: stream, Sequence: uint64(i)})
		}
		return b
	}
	lines := func() string {
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}

	sink, err := f.Open(ctx, cfgOf("file", values, true))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(ctx, batch("a", 1, 3)); err != nil {
		t.Fatal(err)
	}
	if got := lines(); got != "v1\nv2\nv3" {
		t.Fatalf("after one batch the file holds %q", got)
	}
	if err := sink.Write(ctx, batch("a", 2, 3)); err != nil { // v2, v3 again, then v4
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	sink, err = f.Open(ctx, cfgOf("file", values, true))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.Write(ctx, append(batch("a", 4, 2), batch("b", 1, 1)...)); err != nil {
		t.Fatal(err)
	}
	if got, want := lines(), "v1\nv2\nv3\nv4\nv5\nv1"; got != want {
		t.Fatalf("the file holds %q, want %q", got, want)
	}
	if err := sink.Write(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

// TestPythonErrors covers the failure modes: an exception fails the call
// and keeps the process, a crash or a protocol error ends it with the
// exit status, a cancelled Read kills it, a wrong role is refused at open.
func TestPythonErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srcF, _ := connector.LookupSource("exec")
	sinkF, _ := connector.LookupSink("exec")

	t.Run("exception keeps the process", func(t *testing.T) {
		values := pythonEnv(t, writeScript(t, `import meshfed_connector as mc
n = [0]
def write(ctx, records):
    n[0] += 1
    if n[0] == 1:
        raise IOError("disk full")
mc.run_sink(write)
`), nil)
		sink, err := sinkF.Open(ctx, cfgOf("s", values, false))
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		var ce *ConnectorError
		err = sink.Write(ctx, []connector.SinkRecord{{Record: connector.Record{Value: []byte("x")}}})
		if !errors.As(err, &ce) || ce.Op != "write" || !strings.Contains(ce.Reason, "OSError: disk full") {
			t.Fatalf("first Write: %v, want a ConnectorError with the exception", err)
		}
		if err := sink.Write(ctx, []connector.SinkRecord{{Record: connector.Record{Value: []byte("x")}}}); err != nil {
			t.Fatalf("second Write on the same process: %v", err)
		}
	})

	t.Run("crash", func(t *testing.T) {
		values := pythonEnv(t, writeScript(t, `import os, sys, meshfed_connector as mc
def read(ctx, n):
    sys.stderr.write("ERROR: giving up\n"); sys.stderr.flush()
    os._exit(3)
mc.run_source(read)
`), nil)
		src, err := srcF.Open(ctx, cfgOf("s", values, false))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		_, err = src.Read(ctx)
		if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "giving up") {
			t.Fatalf("Read: %v, want ErrCrashed with the status and the last stderr", err)
		}
		if _, err2 := src.Read(ctx); !errors.Is(err2, ErrCrashed) {
			t.Fatalf("Read after the crash: %v, want the crash again", err2)
		}
	})

	t.Run("sink restarts after a crash", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "crashed")
		values := pythonEnv(t, writeScript(t, `import os, meshfed_connector as mc
def write(ctx, records):
    if not os.path.exists(ctx.config["marker"]):
        open(ctx.config["marker"], "w").close()
        os._exit(1)
mc.run_sink(write)
`), map[string]any{"marker": marker})
		sink, err := sinkF.Open(ctx, cfgOf("s", values, false))
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		batch := []connector.SinkRecord{{Record: connector.Record{Value: []byte("x")}}}
		if err := sink.Write(ctx, batch); !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "exited with status 1") {
			t.Fatalf("first Write: %v, want ErrCrashed", err)
		}
		// The agent retries on the same Sink: a new process takes it.
		if err := sink.Write(ctx, batch); err != nil {
			t.Fatalf("retried Write: %v", err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sink.Write(ctx, batch); !errors.Is(err, ErrClosed) {
			t.Fatalf("Write after Close: %v, want ErrClosed", err)
		}
	})

	t.Run("stray stdout", func(t *testing.T) {
		values := pythonEnv(t, writeScript(t, `import os, sys
sys.stdin.buffer.read(4)
os.write(1, b"hello, world\n")
sys.stdin.buffer.read()
`), nil)
		_, err := sinkF.Open(ctx, cfgOf("s", values, false))
		if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "stdout must carry only protocol frames") {
			t.Fatalf("Open: %v, want ErrCrashed naming the stray output", err)
		}
	})

	// sleepingSource opens a source whose program never answers a READ.
	sleepingSource := func(t *testing.T) connector.Source {
		t.Helper()
		values := pythonEnv(t, writeScript(t, `import time, meshfed_connector as mc
mc.run_source(lambda ctx, n: time.sleep(3600))
`), nil)
		src, err := srcF.Open(ctx, cfgOf("s", values, false))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}

	t.Run("cancelled read", func(t *testing.T) {
		src := sleepingSource(t)
		defer src.Close()
		rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer rcancel()
		if _, err := src.Read(rctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrCrashed) {
			t.Fatalf("Read: %v, want the deadline and ErrCrashed", err)
		}
	})

	t.Run("close during read", func(t *testing.T) {
		src := sleepingSource(t)
		done := make(chan error, 1)
		go func() { _, err := src.Read(ctx); done <- err }()
		// Close kills the process whether or not Read has sent READ yet.
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrCrashed) && !errors.Is(err, ErrClosed) {
			t.Fatalf("Read: %v, want ErrCrashed or ErrClosed", err)
		}
	})

	t.Run("wrong role", func(t *testing.T) {
		values := pythonEnv(t, "../../examples/connectors/counter_source.py", nil)
		_, err := sinkF.Open(ctx, cfgOf("s", values, false))
		if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "opened as a sink, this program is a source") {
			t.Fatalf("Open: %v, want the role refused", err)
		}
	})

	t.Run("missing program", func(t *testing.T) {
		_, err := sinkF.Open(ctx, cfgOf("s", map[string]any{"command": "/nonexistent/prog"}, false))
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/prog") {
			t.Fatalf("Open: %v, want an error naming the program", err)
		}
	})
}

// TestPythonSDKRefusesBadFrames feeds the Python SDK raw frames a broken
// host might send: it must exit with a protocol error naming the problem,
// never take a malformed record.
func TestPythonSDKRefusesBadFrames(t *testing.T) {
	values := pythonEnv(t, "../../examples/connectors/file_sink.py", nil)
	enc := func(f frame) []byte {
		b, err := encode(f, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	open := enc(&openFrame{Version: 1, Role: roleSink, Config: []byte(`{"path": "` + filepath.Join(t.TempDir(), "out") + `"}`)})
	write := enc(&writeFrame{Request: 1, Topic: "t", Key: "k", Value: []byte("v"), Properties: map[string]string{"a": "b"}, Stream: "s", Sequence: 1})
	trailing := append(append([]byte(nil), write...), 0)
	trailing[3]++
	truncated := append([]byte(nil), write[:len(write)-3]...)
	truncated[3] -= 3
	for _, tc := range []struct {
		name, want string
		stdin      []byte
	}{
		{"trailing byte", "WRITE frame: 1 trailing bytes", append(append([]byte(nil), open...), trailing...)},
		{"truncated", "WRITE frame: sequence: need 8 bytes", append(append([]byte(nil), open...), truncated...)},
		{"count mismatch", "FLUSH says 2 records, 1 arrived", append(append(append([]byte(nil), open...), write...), enc(&flushFrame{Request: 1, Count: 2})...)},
		{"version", "host speaks exec protocol 2", enc(&openFrame{Version: 2, Role: roleSink})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := osexec.Command("python3", values["command"].([]any)[1].(string))
			cmd.Env = []string{"PYTHONPATH=" + values["env"].(map[string]any)["PYTHONPATH"].(string)}
			cmd.Stdin = strings.NewReader(string(tc.stdin))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *osexec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %v, stderr %q; want status 2 and %q", err, stderr.String(), tc.want)
			}
		})
	}
}
