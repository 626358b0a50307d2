//go:build e2e

package e2e

// Helpers for the federation tests (agent_*_test.go, failover_*_test.go):
// brokers and agents as real processes next to the servers that
// main_test.go starts, Pulsar clients to produce and read, a TCP proxy to
// partition an agent from the control plane, and the control plane's API
// for fast polling.

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
)

// messageCount is the number of input messages of the core runs:
// MESHFED_E2E_MESSAGES, else def.
func messageCount(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv("MESHFED_E2E_MESSAGES")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("MESHFED_E2E_MESSAGES=%q: want a positive integer", s)
	}
	return n
}

// drainTimeout is how long a run of n input messages may take to be
// processed completely: generous, as the machine is shared.
func drainTimeout(n int) time.Duration {
	return 90*time.Second + time.Duration(n/50)*time.Second
}

// daemon is one long-running meshfed process other than a server (a broker
// or an agent) that can be killed and started again with the same flags.
type daemon struct {
	t    *testing.T
	name string
	args []string
	// logPath collects stdout and stderr of every start, in order.
	logPath string
	// p is the current or last process; nil before the first start.
	p *proc
}

func (d *daemon) running() bool { return d.p.alive() }

// start starts the process; it does not wait for it to be ready.
func (d *daemon) start() {
	d.t.Helper()
	if d.running() {
		d.t.Fatalf("start %s: already running", d.name)
	}
	d.p = startProc(d.t, d.name, d.logPath, d.args)
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (d *daemon) kill9() {
	d.t.Helper()
	if !d.running() {
		d.t.Fatalf("kill %s: not running", d.name)
	}
	if err := d.p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.t.Fatalf("kill %s: %v", d.name, err)
	}
	<-d.p.done
}

func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(no log for %s: %v)", d.name, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("--- last %d lines of %s (%s) ---\n%s", len(lines), d.name, d.logPath, strings.Join(lines, "\n"))
}

// brokerProc is one `meshfed broker`: a Pulsar cluster of the federation.
type brokerProc struct {
	*daemon
	cluster      string
	listen, http string
}

func (b *brokerProc) serviceURL() string { return "pulsar://" + b.listen }
func (b *brokerProc) adminURL() string   { return "http://" + b.http }

