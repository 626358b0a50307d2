//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
)

// stateWords is the number of distinct words the state run counts.
const stateWords = 50

// stateWord is input i of the state run.
func stateWord(i int) string { return fmt.Sprintf("w%d", i%stateWords) }

// TestEffectivelyOnceStateWithAgentKills runs the builtin word-count
// effectively once on three servers, produces n words at a steady pace,
// SIGKILLs the agent running it twice mid-stream (restarting it each time)
// and requires every counter in the function's state to equal exactly the
// number of times its word was sent, and every count to be emitted exactly
// once: a state commit whose acknowledgement died with the agent is not
// applied again when its inputs come back. MESHFED_E2E_MESSAGES sets n
// (default 5,000).
func TestEffectivelyOnceStateWithAgentKills(t *testing.T) {
	n := messageCount(t, 5000)
	f := newFed(t, fedOptions{servers: 3, clusters: []string{"a"}})
	mesh := "stateeo"
	count := meshFn{name: "count", runtime: "{builtin: word-count}", guarantee: "effectively_once",
		inCluster: "a", inTopic: topicURL(mesh + "-words"), outCluster: "a", outTopic: topicURL(mesh + "-counts")}
	f.apply(meshYAML(mesh, count))
	f.waitRunning(mesh, convergeTimeout, map[string]int{"count": 1}, map[string]string{"count": "a"})
	start := time.Now()
	s := f.streamWords(count.inTopic, n, max(n/500, 1))
	agent := f.agents["agent-a"]
	for k, at := range []int{n * 3 / 10, n * 6 / 10} {
		s.waitAtLeast(at, drainTimeout(n))
		testkit.Eventually(t, convergeTimeout, "count to write counts", func() (bool, string) {
			st, err := f.brokers["a"].stats(count.outTopic)
			if err != nil {
				return false, err.Error()
			}
			return st.MsgInCounter > 0, "no counts yet"
		})
		agent.kill9()
		t.Logf("kill %d: SIGKILL %s at %d/%d words produced", k+1, agent.name, s.progress(), n)
		agent.start()
		f.waitRunning(mesh, convergeTimeout, map[string]int{"count": 1}, map[string]string{"count": "a"})
	}
	s.wait(drainTimeout(n))
	f.waitDrained("a", count.inTopic, subscription(mesh, "count"), drainTimeout(n))

	sent := map[string]int64{}
	for i := 0; i < n; i++ {
		sent[stateWord(i)]++
	}
	state := f.readState(t, "a", "agent-a", &meshfedv1.StateScope{Tenant: "public", Namespace: "default", Mesh: mesh, Function: "count"})
	var wrong []string
	for w, want := range sent {
		if got := state[w]; got != want {
			wrong = append(wrong, fmt.Sprintf("%s=%d (sent %d)", w, got, want))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d of %d counters differ from the words sent: %s", len(wrong), len(sent), strings.Join(wrong[:min(len(wrong), 10)], ", "))
	}
	emitted := multiset(f.readAll("a", count.outTopic))
	var dupOrLost []string
	for w, want := range sent {
		for k := int64(1); k <= want; k++ {
			if c := emitted[w+" "+strconv.FormatInt(k, 10)]; c != 1 {
				dupOrLost = append(dupOrLost, fmt.Sprintf("%q×%d", w+" "+strconv.FormatInt(k, 10), c))
			}
		}
	}
	if len(dupOrLost) > 0 {
		t.Errorf("%d counts not emitted exactly once, e.g. %s", len(dupOrLost), strings.Join(dupOrLost[:min(len(dupOrLost), 10)], ", "))
	}
	t.Logf("%s: %d words over %d counters, two kills, every counter exact: %v; done in %v", mesh, n, len(sent), len(wrong) == 0, time.Since(start).Round(time.Millisecond))
}

// streamWords produces stateWord(i) for i in [0, n), perTick every 10 ms,
// from one producer with batching off.
func (f *fed) streamWords(topic string, n, perTick int) *streamer {
	s := &streamer{f: f, topic: topic, clusters: []string{"a"}, to: n, perTick: perTick, stop: make(chan struct{}), done: make(chan struct{})}
	p, err := f.pulsar("a").CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true, MaxPendingMessages: 2000})
	if err != nil {
		f.t.Fatalf("producer for %s: %v", topic, err)
	}
	var once sync.Once
	fail := func(err error) {
		once.Do(func() {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		})
	}
	go func() {
		defer close(s.done)
		defer p.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < n; {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			for end := min(i+perTick, n); i < end; i++ {
				p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(stateWord(i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						fail(err)
					}
				})
			}
			if err := p.Flush(); err != nil {
				fail(err)
				return
			}
			s.mu.Lock()
			s.sent = i
			s.mu.Unlock()
		}
	}()
	f.t.Cleanup(func() { s.halt() })
	return s
}

// readState reads a function's whole committed state as the agent running
// it (only that agent may) and returns its counters.
func (f *fed) readState(t *testing.T, cluster, agent string, sc *meshfedv1.StateScope) map[string]int64 {
	t.Helper()
	flags := agentTLSFlags(t, cluster, agent)
	creds, err := security.Files{Cert: flags[1], Key: flags[3], CA: flags[5]}.ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	testkit.Eventually(t, convergeTimeout, "the function's state to be read", func() (bool, string) {
		var errs []string
		for _, addr := range strings.Split(f.srv(), ",") {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := meshfedv1.NewAgentServiceClient(conn).GetState(ctx, &meshfedv1.GetStateRequest{Scope: sc, All: true, Limit: 10000})
			cancel()
			conn.Close()
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", addr, err))
				continue
			}
			if resp.GetMore() {
				t.Fatalf("state of %v holds more than one page", sc)
			}
			for _, v := range resp.GetValues() {
				if v.GetIsCounter() {
					out[v.GetKey()] = v.GetCounter()
				}
			}
			return true, ""
		}
		return false, strings.Join(errs, "; ")
	})
	return out
}
