package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

func quiet() *slog.Logger {
	if os.Getenv("MESHFED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// federation is an in-process control plane and one broker per cluster name.
type testFed struct {
	srv     *controlplane.Server
	brokers map[string]*broker.Broker
}

func newFederation(t testing.TB, clusters ...string) *testFed {
	t.Helper()
	return newFederationWith(t, nil, clusters...)
}

// newFederationWith is newFederation with the control plane's config
// adjusted by cfg (nil: unchanged).
func newFederationWith(t testing.TB, cfg func(*controlplane.Config), clusters ...string) *testFed {
	t.Helper()
	srv := controlplane.TestServer(t, func(c *controlplane.Config) {
		c.AgentLease = 2 * time.Second
		c.AgentTTL = 3 * time.Second
		c.HeartbeatInterval = 200 * time.Millisecond
		c.SchedulerInterval = 200 * time.Millisecond
		// Tests read counters from the store, not through the leader's
		// reads that overlay the newest ones.
		c.CounterWriteInterval = 100 * time.Millisecond
		if cfg != nil {
			cfg(c)
		}
	})
	controlplane.WaitForLeader(t, srv)
	f := &testFed{srv: srv, brokers: map[string]*broker.Broker{}}
	var objs []*meshfedv1.Object
	for _, name := range clusters {
		b := broker.TestBroker(t, func(c *broker.Config) { c.ClusterName, c.DeduplicationDefault, c.Logger = name, true, quiet() })
		f.brokers[name] = b
		objs = append(objs, objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: name},
			Spec: &meshfedv1.ClusterSpec{ServiceUrl: b.ServiceURL(), AdminUrl: b.AdminURL()}}))
	}
	objs = append(objs,
		objects.Wrap(&meshfedv1.Tenant{Metadata: &meshfedv1.ObjectMeta{Name: "public"}}),
		objects.Wrap(&meshfedv1.Namespace{Metadata: &meshfedv1.ObjectMeta{Name: "default", Tenant: "public"}}))
	f.apply(t, objs...)
	return f
}

func (f *testFed) apply(t testing.TB, objs ...*meshfedv1.Object) {
	t.Helper()
	c, _ := controlplane.TestClient(t, f.srv.GRPCAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs}); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// startAgent runs an agent until the returned stop function is called.
func (f *testFed) startAgent(t testing.TB, name, cluster, dataDir string) (stop func()) {
	t.Helper()
	return f.startAgentWith(t, name, cluster, dataDir, nil)
}

// startAgentWith is startAgent with the agent's config adjusted by cfg
// (nil: unchanged).
func (f *testFed) startAgentWith(t testing.TB, name, cluster, dataDir string, cfg func(*Config)) (stop func()) {
	t.Helper()
	c := Config{Name: name, Cluster: cluster, Servers: []string{f.srv.GRPCAddr()}, DataDir: dataDir,
		ReportInterval: 200 * time.Millisecond, Logger: quiet().With("agent", name)}
	if cfg != nil {
		cfg(&c)
	}
	_, stop = runAgent(t, c)
	return stop
}

// runAgent runs an agent configured by c until the test ends or stop is
// called.
func runAgent(t testing.TB, c Config) (a *Agent, stop func()) {
	t.Helper()
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return a, stop
}

func pulsarClient(t testing.TB, b *broker.Broker) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.ServiceURL(), OperationTimeout: 10 * time.Second,
		Logger: plog.NewLoggerWithSlog(quiet())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func meshObj(name string, fns ...*meshfedv1.FunctionSpec) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: name, Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: fns}})
}

func builtinFn(name, builtin, inCluster, inTopic, outCluster, outTopic, guarantee string) *meshfedv1.FunctionSpec {
	return &meshfedv1.FunctionSpec{Name: name, Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: builtin}},
		ProcessingGuarantee: guarantee,
		Input:               &meshfedv1.FunctionInput{Cluster: inCluster, Topics: []string{inTopic}, SubscriptionPosition: "earliest"},
		Output:              &meshfedv1.FunctionOutput{Cluster: outCluster, Topic: outTopic}}
}