// waitReady polls the admin REST API until it answers.
func (b *brokerProc) waitReady() {
	b.t.Helper()
	testkit.Eventually(b.t, readyTimeout, "broker "+b.cluster+" to answer on its admin API", func() (bool, string) {
		if !b.running() {
			b.t.Fatalf("broker %s exited: %v\n%s", b.cluster, b.p.err, b.logTail())
		}
		hc := http.Client{Timeout: time.Second}
		resp, err := hc.Get(b.adminURL() + "/admin/v2/clusters")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status
		}
		c, err := net.DialTimeout("tcp", b.listen, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// topicStats is the part of the broker's topic stats the tests read.
type topicStats struct {
	MsgInCounter int64 `json:"msgInCounter"`
	Publishers   []struct {
		ProducerName string `json:"producerName"`
		Address      string `json:"address"`
	} `json:"publishers"`
	Subscriptions map[string]struct {
		Type            string `json:"type"`
		MsgBacklog      int64  `json:"msgBacklog"`
		UnackedMessages int64  `json:"unackedMessages"`
		Consumers       []struct {
			ConsumerName string `json:"consumerName"`
			Address      string `json:"address"`
		} `json:"consumers"`
	} `json:"subscriptions"`
}

// stats reads GET /admin/v2/persistent/{tenant}/{ns}/{topic}/stats for a
// topic given as persistent://tenant/ns/topic.
func (b *brokerProc) stats(topic string) (*topicStats, error) {
	path := strings.TrimPrefix(topic, "persistent://")
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(b.adminURL() + "/admin/v2/persistent/" + path + "/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stats of %s on %s: %s %s", topic, b.cluster, resp.Status, strings.TrimSpace(string(body)))
	}
	var st topicStats
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("stats of %s on %s: %w", topic, b.cluster, err)
	}
	return &st, nil
}

// fed is a federation owned by one test: servers, one broker per cluster,
// agents, and clients to reach them. Every process is killed when the test
// ends, and on failure the tail of each log is printed.
type fed struct {
	t       *testing.T
	cp      *cluster
	dir     string
	brokers map[string]*brokerProc
	agents  map[string]*daemon
	// order remembers start order, for log tails.
	order []*daemon
	api   *client.Client
	pc    *pulsarSet
}

// pulsarSet holds the test's Pulsar clients, one per cluster.
type pulsarSet struct {
	// mu guards clients.
	mu      sync.Mutex
	clients map[string]pulsar.Client
}

type fedOptions struct {
	servers     int
	serverFlags []string
	clusters    []string
	// agents per cluster; 0 means one, named agent-<cluster>.
	agentsPerCluster int
	// noAgents: the test starts its agents itself (addAgent).
	noAgents bool
}

// newFed starts the servers, one broker per cluster, defines the clusters,
// tenant public and namespace default, and starts one agent per cluster.
func newFed(t *testing.T, o fedOptions) *fed {
	t.Helper()
	c := newCluster(t)
	f := &fed{t: t, cp: c, dir: c.dir, brokers: map[string]*brokerProc{}, agents: map[string]*daemon{}, pc: &pulsarSet{clients: map[string]pulsar.Client{}}}
	t.Cleanup(func() {
		f.pc.mu.Lock()
		for _, c := range f.pc.clients {
			c.Close()
		}
		f.pc.mu.Unlock()
		if f.api != nil {
			f.api.Close()
		}
		for _, d := range f.order {
			if d.running() {
				d.p.cmd.Process.Kill()
				<-d.p.done
			}
		}
		if t.Failed() {
			for _, d := range f.order {
				t.Log(d.logTail())
			}
		}
	})
	var initial []string
	for i := 1; i <= o.servers; i++ {
		s := c.add(fmt.Sprintf("node%d", i))
		initial = append(initial, s.id+"="+s.raftAddr)
	}
	for _, s := range c.servers {
		s.flags = append([]string{"--initial-cluster", strings.Join(initial, ",")}, o.serverFlags...)
		s.start()
	}
	for _, s := range c.servers {
		s.waitReady()
	}
	leader(t, c.all(), o.servers)
	api, err := client.New(client.ParseAddrs(c.all()), c.dialOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	f.api = api
	var docs []string
	for _, name := range o.clusters {
		b := f.addBroker(name)
		docs = append(docs, fmt.Sprintf(`apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: %s}
spec: {region: region-%s, serviceURL: %q, adminURL: %q}
`, name, name, b.serviceURL(), b.adminURL()))
	}
	docs = append(docs, "apiVersion: meshfed.io/v1\nkind: Tenant\nmetadata: {name: public}\nspec: {admins: [admin]}\n",
		"apiVersion: meshfed.io/v1\nkind: Namespace\nmetadata: {name: default, tenant: public}\nspec: {}\n")
	f.apply(strings.Join(docs, "---\n"))
	per := max(o.agentsPerCluster, 1)
	if o.noAgents {
		per = 0
	}
	for _, name := range o.clusters {
		for i := 1; i <= per; i++ {
			an := "agent-" + name
			if per > 1 {
				an = fmt.Sprintf("agent-%s%d", name, i)
			}
			f.addAgent(an, name, c.all())
		}
	}
	for name := range f.agents {
		f.waitAgentReady(name)
	}
	return f
}

func (f *fed) addBroker(name string) *brokerProc {
	f.t.Helper()
	addrs := freeAddrs(f.t, 2)
	dir := filepath.Join(f.dir, "broker-"+name)
	b := &brokerProc{cluster: name, listen: addrs[0], http: addrs[1]}
	b.daemon = &daemon{t: f.t, name: "broker-" + name, logPath: dir + ".log",
		args: []string{"broker", "--data-dir", dir, "--listen", b.listen, "--http-addr", b.http, "--cluster-name", name, "--deduplication"}}
	f.brokers[name] = b
	f.order = append(f.order, b.daemon)
	b.start()
	b.waitReady()
	return b
}

// addAgent starts an agent of cluster that reaches the control plane at
// servers, with extra agent flags.
func (f *fed) addAgent(name, cluster, servers string, flags ...string) *daemon {
	f.t.Helper()
	dir := filepath.Join(f.dir, name)
	args := append([]string{"agent", "--cluster", cluster, "--name", name, "--server", servers, "--data-dir", dir}, flags...)
	d := &daemon{t: f.t, name: name, logPath: dir + ".log", args: append(args, agentTLSFlags(f.t, cluster, name)...)}
	f.agents[name] = d
	f.order = append(f.order, d)
	d.start()
	return d
}

// srv is the --server value naming every server.
func (f *fed) srv() string { return f.cp.all() }

// apply applies YAML through the CLI, with extra apply flags.
func (f *fed) apply(yaml string, flags ...string) string {
	f.t.Helper()
	file, err := os.CreateTemp(f.dir, "apply-*.yaml")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := file.WriteString(yaml); err != nil {
		f.t.Fatal(err)
	}
	file.Close()
	return mustCLI(f.t, f.srv(), append([]string{"apply", "-f", file.Name()}, flags...)...)
}

// list returns the objects of a kind through the API (a linearizable read;
// retried by the caller's polling when no leader answers).
func (f *fed) list(kind string) ([]*meshfedv1.Object, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.api.List(ctx, &meshfedv1.ListRequest{Kind: kind})
	if err != nil {
		return nil, err
	}
	return resp.GetObjects(), nil
}

// waitAgentReady waits until the control plane shows the agent Ready.
func (f *fed) waitAgentReady(name string) {
	f.t.Helper()
	testkit.Eventually(f.t, readyTimeout, "agent "+name+" to be Ready", func() (bool, string) {
		if d := f.agents[name]; !d.running() {
			f.t.Fatalf("agent %s exited: %v\n%s", name, d.p.err, d.logTail())
		}
		objs, err := f.list(objects.KindAgent)
		if err != nil {
			return false, err.Error()
		}
		for _, o := range objs {
			if a := o.GetAgent(); a.GetMetadata().GetName() == name {
				return a.GetStatus().GetState() == "Ready", "state " + a.GetStatus().GetState()
			}
		}
		return false, "not registered"
	})
}

// assignments returns the assignments of a mesh, by function and index.
func (f *fed) assignments(mesh string) (map[string]*meshfedv1.Assignment, error) {
	objs, err := f.list(objects.KindAssignment)
	if err != nil {
		return nil, err
	}
	out := map[string]*meshfedv1.Assignment{}
	for _, o := range objs {
		a := o.GetAssignment()
		if a.GetSpec().GetMesh() == mesh {
			out[fmt.Sprintf("%s#%d", a.GetSpec().GetFunction(), a.GetSpec().GetIndex())] = a
		}
	}
	return out, nil
}

// describeAssignments renders assignments for failure messages.
func describeAssignments(as map[string]*meshfedv1.Assignment) string {
	keys := make([]string, 0, len(as))
	for k := range as {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		a := as[k]
		fmt.Fprintf(&b, "%s: agent=%q cluster=%s epoch=%d state=%s err=%q; ", k, a.GetSpec().GetAgent(), a.GetSpec().GetCluster(),
			a.GetSpec().GetEpoch(), a.GetStatus().GetState(), a.GetStatus().GetLastError())
	}
	return b.String()
}

// runningIn reports whether every function in want (name → replicas) runs
// exactly that many instances, each Running on an agent of the given
// cluster (any cluster when cluster is "").
func runningIn(as map[string]*meshfedv1.Assignment, want map[string]int, cluster map[string]string) (bool, string) {
	n := map[string]int{}
	for _, a := range as {
		fn := a.GetSpec().GetFunction()
		if a.GetSpec().GetAgent() == "" || a.GetStatus().GetState() != "Running" {
			return false, describeAssignments(as)
		}
		if c := cluster[fn]; c != "" && a.GetSpec().GetCluster() != c {
			return false, describeAssignments(as)
		}
		n[fn]++
	}
	for fn, r := range want {
		if n[fn] != r {
			return false, describeAssignments(as)
		}
	}
	return len(n) == len(want), describeAssignments(as)
}

// waitRunning waits until the mesh's functions run as runningIn describes.
func (f *fed) waitRunning(mesh string, timeout time.Duration, want map[string]int, cluster map[string]string) map[string]*meshfedv1.Assignment {
	f.t.Helper()
	var last map[string]*meshfedv1.Assignment
	testkit.Eventually(f.t, timeout, fmt.Sprintf("mesh %s to run %v in %v", mesh, want, cluster), func() (bool, string) {
		as, err := f.assignments(mesh)
		if err != nil {
			return false, err.Error()
		}
		last = as
		return runningIn(as, want, cluster)
	})
	return last
}

// mesh reads a FunctionMesh through the API.
func (f *fed) mesh(name string) (*meshfedv1.FunctionMesh, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.api.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: "public", Namespace: "default", Name: name})
	if err != nil {
		return nil, err
	}
	return resp.GetObject().GetFunctionMesh(), nil
}

