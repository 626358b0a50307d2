//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

// TestExecMemoryLimit: issue 13's acceptance for resource enforcement.
// Two exec functions (examples/exec/memhog.py) run on the same agent with
// 64Mi of memory each. "hog" is asked to allocate 512 MiB: under a cgroup
// the kernel kills it and it is reported OOMKilled with an OOM kill
// counted; under rlimits its allocation fails and the message fails. All
// the while "steady" keeps processing its stream, with no restart. After a
// normal message hog runs again, its restart counted. `describe mesh`
// shows the state and the counters. It runs with the agent's --limits
// auto (the best this host offers) and rlimit.
func TestExecMemoryLimit(t *testing.T) {
	for _, limits := range []string{"auto", "rlimit"} {
		t.Run(limits, func(t *testing.T) { testExecMemoryLimit(t, limits) })
	}
}

func testExecMemoryLimit(t *testing.T, limits string) {
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a"}, noAgents: true})
	f.addAgent("agent-a", "a", f.srv(), "--limits", limits)
	f.waitAgentReady("agent-a")
	agents, err := f.list("Agent")
	if err != nil || len(agents) != 1 {
		t.Fatalf("agents: %v %v", agents, err)
	}
	mech := agents[0].GetAgent().GetSpec().GetLimits()
	t.Logf("agent-a enforces limits with %q", mech)
	cgroup := mech == "cgroup1" || mech == "cgroup2"
	if !cgroup && mech != "rlimit" {
		t.Fatalf("agent-a reports limits %q: want cgroup2, cgroup1 or rlimit on Linux", mech)
	}
	if limits == "rlimit" && mech != "rlimit" {
		t.Fatalf("agent-a started with --limits rlimit reports %q", mech)
	}
	if limits == "auto" && !cgroup && os.Getenv("MESHFED_REQUIRE_CGROUPS") == "1" {
		t.Fatalf("agent-a enforces limits with %s, and MESHFED_REQUIRE_CGROUPS=1", mech)
	}
	bundle := f.pushPackage(pythonBundle(t, "memhog.py"))
	fn := func(name string) string {
		return fmt.Sprintf(`    - name: %s
      runtime: {exec: {package: %q, command: [python3, memhog.py]}}
      resources: {cpu: 500m, memory: 64Mi}
      input: {cluster: a, topics: [%q], subscriptionPosition: earliest}
      output: {cluster: a, topic: %q}
`, name, bundle, topicURL("lim-"+name+"-in"), topicURL("lim-"+name+"-out"))
	}
	f.apply("apiVersion: meshfed.io/v1\nkind: FunctionMesh\nmetadata: {name: lim, tenant: public, namespace: default}\nspec:\n  functions:\n" +
		fn("hog") + fn("steady"))
	f.waitRunning("lim", convergeTimeout, map[string]int{"hog": 1, "steady": 1}, map[string]string{"hog": "a", "steady": "a"})

	// steady gets a stream of 3,000 messages over about 3 s.
	const streamed = 3000
	s := f.startStream(topicURL("lim-steady-in"), 0, streamed, 10, "a")
	s.waitAtLeast(300, convergeTimeout)
	f.produceText("a", topicURL("lim-hog-in"), "grow 512")

	var hog, steady *meshfedv1.InstanceStatus
	read := func() string {
		m, err := f.mesh("lim")
		if err != nil {
			return err.Error()
		}
		hog, steady = nil, nil
		for _, fs := range m.GetStatus().GetFunctions() {
			for _, in := range fs.GetInstances() {
				switch fs.GetName() {
				case "hog":
					hog = in
				case "steady":
					steady = in
				}
			}
		}
		return fmt.Sprintf("hog %v; steady %v", hog, steady)
	}
	start := time.Now()
	testkit.Eventually(t, convergeTimeout, "hog's allocation to be refused", func() (bool, string) {
		st := read()
		if cgroup {
			return hog.GetState() == federation.StateOOMKilled && hog.GetOomKills() >= 1, st
		}
		return hog.GetFailed() >= 1 && strings.Contains(hog.GetLastError(), "MemoryError"), st
	})
	t.Logf("%s: hog refused %v after its grow message: state %s, oom_kills %d, restarts %d, limits %s, last error %q",
		mech, time.Since(start).Round(time.Millisecond), hog.GetState(), hog.GetOomKills(), hog.GetRestarts(), hog.GetLimits(), hog.GetLastError())
	if hog.GetLimits() != mech {
		t.Errorf("hog reports limits %q, want the agent's %q", hog.GetLimits(), mech)
	}
	if cgroup && !strings.Contains(hog.GetLastError(), "OOM killer") {
		t.Errorf("hog's last error does not name the OOM killer: %q", hog.GetLastError())
	}
	atKill := steady.GetProcessed()

	if cgroup {
		out := mustCLI(t, f.srv(), "describe", "mesh", "lim")
		if !strings.Contains(out, "OOMKilled") || !strings.Contains(out, "OOMKILLS") || !strings.Contains(out, "RESTARTS") {
			t.Errorf("describe mesh does not show hog OOMKilled with its counters:\n%s", out)
		}
		t.Logf("describe mesh lim:\n%s", out)
	}

	// The neighbour was never touched and processes its whole stream.
	s.wait(drainTimeout(streamed))
	testkit.Eventually(t, drainTimeout(streamed), "steady to process its whole stream", func() (bool, string) {
		st := read()
		return steady.GetProcessed() >= streamed, st
	})
	if steady.GetState() != federation.StateRunning || steady.GetRestarts() != 0 || steady.GetOomKills() != 0 || steady.GetFailed() != 0 {
		t.Errorf("steady was affected: %v", steady)
	}
	t.Logf("steady: %d processed at hog's refusal, %d in all, state %s, restarts %d", atKill, steady.GetProcessed(), steady.GetState(), steady.GetRestarts())
	if got := len(f.readAll("a", topicURL("lim-steady-out"))); got < streamed {
		t.Errorf("steady wrote %d outputs, want %d", got, streamed)
	}

	// hog runs again with its next message.
	f.produceText("a", topicURL("lim-hog-in"), "hello")
	testkit.Eventually(t, convergeTimeout, "hog to process a normal message again", func() (bool, string) {
		st := read()
		return hog.GetState() == federation.StateRunning && hog.GetProcessed() >= 1, st
	})
	if cgroup && hog.GetRestarts() < 1 {
		t.Errorf("hog restarted after an OOM kill, but reports %d restarts", hog.GetRestarts())
	}
	t.Logf("hog after a normal message: state %s, processed %d, restarts %d, oom_kills %d", hog.GetState(), hog.GetProcessed(), hog.GetRestarts(), hog.GetOomKills())
}

// produceText sends one message to topic on cluster.
func (f *fed) produceText(cluster, topic, text string) {
	f.t.Helper()
	p, err := f.pulsar(cluster).CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		f.t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(text)}); err != nil {
		f.t.Fatal(err)
	}
}
