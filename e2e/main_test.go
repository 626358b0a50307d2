//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
)

// binPath is the meshfed binary that TestMain builds once per test run.
var binPath string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if bin := os.Getenv("MESHFED_E2E_BIN"); bin != "" {
		// Test a binary built elsewhere (a release build, or a clean
		// checkout while the working tree does not compile).
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: MESHFED_E2E_BIN:", err)
			return 1
		}
		binPath = abs
	}
	dir, err := os.MkdirTemp("", "meshfed-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create bin dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := setupPKI(filepath.Join(dir, "pki")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create certificates:", err)
		return 1
	}
	if binPath != "" {
		return m.Run()
	}
	binPath = filepath.Join(dir, "meshfed")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", binPath, "github.com/meshfed/meshfed/cmd/meshfed")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build meshfed:", err)
		return 1
	}
	return m.Run()
}

// Deadlines for the conditions the tests wait for. They are generous: the
// machine may be shared, and a test that passes only on an idle machine is
// worse than a slow failure.
const (
	readyTimeout    = 30 * time.Second
	convergeTimeout = 30 * time.Second
	stopTimeout     = 20 * time.Second
	cliTimeout      = 60 * time.Second
	pollInterval    = 100 * time.Millisecond
	logTailLines    = 40
)

// handedOut remembers every port given to a test in this process, so two
// tests running in parallel never get the same one.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports were free a
// moment ago: each is found by listening on port 0, and all listeners stay
// open until all n are found.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	var (
		addrs []string
		lis   []net.Listener
	)
	defer func() {
		for _, l := range lis {
			l.Close()
		}
	}()
	for len(addrs) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		lis = append(lis, l)
		port := l.Addr().(*net.TCPAddr).Port
		if handedOut[port] {
			continue
		}
		handedOut[port] = true
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// proc is one run of a meshfed process (server, agent, broker).
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and err is set
	err  error         // what cmd.Wait returned
}

// startProc starts `meshfed args` as name, appending its output to the
// log at logPath after a line with the command; it does not wait for the
// process to be ready.
func startProc(t *testing.T, name, logPath string, args []string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("open log of %s: %v", name, err)
	}
	fmt.Fprintf(f, "=== e2e %s: meshfed %s\n", time.Now().UTC().Format(time.StampMilli), strings.Join(args, " "))
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = cliEnv()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p
}

// alive reports whether p was started and has not exited.
func (p *proc) alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// server is one `meshfed server` whose process can be started, killed and
// started again on the same data dir, addresses and flags.
type server struct {
	t        *testing.T
	id       string
	dataDir  string
	raftAddr string
	grpcAddr string
	httpAddr string
	// flags are added to the command line of every start (--initial-cluster, --join).
	flags []string
	// logPath collects stdout and stderr of every start, in order.
	logPath string
	// p is the current or last process; nil before the first start.
	p *proc
}

func (s *server) args() []string {
	return append([]string{"server",
		"--node-id", s.id,
		"--data-dir", s.dataDir,
		"--raft-addr", s.raftAddr,
		"--grpc-addr", s.grpcAddr,
		"--http-addr", s.httpAddr,
	}, append(serverTLSFlags(), s.flags...)...)
}

// running reports whether the server's process is alive.
func (s *server) running() bool { return s.p.alive() }

// start starts the server process; it does not wait for it to be ready.
func (s *server) start() {
	s.t.Helper()
	if s.running() {
		s.t.Fatalf("start %s: already running", s.id)
	}
	s.p = startProc(s.t, s.id, s.logPath, s.args())
}

// signal sends sig and waits for the process to exit. It returns the
// process's exit error (nil for exit code 0).
func (s *server) signal(sig syscall.Signal, timeout time.Duration) error {
	s.t.Helper()
	if !s.running() {
		s.t.Fatalf("signal %s: not running", s.id)
	}
	if err := s.p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("signal %s: %v", s.id, err)
	}
	select {
	case <-s.p.done:
		return s.p.err
	case <-time.After(timeout):
		s.p.cmd.Process.Kill()
		<-s.p.done
		s.t.Fatalf("%s did not exit within %v of %v\n%s", s.id, timeout, sig, s.logTail())
		return nil
	}
}