// condition returns a mesh condition's status and message.
func condition(m *meshfedv1.FunctionMesh, typ string) (status, reason, msg string) {
	for _, c := range m.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c.GetStatus(), c.GetReason(), c.GetMessage()
		}
	}
	return "", "", ""
}

// pulsar returns the test's Pulsar client of a cluster.
func (f *fed) pulsar(cluster string) pulsar.Client {
	f.t.Helper()
	f.pc.mu.Lock()
	defer f.pc.mu.Unlock()
	if c, ok := f.pc.clients[cluster]; ok {
		return c
	}
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: f.brokers[cluster].serviceURL(), OperationTimeout: 30 * time.Second,
		ConnectionTimeout: 5 * time.Second, Logger: plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		f.t.Fatalf("pulsar client of %s: %v", cluster, err)
	}
	f.pc.clients[cluster] = c
	return c
}

// dropPulsar forgets the client of a cluster (after its broker was killed).
func (f *fed) dropPulsar(cluster string) {
	f.pc.mu.Lock()
	defer f.pc.mu.Unlock()
	if c, ok := f.pc.clients[cluster]; ok {
		c.Close()
		delete(f.pc.clients, cluster)
	}
}

func topicURL(name string) string { return "persistent://public/default/" + name }

// sentence is input message i: a word only it has and one all share.
func sentence(i int) string { return fmt.Sprintf("M%d, Fox!", i) }

