//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

// TestAutoscaleCPUEffectivelyOnce: an exec function that spends CPU on
// every message (examples/exec/burn.py), requesting 100m, scales on CPU
// alone (cpuUtilization 70, no backlog target) from 1 toward 3 replicas
// while a steady stream feeds its 4-partition input, and back to 1 once
// the stream stops; the scale-up's reason names CPU, and every input gives
// exactly one output (effectively_once). Under a cgroup the agent holds
// each instance to its 100m, so one replica's use caps at 100% of its
// request, still above the 70% target.
// MESHFED_E2E_AUTOSCALE_CPU_LIMITS sets the agent's --limits (default auto).
func TestAutoscaleCPUEffectivelyOnce(t *testing.T) {
	const (
		// messages are streamed one every 10 ms at most: 12 s of load, longer
		// on a busy machine.
		messages = 1200
		loadFor  = 12 * time.Second
		// burnMsec is the CPU each message costs: at 100 messages a second
		// 200m and the exchange with the agent, above one replica's 100m.
		burnMsec = "2"
	)
	// The agent's --limits: MESHFED_E2E_AUTOSCALE_CPU_LIMITS, else auto
	// (none shows the CPU an instance uses unthrottled).
	lim := os.Getenv("MESHFED_E2E_AUTOSCALE_CPU_LIMITS")
	if lim == "" {
		lim = "auto"
	}
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a"}, noAgents: true})
	f.addAgent("agent-a", "a", f.srv(), "--limits", lim)
	f.waitAgentReady("agent-a")
	agents, err := f.list("Agent")
	if err != nil || len(agents) != 1 {
		t.Fatalf("agents: %v %v", agents, err)
	}
	mech := agents[0].GetAgent().GetSpec().GetLimits()
	in, out := topicURL("cpu-in"), topicURL("cpu-out")
	tn, err := utils.GetTopicName(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.admin("a").Topics().Create(*tn, 4); err != nil {
		t.Fatalf("create the 4-partition input: %v", err)
	}
	bundle := f.pushPackage(pythonBundle(t, "burn.py"))
	f.apply(`apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: cpu, tenant: public, namespace: default}
spec:
  functions:
    - name: burn
      runtime: {exec: {package: ` + strconv.Quote(bundle) + `, command: [python3, burn.py]}}
      config: {burnMillis: ` + burnMsec + `}
      resources: {cpu: 100m}
      minReplicas: 1
      maxReplicas: 3
      autoscaling: {cpuUtilization: 70, interval: 1s, scaleDownStabilization: 4s}
      processingGuarantee: effectively_once
      input: {cluster: a, topics: [` + strconv.Quote(in) + `], subscriptionPosition: earliest}
      output: {cluster: a, topic: ` + strconv.Quote(out) + `}
`)
	f.waitRunning("cpu", convergeTimeout, map[string]int{"burn": 1}, nil)

	loadStart := time.Now()
	s := f.startStream(in, 0, messages, 1, "a")
	// A trace of the replicas' CPU reports every half second, logged at the end.
	var trace []string
	stopTrace, traced := make(chan struct{}), make(chan struct{})
	endTrace := sync.OnceFunc(func() { close(stopTrace); <-traced })
	t.Cleanup(endTrace)
	go func() {
		defer close(traced)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTrace:
				return
			case <-tick.C:
			}
			if m, err := f.mesh("cpu"); err == nil {
				trace = append(trace, fmt.Sprintf("%s sent %d scale %v %s", time.Now().UTC().Format("15:04:05.000"),
					s.progress(), m.GetStatus().GetScale(), cpuOf(m.GetStatus().GetFunctions())))
			}
		}
	}()

	// The first scale-up, on CPU.
	var upAt time.Time
	var upReason string
	most := 1
	running := func() int {
		as, err := f.assignments("cpu")
		if err != nil {
			return 0
		}
		n := 0
		for _, a := range as {
			if a.GetStatus().GetState() == federation.StateRunning {
				n++
			}
		}
		most = max(most, n)
		return n
	}
	testkit.Eventually(t, loadFor+convergeTimeout, "the function to scale up on CPU", func() (bool, string) {
		running()
		m, err := f.mesh("cpu")
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range m.GetStatus().GetScaleEvents() {
			if ev.GetTo() > ev.GetFrom() {
				upAt, upReason = ev.GetTime().AsTime(), ev.GetReason()
				return true, ""
			}
		}
		return false, fmt.Sprintf("scale %v, instances %s", m.GetStatus().GetScale(), cpuOf(m.GetStatus().GetFunctions()))
	})
	if !strings.Contains(upReason, "cpu ") {
		t.Errorf("the scale-up's reason does not name CPU: %q", upReason)
	}

	// The load runs its course; the most replicas seen running.
	testkit.Eventually(t, loadFor+convergeTimeout, "the stream to finish", func() (bool, string) {
		running()
		select {
		case <-s.done:
			return true, ""
		default:
			return false, fmt.Sprintf("%d sent", s.progress())
		}
	})
	s.wait(time.Second)
	loadStop := time.Now()
	n := s.progress()

	// Back to one replica once the input is processed.
	var downAt time.Time
	var downReason string
	testkit.Eventually(t, 60*time.Second, "the function to scale back to 1", func() (bool, string) {
		running()
		m, err := f.mesh("cpu")
		if err != nil {
			return false, err.Error()
		}
		as, err := f.assignments("cpu")
		if err != nil {
			return false, err.Error()
		}
		evs := m.GetStatus().GetScaleEvents()
		if m.GetStatus().GetScale()["burn"] == 1 && len(as) == 1 && len(evs) > 0 && evs[len(evs)-1].GetTo() == 1 {
			downAt, downReason = evs[len(evs)-1].GetTime().AsTime(), evs[len(evs)-1].GetReason()
			return true, ""
		}
		return false, fmt.Sprintf("scale %v, %d assignments, instances %s", m.GetStatus().GetScale(), len(as), cpuOf(m.GetStatus().GetFunctions()))
	})
	f.waitDrained("a", in, subscription("cpu", "burn"), drainTimeout(n))

	got := multiset(f.readAll("a", out))
	want := make(map[string]int, n)
	for i := 0; i < n; i++ {
		want[sentence(i)] = 1
	}
	lost, dup, examples := compareWords(want, got)
	m, _ := f.mesh("cpu")
	var events []string
	var firstDownAt time.Time
	for _, ev := range m.GetStatus().GetScaleEvents() {
		if ev.GetTo() < ev.GetFrom() && firstDownAt.IsZero() {
			firstDownAt = ev.GetTime().AsTime()
		}
		events = append(events, fmt.Sprintf("%s %d->%d (%s)", ev.GetTime().AsTime().Format("15:04:05.000"), ev.GetFrom(), ev.GetTo(), ev.GetReason()))
	}
	t.Logf("autoscale on CPU (limits %s): %d messages into 4 partitions over %s, %sms of CPU each; load began %s, stopped %s; "+
		"first scale-up %s after the load began (%s); most replicas running %d; first scale-in %s and back to 1 replica %s after the load stopped (%s); "+
		"outputs %d, lost %d, duplicated %d; events: %v",
		mech, n, loadStop.Sub(loadStart).Round(time.Millisecond), burnMsec, loadStart.UTC().Format("15:04:05.000"), loadStop.UTC().Format("15:04:05.000"),
		upAt.Sub(loadStart).Round(time.Millisecond), upReason, most,
		firstDownAt.Sub(loadStop).Round(time.Millisecond), downAt.Sub(loadStop).Round(time.Millisecond), downReason,
		len(got), lost, dup, events)
	endTrace()
	t.Log("replicas' CPU every 0.5 s:\n" + strings.Join(trace, "\n"))
	if lost != 0 || dup != 0 {
		t.Fatalf("lost %d, duplicated %d outputs: %s", lost, dup, examples)
	}
	if most < 2 {
		t.Errorf("at most %d replica ran: the function did not scale out", most)
	}
}

// cpuOf summarises the functions' instances: state and CPU reported.
func cpuOf(fns []*meshfedv1.FunctionStatus) string {
	var parts []string
	for _, fs := range fns {
		for _, in := range fs.GetInstances() {
			parts = append(parts, fmt.Sprintf("%s/%d %s %dm", fs.GetName(), in.GetIndex(), in.GetState(), in.GetCpuMillis()))
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