// kill9 kills the server with SIGKILL: no shutdown code runs.
func (s *server) kill9() {
	s.t.Helper()
	s.signal(syscall.SIGKILL, stopTimeout)
}

// stop sends SIGTERM and requires a clean exit (code 0).
func (s *server) stop() {
	s.t.Helper()
	if err := s.signal(syscall.SIGTERM, stopTimeout); err != nil {
		s.t.Errorf("%s: exit after SIGTERM: %v (want a clean shutdown, exit code 0)\n%s", s.id, err, s.logTail())
	}
}

// readyz reports whether GET /readyz answers 200, with the answer.
func (s *server) readyz() (bool, string) {
	hc := http.Client{Timeout: time.Second}
	resp, err := hc.Get("http://" + s.httpAddr + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(b.String()))
}

// waitReady polls /readyz until it answers 200, failing early if the
// process exits.
func (s *server) waitReady() {
	s.t.Helper()
	testkit.Eventually(s.t, readyTimeout, s.id+" /readyz returns 200", func() (bool, string) {
		if !s.running() {
			s.t.Fatalf("%s exited while waiting for /readyz: %v\n%s", s.id, s.p.err, s.logTail())
		}
		return s.readyz()
	})
}

// logTail returns the last lines of the server's combined output.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log for %s: %v)", s.id, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("--- last %d lines of %s (%s) ---\n%s", len(lines), s.id, s.logPath, strings.Join(lines, "\n"))
}

// cluster is a set of servers owned by one test. At the end of the test
// every process still running is killed, and on failure the tail of each
// server's log is printed.
type cluster struct {
	t *testing.T
	// dir holds the servers' data dirs and logs.
	dir     string
	servers []*server
}

func newCluster(t *testing.T) *cluster {
	// Create the temp dir before registering the cleanup below, so that
	// (cleanups running last-in first-out) the processes are killed and
	// their logs printed before the directory is removed.
	c := &cluster{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		for _, s := range c.servers {
			if s.running() {
				s.p.cmd.Process.Kill()
				<-s.p.done
			}
		}
		if t.Failed() {
			for _, s := range c.servers {
				t.Log(s.logTail())
			}
			keepDir(t, c.dir)
		}
	})
	return c
}

// keepDir copies a failed test's directory (logs, data) to
// $MESHFED_E2E_KEEP/<test name> when that variable is set.
func keepDir(t *testing.T, dir string) {
	keep := os.Getenv("MESHFED_E2E_KEEP")
	if keep == "" {
		return
	}
	dst := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Logf("MESHFED_E2E_KEEP: %v", err)
		return
	}
	if out, err := exec.Command("cp", "-a", dir+"/.", dst).CombinedOutput(); err != nil {
		t.Logf("MESHFED_E2E_KEEP: copy %s: %v: %s", dir, err, out)
		return
	}
	t.Logf("kept the test's directory in %s", dst)
}

// add creates (but does not start) a server with fresh ports and data dir.
func (c *cluster) add(id string, flags ...string) *server {
	c.t.Helper()
	addrs := freeAddrs(c.t, 3)
	dir := filepath.Join(c.dir, id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		c.t.Fatalf("add server %s: %v", id, err)
	}
	s := &server{
		t:        c.t,
		id:       id,
		dataDir:  filepath.Join(dir, "data"),
		raftAddr: addrs[0],
		grpcAddr: addrs[1],
		httpAddr: addrs[2],
		flags:    flags,
		logPath:  filepath.Join(dir, id+".log"),
	}
	c.servers = append(c.servers, s)
	groups.Store(s.grpcAddr, c)
	c.t.Cleanup(func() { groups.Delete(s.grpcAddr) })
	return s
}

