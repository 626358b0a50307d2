//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
)

// fenceWatch samples the brokers' topic stats while an agent is partitioned
// and remembers every sample that shows one instance running twice.
type fenceWatch struct {
	f    *fed
	stop chan struct{}
	done chan struct{}

	// mu guards everything below.
	mu         sync.Mutex
	samples    int
	violations []string
	maxCons    map[string]int
	maxPubs    map[string]int
	// firstGone is when no consumer of the partitioned agent was left on
	// any watched subscription, after cutAt.
	cutAt, firstGone time.Time
}

type watched struct {
	cluster, topic, sub string // a subscription whose consumers to count
	outCluster, out     string // an output topic whose publishers to count
	pubPrefix           string // count only publishers with this name prefix ("" all)
}

func (f *fed) watchFencing(agent string, ws []watched) *fenceWatch {
	w := &fenceWatch{f: f, stop: make(chan struct{}), done: make(chan struct{}), maxCons: map[string]int{}, maxPubs: map[string]int{}}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			agentConsumers := 0
			ok := true
			for _, x := range ws {
				in, err := f.brokers[x.cluster].stats(x.topic)
				if err != nil {
					ok = false
					continue
				}
				out, err := f.brokers[x.outCluster].stats(x.out)
				if err != nil {
					ok = false
					continue
				}
				var names []string
				for _, c := range in.Subscriptions[x.sub].Consumers {
					names = append(names, c.ConsumerName)
					if strings.HasPrefix(c.ConsumerName, agent+"-") {
						agentConsumers++
					}
				}
				var pubs []string
				for _, p := range out.Publishers {
					if strings.HasPrefix(p.ProducerName, x.pubPrefix) {
						pubs = append(pubs, p.ProducerName+"@"+p.Address)
					}
				}
				w.mu.Lock()
				w.samples++
				w.maxCons[x.sub] = max(w.maxCons[x.sub], len(names))
				w.maxPubs[x.out] = max(w.maxPubs[x.out], len(pubs))
				if len(names) > 1 || len(pubs) > 1 {
					w.violations = append(w.violations, fmt.Sprintf("%s: %s consumers %v, %s publishers %v",
						time.Now().UTC().Format("15:04:05.000"), x.sub, names, x.out, pubs))
				}
				w.mu.Unlock()
			}
			w.mu.Lock()
			if ok && agentConsumers == 0 && !w.cutAt.IsZero() && w.firstGone.IsZero() {
				w.firstGone = time.Now()
			}
			w.mu.Unlock()
		}
	}()
	f.t.Cleanup(w.halt)
	return w
}

func (w *fenceWatch) cut(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cutAt = at
}

// stoppedAfter returns how long after the cut the agent's consumers were gone.
func (w *fenceWatch) stoppedAfter() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.firstGone.IsZero() {
		return 0, false
	}
	return w.firstGone.Sub(w.cutAt), true
}

