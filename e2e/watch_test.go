//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// watcher is a `meshfed get ... -w` running in the background.
type watcher struct {
	cmd   *exec.Cmd
	lines chan string   // stdout, line by line; closed at EOF
	done  chan struct{} // closed when the process has exited
	// mu guards seen and stderr.
	mu     sync.Mutex
	seen   []string
	stderr bytes.Buffer
}

func startWatcher(t *testing.T, args ...string) *watcher {
	t.Helper()
	w := &watcher{lines: make(chan string, 1024), done: make(chan struct{})}
	w.cmd = exec.Command(binPath, args...)
	w.cmd.Env = envFor(t, args)
	w.cmd.Stderr = lockedWriter{&w.mu, &w.stderr}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start meshfed %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.done
	})
	return w
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// output returns what the watcher printed so far, for failure messages.
func (w *watcher) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", strings.Join(w.seen, "\n"), w.stderr.String())
}

// waitLine reads standard output until a line's fields start with want,
// failing the test when timeout passes or the process ends first.
func (w *watcher) waitLine(t *testing.T, timeout time.Duration, want ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-w.lines:
			if !ok {
				<-w.done
				t.Fatalf("watch exited (%v) before printing a line starting %q\n%s", w.cmd.ProcessState, want, w.output())
			}
			w.mu.Lock()
			w.seen = append(w.seen, line)
			w.mu.Unlock()
			f := strings.Fields(line)
			if len(f) >= len(want) && slicesEqual(f[:len(want)], want) {
				return
			}
		case <-deadline:
			t.Fatalf("watch printed no line starting %q within %v\n%s", want, timeout, w.output())
		}
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeCluster writes a one-document file defining cluster name.
func writeCluster(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	doc := fmt.Sprintf(`apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: %s}
spec:
  region: eu-west-1
  serviceURL: pulsar://127.0.0.1:6650
  adminURL: http://127.0.0.1:8080
`, name)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWatchCLI(t *testing.T) {
	t.Parallel()
	for _, connectTo := range []string{"leader", "follower"} {
		t.Run("connected to "+connectTo, func(t *testing.T) {
			t.Parallel()
			testWatchFailover(t, connectTo == "leader")
		})
	}
}

// testWatchFailover runs `get clusters -w` with the leader (or a follower)
// first in --server, so that the watch is connected to it, and kills that
// server while the watch runs; killing the leader also forces an election
// while the watch fails over.
func testWatchFailover(t *testing.T, leaderFirst bool) {
	c := startBootstrapped(t, 3)
	lead := c.byID(leader(t, c.all(), 3))
	var first *server
	var rest []*server
	for _, s := range c.servers {
		if first == nil && (s == lead) == leaderFirst {
			first = s
		} else {
			rest = append(rest, s)
		}
	}
	w := startWatcher(t, "--server", addrs(append([]*server{first}, rest...)...), "get", "clusters", "-w")
	w.waitLine(t, convergeTimeout, "No", "clusters", "found.")

	mustCLI(t, c.all(), "apply", "-f", writeCluster(t, "watched-one"))
	w.waitLine(t, convergeTimeout, "PUT", "watched-one")

	t.Logf("killing %s, the server the watch is connected to", first.id)
	first.kill9()
	mustCLI(t, addrs(rest...), "apply", "-f", writeCluster(t, "watched-two"))
	w.waitLine(t, convergeTimeout, "PUT", "watched-two")

	// Every server down at once, then back: the watch waits and resumes.
	for _, s := range rest {
		s.kill9()
	}
	for _, s := range c.servers {
		s.start()
	}
	for _, s := range c.servers {
		s.waitReady()
	}
	mustCLI(t, c.all(), "apply", "-f", writeCluster(t, "watched-three"))
	w.waitLine(t, convergeTimeout, "PUT", "watched-three")

	// Resuming from the last revision seen: no event printed twice. (The
	// control plane writes each cluster's health after it is created, so a
	// cluster may have several events; status writes keep resourceVersion,
	// so events differ in HEALTH, not necessarily in REVISION.)
	w.mu.Lock()
	events := map[string]int{}
	for _, line := range w.seen {
		// EVENT NAME REGION SERVICE-URL HEALTH REVISION AGE: all but AGE.
		if f := strings.Fields(line); len(f) == 7 && f[0] == "PUT" {
			events[strings.Join(f[:6], " ")]++
		}
	}
	w.mu.Unlock()
	for ev, n := range events {
		if n != 1 {
			t.Errorf("event %s printed %d times\n%s", ev, n, w.output())
		}
	}

	select {
	case <-w.done:
		t.Fatalf("watch exited after failing over\n%s", w.output())
	default:
	}
}