// produce sends n messages "msg-<i>" to topic.
func produce(t *testing.T, c pulsar.Client, topic string, from, n int) {
	t.Helper()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := from; i < from+n; i++ {
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("msg-%d", i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
}

// drain reads payloads from topic (from the earliest message) until want
// distinct payloads arrived or the deadline passes; it returns every payload
// read, duplicates included, after a short quiet period.
func drain(t *testing.T, c pulsar.Client, topic string, want int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	for _, m := range drainMessages(t, c, topic, want, timeout) {
		got = append(got, string(m.Payload()))
	}
	return got
}

func TestInstanceReadsClusterAWritesClusterB(t *testing.T) {
	f := newFederation(t, "a", "b")
	f.startAgent(t, "agent-a", "a", t.TempDir())
	f.apply(t, meshObj("m", builtinFn("excl", "exclamation", "a", "persistent://public/default/in", "b", "persistent://public/default/out", "atleast_once")))
	ca, cb := pulsarClient(t, f.brokers["a"]), pulsarClient(t, f.brokers["b"])
	produce(t, ca, "persistent://public/default/in", 0, 200)
	got := drain(t, cb, "persistent://public/default/out", 200, 30*time.Second)
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for i := 0; i < 200; i++ {
		if !seen[fmt.Sprintf("msg-%d!", i)] {
			t.Fatalf("msg-%d! missing from cluster b output (%d messages read)", i, len(got))
		}
	}
	// The mesh reports Ready with the instance's counters.
	controlplane.WaitFor(t, 10*time.Second, func() error {
		o, _, err := f.srv.State().Get("FunctionMesh", "public", "default", "m")
		if err != nil {
			return err
		}
		st := o.GetFunctionMesh().GetStatus()
		for _, c := range st.GetConditions() {
			if c.GetType() == "Ready" && c.GetStatus() == "True" && st.GetFunctions()[0].GetInstances()[0].GetProcessed() >= 200 {
				return nil
			}
		}
		return fmt.Errorf("mesh status %v", st)
	})
}

func TestEffectivelyOnceSurvivesAgentRestart(t *testing.T) {
	f := newFederation(t, "a", "b")
	dir := t.TempDir()
	stop := f.startAgent(t, "agent-a", "a", dir)
	f.apply(t, meshObj("m", builtinFn("split", "word-split", "a", "persistent://public/default/sentences", "b", "persistent://public/default/words", "effectively_once")))
	ca, cb := pulsarClient(t, f.brokers["a"]), pulsarClient(t, f.brokers["b"])
	p, err := ca.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/sentences"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("w%da w%db w%dc", i, i, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 100)
	drain(t, cb, "persistent://public/default/words", 150, 20*time.Second) // wait until processing is under way
	stop()
	send(100, 100)
	f.startAgent(t, "agent-a", "a", dir)
	got := drain(t, cb, "persistent://public/default/words", 600, 30*time.Second)
	counts := map[string]int{}
	for _, g := range got {
		counts[g]++
	}
	var dups []string
	for w, n := range counts {
		if n > 1 {
			dups = append(dups, w)
		}
	}
	sort.Strings(dups)
	if len(counts) != 600 || len(dups) > 0 {
		t.Fatalf("%d distinct words (want 600), %d duplicated: %s", len(counts), len(dups), strings.Join(dups[:min(len(dups), 10)], " "))
	}
}

func TestStatefulWordCountKeepsStateAcrossRestart(t *testing.T) {
	f := newFederation(t, "a")
	dir := t.TempDir()
	stop := f.startAgent(t, "agent-a", "a", dir)
	f.apply(t, meshObj("wc", builtinFn("count", "word-count", "a", "persistent://public/default/w", "a", "persistent://public/default/c", "atleast_once")))
	c := pulsarClient(t, f.brokers["a"])
	pr, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/w"})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for i := 0; i < 3; i++ {
		if _, err := pr.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("apple")}); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, c, "persistent://public/default/c", 3, 20*time.Second)
	stop()
	f.startAgent(t, "agent-a", "a", dir)
	if _, err := pr.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("apple")}); err != nil {
		t.Fatal(err)
	}
	got := drain(t, c, "persistent://public/default/c", 4, 20*time.Second)
	if len(got) == 0 || got[len(got)-1] != "apple 4" {
		t.Fatalf("counts after restart: %v (want the last to be \"apple 4\")", got)
	}
}