func (w *fenceWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// TestAgentFencingPartitionFromServers cuts an agent off from the control
// plane (a TCP proxy between it and the server) while it still reaches its
// broker: within its lease it must stop its instances on its own, the
// instances move to the other agent of its cluster, and when the partition
// heals (after twice the lease) the agent must not resume them. The
// brokers' stats, sampled every 20 ms throughout, must never show two
// consumers on a function's subscription or two producers of one instance.
func TestAgentFencingPartitionFromServers(t *testing.T) {
	const lease = 3 * time.Second // the server's default --agent-lease
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a", "b"}, noAgents: true})
	proxy := newTCPProxy(t, f.cp.servers[0].grpcAddr)
	f.addAgent("agent-a1", "a", proxy.addr)
	f.addAgent("agent-b", "b", f.srv())
	f.waitAgentReady("agent-a1")
	f.waitAgentReady("agent-b")

	// Two meshes on agent-a1: effectively once (Failover subscription,
	// one deterministic producer name) and at least once (Shared
	// subscription, a producer per instance).
	meshes := map[string]string{"fence-eo": "effectively_once", "fence-alo": "atleast_once"}
	fns := map[string]meshFn{}
	for m, g := range meshes {
		fn := meshFn{name: "split", runtime: "{builtin: word-split}", guarantee: g,
			inCluster: "a", inTopic: topicURL(m + "-sentences"), outCluster: "b", outTopic: topicURL(m + "-words")}
		fns[m] = fn
		f.apply(meshYAML(m, fn))
		f.waitRunning(m, convergeTimeout, map[string]int{"split": 1}, map[string]string{"split": "a"})
	}
	// Its stand-in, started after placement so that agent-a1 runs both.
	f.addAgent("agent-a2", "a", f.srv())
	f.waitAgentReady("agent-a2")

	const n = 2500 // 100 a second per topic: the stream outlasts the scenario
	var streams []*streamer
	var ws []watched
	for m, fn := range fns {
		streams = append(streams, f.startStream(fn.inTopic, 0, n, 1, "a"))
		prefix := ""
		if meshes[m] == "effectively_once" {
			prefix = "meshfed-split-"
		}
		ws = append(ws, watched{cluster: "a", topic: fn.inTopic, sub: subscription(m, "split"), outCluster: "b", out: fn.outTopic, pubPrefix: prefix})
	}
	for _, fn := range fns {
		// Producers exist once outputs flow.
		testkit.Eventually(t, convergeTimeout, "words on b", func() (bool, string) {
			st, err := f.brokers["b"].stats(fn.outTopic)
			if err != nil {
				return false, err.Error()
			}
			return len(st.Publishers) == 1, fmt.Sprintf("%d publishers", len(st.Publishers))
		})
	}
	w := f.watchFencing("agent-a1", ws)

	cutAt := time.Now()
	proxy.cut()
	w.cut(cutAt)
	t.Logf("partitioned agent-a1 from the server at %s", cutAt.UTC().Format("15:04:05.000"))
	testkit.Eventually(t, lease+5*time.Second, "agent-a1 to stop its instances", func() (bool, string) {
		_, ok := w.stoppedAfter()
		return ok, "agent-a1 still has consumers"
	})
	stopped, _ := w.stoppedAfter()
	t.Logf("agent-a1 stopped its instances %v after the partition (lease %v)", stopped.Round(time.Millisecond), lease)
	if stopped > lease+time.Second {
		t.Errorf("agent-a1 stopped its instances %v after losing the control plane; want within its lease %v (+1s to stop)", stopped, lease)
	}
	for m := range fns {
		testkit.Eventually(t, convergeTimeout, m+": split running on agent-a2", func() (bool, string) {
			as, err := f.assignments(m)
			if err != nil {
				return false, err.Error()
			}
			ok, why := runningIn(as, map[string]int{"split": 1}, map[string]string{"split": "a"})
			return ok && as["split#0"].GetSpec().GetAgent() == "agent-a2", why
		})
	}
	t.Logf("instances running on agent-a2 %v after the partition", time.Since(cutAt).Round(time.Millisecond))

	// Heal after twice the lease: agent-a1 comes back and must not resume
	// what moved on.
	time.Sleep(time.Until(cutAt.Add(2 * lease)))
	proxy.heal()
	healAt := time.Now()
	f.waitAgentReady("agent-a1")
	t.Logf("agent-a1 Ready again %v after the heal", time.Since(healAt).Round(time.Millisecond))
	// Watch for twice the lease after it is back.
	time.Sleep(2 * lease)
	for m := range fns {
		as, err := f.assignments(m)
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := runningIn(as, map[string]int{"split": 1}, map[string]string{"split": "a"}); !ok || as["split#0"].GetSpec().GetAgent() != "agent-a2" {
			t.Errorf("%s after the heal: want split running on agent-a2 only: %s", m, why)
		}
	}
	for _, s := range streams {
		s.wait(drainTimeout(n))
	}
	w.halt()
	w.mu.Lock()
	t.Logf("%d stats samples; most consumers seen on a subscription: %v; most publishers on an output: %v", w.samples, w.maxCons, w.maxPubs)
	if len(w.violations) > 0 {
		t.Errorf("an instance ran in two places (%d samples), first ones:\n%s", len(w.violations), strings.Join(w.violations[:min(10, len(w.violations))], "\n"))
	}
	w.mu.Unlock()

	// Nothing lost either way; nothing duplicated effectively once.
	for m, fn := range fns {
		f.waitDrained("a", fn.inTopic, subscription(m, "split"), drainTimeout(n))
		words := f.readAll("b", fn.outTopic)
		lost, dup, ex := compareWords(wordsOf(0, n), multiset(words))
		t.Logf("%s: %d inputs, %d words on b: lost %d, duplicated %d", m, n, len(words), lost, dup)
		if lost > 0 || meshes[m] == "effectively_once" && dup > 0 {
			t.Errorf("%s: lost %d, duplicated %d; e.g. %s", m, lost, dup, ex)
		}
	}
}