// startBootstrapped starts n servers that form a group with --initial-cluster
// and waits until every one of them is ready.
func startBootstrapped(t *testing.T, n int) *cluster {
	t.Helper()
	c := newCluster(t)
	var initial []string
	for i := 1; i <= n; i++ {
		s := c.add(fmt.Sprintf("node%d", i))
		initial = append(initial, s.id+"="+s.raftAddr)
	}
	for _, s := range c.servers {
		s.flags = []string{"--initial-cluster", strings.Join(initial, ",")}
		s.start()
	}
	for _, s := range c.servers {
		s.waitReady()
	}
	return c
}

// addrs returns the gRPC addresses of the servers, comma-separated, in order.
func addrs(servers ...*server) string {
	var out []string
	for _, s := range servers {
		out = append(out, s.grpcAddr)
	}
	return strings.Join(out, ",")
}

// all is the --server value naming every server of the cluster.
func (c *cluster) all() string { return addrs(c.servers...) }

// byID returns the cluster's server with the given node ID.
func (c *cluster) byID(id string) *server {
	c.t.Helper()
	for _, s := range c.servers {
		if s.id == id {
			return s
		}
	}
	c.t.Fatalf("no server with node id %q in the cluster", id)
	return nil
}

// result is the outcome of one CLI run.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("meshfed %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cliEnv is the environment of every process started: the test's own,
// without MESHFED_SERVER so that only --server decides where commands go.
func cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MESHFED_SERVER=") {
			env = append(env, kv)
		}
	}
	return env
}

// cli runs the meshfed binary with args and returns what it printed and its
// exit code. A run that outlives cliTimeout fails the test.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = envFor(t, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("meshfed %s: still running after %v\nstderr:\n%s", strings.Join(args, " "), cliTimeout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run meshfed %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustCLI runs the CLI against the servers in srv (a --server value) and
// fails the test unless it exits 0. It returns standard output.
func mustCLI(t *testing.T, srv string, args ...string) string {
	t.Helper()
	r := cli(t, append([]string{"--server", srv}, args...)...)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	return r.stdout
}

