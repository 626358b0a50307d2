package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// The function-state benchmark runs the builtin word-count (one counter per
// distinct word) on a three-server control plane (Raft's production
// timeouts) and one in-process broker, all in this process over loopback
// sockets:
//
//	go test -run '^$' -bench StateWordCount -benchtime 1x ./agent/
//
// stateBenchMessages inputs (MESHFED_BENCH_MESSAGES, default 20,000) over
// stateBenchWords distinct words are produced before the function starts;
// the figure is committed state updates per second, read from the leader's
// state (the time from the first committed update to the last).
var stateBenchMessages = envInt("MESHFED_BENCH_MESSAGES", 20000)

// stateBenchWords is the number of distinct words; MESHFED_BENCH_WORDS
// overrides it.
var stateBenchWords = envInt("MESHFED_BENCH_WORDS", 1000)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// newFederation3 is newFederation over a three-server control plane; the
// returned testFed's srv is the first server, servers are all three.
func newFederation3(b testing.TB, cluster string) (*testFed, []*controlplane.Server) {
	b.Helper()
	servers := controlplane.TestCluster(b, 3, func(c *controlplane.Config) {
		c.AgentLease = 2 * time.Second
		c.AgentTTL = 3 * time.Second
		c.HeartbeatInterval = 200 * time.Millisecond
		c.SchedulerInterval = 200 * time.Millisecond
		// Raft's production timeouts: the test ones (150 ms) make three
		// servers on a loaded machine elect leaders over and over.
		c.RaftTweak = nil
	})
	leader := controlplane.WaitForLeader(b, servers...)
	f := &testFed{srv: leader, brokers: map[string]*broker.Broker{}}
	br, err := broker.New(broker.Config{DataDir: b.TempDir(), ListenAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		ClusterName: cluster, DeduplicationDefault: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	f.brokers[cluster] = br
	f.apply(b, objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: cluster},
		Spec: &meshfedv1.ClusterSpec{ServiceUrl: br.ServiceURL(), AdminUrl: br.AdminURL()}}),
		objects.Wrap(&meshfedv1.Tenant{Metadata: &meshfedv1.ObjectMeta{Name: "public"}}),
		objects.Wrap(&meshfedv1.Namespace{Metadata: &meshfedv1.ObjectMeta{Name: "default", Tenant: "public"}}))
	return f, servers
}

// benchWord is the word of input i.
func benchWord(i, words int) string { return fmt.Sprintf("w%d", (i*7919)%words) }

// stateTotal sums the counters of keys.
func stateTotal(srv *controlplane.Server, mesh string, keys []string) int64 {
	var n int64
	for _, v := range srv.State().GetState(&meshfedv1.StateScope{Tenant: "public", Namespace: "default", Mesh: mesh, Function: "count"}, keys) {
		n += v.GetCounter()
	}
	return n
}

func BenchmarkStateWordCount(b *testing.B) {
	for _, g := range []string{"atleast_once", "effectively_once"} {
		b.Run(g, func(b *testing.B) {
			for range b.N {
				f, servers := newFederation3(b, "a")
				addrs := make([]string, len(servers))
				for i, s := range servers {
					addrs[i] = s.GRPCAddr()
				}
				f.startAgentWith(b, "agent-a", "a", b.TempDir(), func(c *Config) { c.Servers = addrs })
				c := pulsarClient(b, f.brokers["a"])
				in := "persistent://public/default/words"
				p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: in, BatchingMaxPublishDelay: time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				for i := range stateBenchMessages {
					p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(benchWord(i, stateBenchWords))},
						func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
							if err != nil {
								b.Errorf("produce: %v", err)
							}
						})
				}
				if err := p.Flush(); err != nil {
					b.Fatal(err)
				}
				p.Close()
				f.apply(b, meshObj("wc", builtinFn("count", "word-count", "a", in, "a", "persistent://public/default/counts", g)))
				keys := make([]string, stateBenchWords)
				for i := range keys {
					keys[i] = fmt.Sprintf("w%d", i)
				}
				var first time.Time
				var firstN int64
				deadline := time.Now().Add(5 * time.Minute)
				for {
					n := stateTotal(f.srv, "wc", keys)
					if n > 0 && first.IsZero() {
						first, firstN = time.Now(), n
					}
					if n >= int64(stateBenchMessages) {
						if n != int64(stateBenchMessages) {
							b.Errorf("counted %d updates, sent %d", n, stateBenchMessages)
						}
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d updates committed after 5 minutes", n, stateBenchMessages)
					}
					time.Sleep(20 * time.Millisecond)
				}
				b.ReportMetric(float64(int64(stateBenchMessages)-firstN)/time.Since(first).Seconds(), "updates/s")
			}
		})
	}
}