// wordsOf is what word-split makes of sentences [from, to).
func wordsOf(from, to int) map[string]int {
	w := map[string]int{}
	for i := from; i < to; i++ {
		w[fmt.Sprintf("m%d", i)]++
		w["fox"]++
	}
	return w
}

// produce sends sentences [from, to) to topic on each cluster, in order,
// without batching (each message is one entry: the same messages in the
// same order give the same positions on every cluster), and waits until
// every broker confirmed them.
func (f *fed) produce(topic string, from, to int, clusters ...string) {
	f.t.Helper()
	for _, c := range clusters {
		p, err := f.pulsar(c).CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true, MaxPendingMessages: 2000})
		if err != nil {
			f.t.Fatalf("producer for %s on %s: %v", topic, c, err)
		}
		var (
			errMu sync.Mutex
			first error
		)
		for i := from; i < to; i++ {
			p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(sentence(i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
				}
			})
		}
		err = p.Flush()
		p.Close()
		errMu.Lock()
		if err == nil {
			err = first
		}
		errMu.Unlock()
		if err != nil {
			f.t.Fatalf("produce %d messages to %s on %s: %v", to-from, topic, c, err)
		}
	}
}

// streamer produces sentences to one or more clusters in the background at
// a steady pace, so that failures happen mid-stream.
type streamer struct {
	f        *fed
	topic    string
	clusters []string
	from, to int
	perTick  int
	stop     chan struct{}
	done     chan struct{}
	// sent is the number of sentences confirmed on every cluster; guarded by mu.
	mu   sync.Mutex
	sent int
	err  error
}

