//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/internal/testkit"
)

// autoscaleMessages is the burst of the autoscaling run:
// MESHFED_E2E_AUTOSCALE_MESSAGES, else a CI-sized default (the acceptance
// figure is 200,000).
func autoscaleMessages(t *testing.T) int {
	t.Helper()
	s := os.Getenv("MESHFED_E2E_AUTOSCALE_MESSAGES")
	if s == "" {
		return 60000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("MESHFED_E2E_AUTOSCALE_MESSAGES=%q: want a positive integer", s)
	}
	return n
}

// TestAutoscaleBurstEffectivelyOnce: a burst into a 4-partition input makes
// an effectively-once function scale from 1 toward 4 replicas on its
// backlog, and back to 1 once the backlog is gone; partitions move between
// replicas both ways, and every input gives exactly one output.
func TestAutoscaleBurstEffectivelyOnce(t *testing.T) {
	n := autoscaleMessages(t)
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a"}})
	in, out := topicURL("burst-in"), topicURL("burst-out")
	tn, err := utils.GetTopicName(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.admin("a").Topics().Create(*tn, 4); err != nil {
		t.Fatalf("create the 4-partition input: %v", err)
	}
	f.apply(`apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: burst, tenant: public, namespace: default}
spec:
  functions:
    - name: echo
      runtime: {builtin: identity}
      minReplicas: 1
      maxReplicas: 4
      autoscaling: {backlogPerReplica: 1000, interval: 1s, scaleDownStabilization: 5s}
      processingGuarantee: effectively_once
      input: {cluster: a, topics: [` + strconv.Quote(in) + `], subscriptionPosition: earliest}
      output: {cluster: a, topic: ` + strconv.Quote(out) + `}
`)
	f.waitRunning("burst", convergeTimeout, map[string]int{"echo": 1}, nil)

	burst := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); f.produce(in, 0, n, "a") }()

	// The first scale-up.
	var upAt time.Time
	testkit.Eventually(t, drainTimeout(n), "the function to scale up", func() (bool, string) {
		m, err := f.mesh("burst")
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range m.GetStatus().GetScaleEvents() {
			if ev.GetTo() > ev.GetFrom() {
				upAt = ev.GetTime().AsTime()
				return true, ""
			}
		}
		return false, fmt.Sprintf("scale %v", m.GetStatus().GetScale())
	})
	<-done
	produced := time.Now()

	// The backlog drains over every partition; the most replicas seen running.
	most := 1
	var drainedAt time.Time
	testkit.Eventually(t, drainTimeout(n), "the input to be drained", func() (bool, string) {
		if as, err := f.assignments("burst"); err == nil {
			running := 0
			for _, a := range as {
				if a.GetStatus().GetState() == "Running" {
					running++
				}
			}
			most = max(most, running)
		}
		var backlog, unacked int64
		for p := 0; p < 4; p++ {
			st, err := f.brokers["a"].stats(fmt.Sprintf("%s-partition-%d", in, p))
			if err != nil {
				return false, err.Error()
			}
			s := st.Subscriptions[subscription("burst", "echo")]
			backlog += s.MsgBacklog
			unacked += s.UnackedMessages
		}
		if backlog == 0 && unacked == 0 {
			drainedAt = time.Now()
			return true, ""
		}
		return false, fmt.Sprintf("backlog %d, unacked %d, most replicas running %d", backlog, unacked, most)
	})

	// Back to one replica.
	var downAt time.Time
	testkit.Eventually(t, 60*time.Second, "the function to scale back to 1", func() (bool, string) {
		m, err := f.mesh("burst")
		if err != nil {
			return false, err.Error()
		}
		as, err := f.assignments("burst")
		if err != nil {
			return false, err.Error()
		}
		evs := m.GetStatus().GetScaleEvents()
		if m.GetStatus().GetScale()["echo"] == 1 && len(as) == 1 && len(evs) > 0 {
			downAt = evs[len(evs)-1].GetTime().AsTime()
			return true, ""
		}
		return false, fmt.Sprintf("scale %v, %d assignments", m.GetStatus().GetScale(), len(as))
	})

	got := multiset(f.readAll("a", out))
	want := make(map[string]int, n)
	for i := 0; i < n; i++ {
		want[sentence(i)] = 1
	}
	lost, dup, examples := compareWords(want, got)
	m, _ := f.mesh("burst")
	var events []string
	for _, ev := range m.GetStatus().GetScaleEvents() {
		events = append(events, fmt.Sprintf("%s %d->%d (%s)", ev.GetTime().AsTime().Format("15:04:05.000"), ev.GetFrom(), ev.GetTo(), ev.GetReason()))
	}
	t.Logf("autoscale: %d messages into 4 partitions, produced in %s; first scale-up %s after the burst began; most replicas running %d; "+
		"drained %s after the burst began; scale-in %s after the backlog was drained; outputs %d, lost %d, duplicated %d; events: %v",
		n, produced.Sub(burst).Round(time.Millisecond), upAt.Sub(burst).Round(time.Millisecond), most,
		drainedAt.Sub(burst).Round(time.Millisecond), downAt.Sub(drainedAt).Round(time.Millisecond), len(got), lost, dup, events)
	if lost != 0 || dup != 0 {
		t.Fatalf("lost %d, duplicated %d outputs: %s", lost, dup, examples)
	}
	if most < 2 {
		t.Errorf("at most %d replica ran: the function did not scale out", most)
	}
}