// parseTable parses the aligned table the CLI prints: a header line whose
// column names are separated by two or more spaces (a name may contain a
// single space, like "RAFT ADDRESS"), then one row per line.
func parseTable(out string) ([]map[string]string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, fmt.Errorf("no table header in %q", out)
	}
	head := lines[0]
	type col struct {
		name  string
		start int
	}
	var cols []col
	for i := 0; i < len(head); {
		if head[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(head) && !(head[j] == ' ' && (j+1 == len(head) || head[j+1] == ' ')) {
			j++
		}
		cols = append(cols, col{name: head[i:j], start: i})
		i = j
	}
	var rows []map[string]string
	for _, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		row := map[string]string{}
		for k, c := range cols {
			end := len(line)
			if k+1 < len(cols) {
				end = min(cols[k+1].start, len(line))
			}
			if c.start < end {
				row[c.name] = strings.TrimSpace(line[c.start:end])
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// listPeers runs `operator raft list-peers` against srv and parses its table.
func listPeers(t *testing.T, srv string) ([]map[string]string, result) {
	t.Helper()
	r := cli(t, "--server", srv, "operator", "raft", "list-peers")
	if r.code != 0 {
		return nil, r
	}
	rows, err := parseTable(r.stdout)
	if err != nil {
		t.Fatalf("parse list-peers output: %v\n%s", err, r)
	}
	return rows, r
}

// leader waits until list-peers through srv names exactly one leader among
// want peers, and returns the leader's node ID.
func leader(t *testing.T, srv string, want int) string {
	t.Helper()
	var id string
	testkit.Eventually(t, convergeTimeout, "list-peers to show one leader", func() (bool, string) {
		rows, r := listPeers(t, srv)
		if r.code != 0 {
			return false, r.String()
		}
		var leaders []string
		for _, row := range rows {
			if row["STATE"] == "leader" {
				leaders = append(leaders, row["ID"])
			}
		}
		if len(rows) != want || len(leaders) != 1 {
			return false, r.stdout
		}
		id = leaders[0]
		return true, ""
	})
	return id
}

// objectRef names one object for `meshfed get`.
type objectRef struct{ kind, name string }

func (o objectRef) String() string { return o.kind + " " + o.name }

// objectDoc holds the fields of `get -o json` output the tests look at.
type objectDoc struct {
	Metadata struct {
		ResourceVersion json.Number `json:"resourceVersion"`
		Generation      json.Number `json:"generation"`
	} `json:"metadata"`
	Status struct {
		Health             string      `json:"health"`
		ObservedGeneration json.Number `json:"observedGeneration"`
	} `json:"status"`
}

// getObject runs `get KIND NAME -o json` against srv (with --stale when
// stale) and parses it. ok is false, with the CLI result, when the command
// fails.
func getObject(t *testing.T, srv string, o objectRef, stale bool) (doc objectDoc, rv uint64, ok bool, r result) {
	t.Helper()
	args := []string{"--server", srv, "get", o.kind, o.name, "-o", "json"}
	if stale {
		args = append(args, "--stale")
	}
	r = cli(t, args...)
	if r.code != 0 {
		return doc, 0, false, r
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("parse JSON of %s: %v\n%s", o, err, r)
	}
	n, err := strconv.ParseUint(doc.Metadata.ResourceVersion.String(), 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("%s: metadata.resourceVersion %q is not a positive integer\n%s", o, doc.Metadata.ResourceVersion, r)
	}
	return doc, n, true, r
}

// getRV is getObject returning only metadata.resourceVersion.
func getRV(t *testing.T, srv string, o objectRef, stale bool) (rv uint64, ok bool, r result) {
	t.Helper()
	_, rv, ok, r = getObject(t, srv, o, stale)
	return rv, ok, r
}

// settle waits until the leader's scheduler has finished writing status for
// objs (a cluster has a health, a mesh's status has observed its current
// generation) and two reads in a row give the same resourceVersions, and
// returns those. Status writes are the control plane's own and bump
// resourceVersion, so tests that compare versions across a restart or a
// restore take them from a settled state.
func settle(t *testing.T, srv string, objs ...objectRef) map[objectRef]uint64 {
	t.Helper()
	var last map[objectRef]uint64
	testkit.Eventually(t, convergeTimeout, "the control plane to finish writing status", func() (bool, string) {
		cur := map[objectRef]uint64{}
		for _, o := range objs {
			doc, rv, ok, r := getObject(t, srv, o, false)
			if !ok {
				return false, r.String()
			}
			switch {
			case o.kind == "cluster" && doc.Status.Health == "":
				return false, o.String() + " has no status.health yet"
			case o.kind == "mesh" && doc.Status.ObservedGeneration != doc.Metadata.Generation:
				return false, fmt.Sprintf("%s: status.observedGeneration %q, metadata.generation %q", o, doc.Status.ObservedGeneration, doc.Metadata.Generation)
			}
			cur[o] = rv
		}
		stable := last != nil && fmt.Sprint(last) == fmt.Sprint(cur)
		last = cur
		return stable, fmt.Sprint(cur)
	})
	return last
}

// waitPeers polls list-peers through srv until it shows exactly the given
// servers, each a voter with its own Raft and gRPC addresses, and one leader.
func waitPeers(t *testing.T, srv string, want ...*server) {
	t.Helper()
	testkit.Eventually(t, convergeTimeout, fmt.Sprintf("list-peers to show %d voters with their addresses", len(want)), func() (bool, string) {
		rows, r := listPeers(t, srv)
		if r.code != 0 {
			return false, r.String()
		}
		if len(rows) != len(want) {
			return false, r.stdout
		}
		leaders := 0
		for _, row := range rows {
			if row["STATE"] == "leader" {
				leaders++
			}
		}
		for _, s := range want {
			found := false
			for _, row := range rows {
				if row["ID"] == s.id {
					found = row["RAFT ADDRESS"] == s.raftAddr && row["GRPC ADDRESS"] == s.grpcAddr && row["VOTER"] == "true"
				}
			}
			if !found {
				return false, r.stdout
			}
		}
		return leaders == 1, r.stdout
	})
}