// startStream produces sentences [from, to), perTick every 10 ms.
func (f *fed) startStream(topic string, from, to, perTick int, clusters ...string) *streamer {
	s := &streamer{f: f, topic: topic, clusters: clusters, from: from, to: to, perTick: perTick, sent: from, stop: make(chan struct{}), done: make(chan struct{})}
	var prods []pulsar.Producer
	for _, c := range clusters {
		p, err := f.pulsar(c).CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true, MaxPendingMessages: 2000})
		if err != nil {
			f.t.Fatalf("producer for %s on %s: %v", topic, c, err)
		}
		prods = append(prods, p)
	}
	go func() {
		defer close(s.done)
		defer func() {
			for _, p := range prods {
				p.Close()
			}
		}()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := from; i < to; {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			end := min(i+perTick, to)
			for ; i < end; i++ {
				for _, p := range prods {
					p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(sentence(i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
						if err != nil {
							s.mu.Lock()
							if s.err == nil {
								s.err = err
							}
							s.mu.Unlock()
						}
					})
				}
			}
			for _, p := range prods {
				if err := p.Flush(); err != nil {
					s.mu.Lock()
					if s.err == nil {
						s.err = err
					}
					s.mu.Unlock()
					return
				}
			}
			s.mu.Lock()
			s.sent = i
			s.mu.Unlock()
		}
	}()
	f.t.Cleanup(func() { s.halt() })
	return s
}

func (s *streamer) progress() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// halt stops the stream early.
func (s *streamer) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// wait waits for the stream to finish and fails the test on a send error.
func (s *streamer) wait(timeout time.Duration) {
	s.f.t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.f.t.Fatalf("producing messages [%d, %d) to %s did not finish within %v (up to %d sent)", s.from, s.to, s.topic, timeout, s.progress())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		s.f.t.Fatalf("produce to %s: %v", s.topic, s.err)
	}
}

// waitAtLeast waits until sentences up to n were sent.
func (s *streamer) waitAtLeast(n int, timeout time.Duration) {
	s.f.t.Helper()
	testkit.Eventually(s.f.t, timeout, fmt.Sprintf("%d messages produced to %s", n, s.topic), func() (bool, string) {
		p := s.progress()
		return p >= n, fmt.Sprintf("%d sent", p)
	})
}

// subscription is the subscription meshfed uses for a function's input.
func subscription(mesh, function string) string {
	return "meshfed-public-default-" + mesh + "-" + function
}

// waitDrained waits until the function's subscription on the cluster's
// input topic has no backlog and nothing unacknowledged: every input was
// processed and (acks follow confirmed sends) every output is stored.
func (f *fed) waitDrained(cluster, topic, sub string, timeout time.Duration) {
	f.t.Helper()
	testkit.Eventually(f.t, timeout, fmt.Sprintf("subscription %s on %s/%s to be drained", sub, cluster, topic), func() (bool, string) {
		st, err := f.brokers[cluster].stats(topic)
		if err != nil {
			return false, err.Error()
		}
		s, ok := st.Subscriptions[sub]
		if !ok {
			return false, "no such subscription"
		}
		return s.MsgBacklog == 0 && s.UnackedMessages == 0, fmt.Sprintf("backlog %d, unacked %d", s.MsgBacklog, s.UnackedMessages)
	})
}

// readAll reads a topic from its first message to its last.
func (f *fed) readAll(cluster, topic string) []string {
	f.t.Helper()
	r, err := f.pulsar(cluster).CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 5000})
	if err != nil {
		f.t.Fatalf("reader of %s on %s: %v", topic, cluster, err)
	}
	defer r.Close()
	var out []string
	deadline := time.Now().Add(2 * time.Minute)
	for r.HasNext() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			f.t.Fatalf("read %s on %s after %d messages: %v", topic, cluster, len(out), err)
		}
		out = append(out, string(m.Payload()))
	}
	return out
}

// multiset counts payloads.
func multiset(payloads []string) map[string]int {
	m := make(map[string]int, len(payloads))
	for _, p := range payloads {
		m[p]++
	}
	return m
}