func TestDrainStartsTheReplacementBeforeStoppingTheOriginal(t *testing.T) {
	f := newFederation(t, "a", "c")
	start := func(name, cluster string) *Agent {
		a, _ := runAgent(t, Config{Name: name, Cluster: cluster, Servers: []string{f.srv.GRPCAddr()}, DataDir: t.TempDir(),
			ReportInterval: 100 * time.Millisecond, Logger: quiet()})
		return a
	}
	agentA := start("agent-a", "a")
	agentC := start("agent-c", "c")
	fn := builtinFn("f", "identity", "a", "persistent://public/default/in", "a", "persistent://public/default/out", "atleast_once")
	fn.Failover = &meshfedv1.Failover{Clusters: []string{"c"}}
	f.apply(t, meshObj("m", fn))
	key := objects.Key("Assignment", "public", "default", "m.f.0")
	running := func(a *Agent) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		inst := a.running[key]
		return inst != nil && inst.status().GetState() == "Running"
	}
	controlplane.WaitFor(t, 20*time.Second, func() error {
		if !running(agentA) {
			return fmt.Errorf("instance not running on agent-a")
		}
		return nil
	})
	// Cordon a: a drain.
	o, _, err := f.srv.State().Get("Cluster", "", "", "a")
	if err != nil {
		t.Fatal(err)
	}
	cl := proto.Clone(o.GetCluster()).(*meshfedv1.Cluster)
	cl.Spec.Cordoned = true
	f.apply(t, objects.Wrap(cl))
	overlap := false
	controlplane.WaitFor(t, 30*time.Second, func() error {
		asg, _, err := f.srv.State().Get("Assignment", "public", "default", "m.f.0")
		if err != nil {
			return err
		}
		onC := running(agentC) && asg.GetAssignment().GetSpec().GetAgent() == "agent-c"
		stillA := running(agentA)
		if onC && stillA {
			overlap = true
		}
		onC = onC && asg.GetAssignment().GetStatus().GetState() == "Running"
		if onC && !stillA {
			return nil
		}
		return fmt.Errorf("replacement running on c: %v, original still on a: %v", onC, stillA)
	})
	if !overlap {
		t.Fatal("the original stopped before its replacement ran (break before make)")
	}
}

func TestEffectivelyOnceTurnsOnBrokerDeduplication(t *testing.T) {
	f := newFederation(t, "a")
	admin := f.brokers["a"].AdminURL() + "/admin/v2/namespaces/public/other/deduplication"
	dedup := func() string {
		resp, err := http.Get(admin)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	// The output namespace exists with de-duplication explicitly off.
	create, _ := http.NewRequest(http.MethodPut, f.brokers["a"].AdminURL()+"/admin/v2/namespaces/public/other", nil)
	resp, err := http.DefaultClient.Do(create)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("create namespace: %s", resp.Status)
	}
	resp, err = http.Post(admin, "application/json", strings.NewReader("false"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := dedup(); resp.StatusCode/100 != 2 || strings.Contains(got, "true") {
		t.Fatalf("turning de-duplication off: %s, now %s", resp.Status, got)
	}
	f.startAgent(t, "agent-a", "a", t.TempDir())
	f.apply(t, meshObj("m", builtinFn("f", "identity", "a", "persistent://public/default/in", "a", "persistent://public/other/out", "effectively_once")))
	c := pulsarClient(t, f.brokers["a"])
	produce(t, c, "persistent://public/default/in", 0, 1)
	drain(t, c, "persistent://public/other/out", 1, 20*time.Second)
	if got := dedup(); !strings.Contains(got, "true") {
		t.Fatalf("de-duplication of the output namespace after an effectively-once instance ran: %s", got)
	}
}

// An output namespace the broker does not know yet — another tenant's, as in
// the federated-learning case — is created by the instance's first producer:
// de-duplication must be turned on for it as well, before the first write.
func TestEffectivelyOnceTurnsOnDeduplicationOfANewOutputNamespace(t *testing.T) {
	f := newFederation(t, "a")
	policy := f.brokers["a"].AdminURL() + "/admin/v2/namespaces/public/fresh"
	f.startAgent(t, "agent-a", "a", t.TempDir())
	f.apply(t, meshObj("m", builtinFn("f", "identity", "a", "persistent://public/default/in", "a", "persistent://public/fresh/out", "effectively_once")))
	produce(t, pulsarClient(t, f.brokers["a"]), "persistent://public/default/in", 0, 1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got struct {
			Dedup *bool `json:"deduplicationEnabled"`
		}
		resp, err := http.Get(policy)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("policies of public/fresh: %v: %s", err, b)
			}
			if got.Dedup != nil && *got.Dedup {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("policies of public/fresh after an effectively-once instance wrote there: %s %s; want deduplicationEnabled true", resp.Status, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