// compareWords returns how many expected words are missing from got, how
// many extra copies got holds, and a few examples of each.
func compareWords(want, got map[string]int) (lost, dup int, examples string) {
	var ex []string
	for w, n := range want {
		if g := got[w]; g < n {
			lost += n - g
			if len(ex) < 5 {
				ex = append(ex, fmt.Sprintf("%s: want %d, got %d", w, n, g))
			}
		}
	}
	for w, g := range got {
		if n := want[w]; g > n {
			dup += g - n
			if len(ex) < 10 {
				ex = append(ex, fmt.Sprintf("%s: want %d, got %d", w, n, g))
			}
		}
	}
	return lost, dup, strings.Join(ex, "; ")
}

// maxCount returns the highest count word-count emitted for word ("word n").
func maxCount(payloads []string, word string) int {
	best := 0
	for _, p := range payloads {
		w, n, ok := strings.Cut(p, " ")
		if !ok || w != word {
			continue
		}
		if v, err := strconv.Atoi(n); err == nil && v > best {
			best = v
		}
	}
	return best
}

// tcpProxy forwards connections from its address to a target until cut;
// heal listens again on the same address.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string

	// mu guards lis and conns.
	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, addr: freeAddrs(t, 1)[0], target: target, conns: map[net.Conn]bool{}}
	p.heal()
	t.Cleanup(p.cut)
	return p
}

// heal starts accepting connections again.
func (p *tcpProxy) heal() {
	p.t.Helper()
	var lis net.Listener
	var err error
	// The port may linger for a moment after cut.
	testkit.Eventually(p.t, 10*time.Second, "proxy to listen on "+p.addr, func() (bool, string) {
		lis, err = net.Listen("tcp", p.addr)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis == nil {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) forward(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in) || !p.track(out) {
		in.Close()
		out.Close()
		return
	}
	go func() { io.Copy(out, in); out.Close(); in.Close() }()
	io.Copy(in, out)
	in.Close()
	out.Close()
}

// cut closes the listener and every open connection: the other side sees
// its connections drop and new ones refused.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// buildWasmSplit compiles examples/wasm/wordsplit for wasip1 and returns the module path.
func buildWasmSplit(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "split.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./examples/wasm/wordsplit")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the wasm example: %v\n%s", err, b)
	}
	return out
}

// pythonBundle writes a tar.gz holding examples/exec/<script> and the
// Python SDK.
func pythonBundle(t *testing.T, script string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(script, ".py")+".tar.gz")
	file, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	zw := gzip.NewWriter(file)
	tw := tar.NewWriter(zw)
	for name, src := range map[string]string{script: "../examples/exec/" + script, "meshfed_function.py": "../sdk/python/meshfed_function.py"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pushPackage uploads a file with `meshfed package push` and returns its digest.
func (f *fed) pushPackage(path string) string {
	f.t.Helper()
	out := strings.TrimSpace(mustCLI(f.t, f.srv(), "package", "push", path))
	if !strings.HasPrefix(out, "sha256:") {
		f.t.Fatalf("package push %s printed %q, want a sha256: digest", path, out)
	}
	return out
}

// meshFn describes one function of a test mesh.
type meshFn struct {
	name, runtime, guarantee string
	replicas                 int
	inCluster, inTopic       string
	outCluster, outTopic     string
	failover                 []string
}

// meshYAML renders a FunctionMesh. runtime is YAML for spec.functions[].runtime.
func meshYAML(name string, fns ...meshFn) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: meshfed.io/v1\nkind: FunctionMesh\nmetadata: {name: %s, tenant: public, namespace: default}\nspec:\n  functions:\n", name)
	for _, fn := range fns {
		fmt.Fprintf(&b, "    - name: %s\n      runtime: %s\n      replicas: %d\n", fn.name, fn.runtime, max(fn.replicas, 1))
		if fn.guarantee != "" {
			fmt.Fprintf(&b, "      processingGuarantee: %s\n", fn.guarantee)
		}
		fmt.Fprintf(&b, "      input: {cluster: %s, topics: [%q], subscriptionPosition: earliest}\n", fn.inCluster, fn.inTopic)
		fmt.Fprintf(&b, "      output: {cluster: %s, topic: %q}\n", fn.outCluster, fn.outTopic)
		if len(fn.failover) > 0 {
			fmt.Fprintf(&b, "      failover: {clusters: [%s], failback: auto}\n", strings.Join(fn.failover, ", "))
		}
	}
	return b.String()
}
