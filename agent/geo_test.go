package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// replicate geo-replicates namespace ns between brokers through their admin
// API, as an operator does: every other cluster created, the tenant allowed
// on all of them, the namespace's replication clusters set.
func replicate(t *testing.T, ns string, brokers ...*broker.Broker) {
	t.Helper()
	var names []string
	for _, b := range brokers {
		names = append(names, b.ClusterName())
	}
	for _, self := range brokers {
		adm := testAdmin(t, self)
		for _, other := range brokers {
			if other == self {
				continue
			}
			cd := utils.ClusterData{Name: other.ClusterName(), ServiceURL: other.AdminURL(), BrokerServiceURL: other.ServiceURL()}
			if err := adm.Clusters().Create(cd); err != nil {
				if err := adm.Clusters().Update(cd); err != nil {
					t.Fatalf("cluster %s on %s: %v", cd.Name, self.ClusterName(), err)
				}
			}
		}
		td := utils.TenantData{Name: strings.Split(ns, "/")[0], AllowedClusters: names}
		if err := adm.Tenants().Update(td); err != nil {
			if err := adm.Tenants().Create(td); err != nil {
				t.Fatalf("tenant on %s: %v", self.ClusterName(), err)
			}
		}
		if err := adm.Namespaces().CreateNamespace(ns); err != nil && !strings.Contains(err.Error(), "409") {
			t.Fatalf("namespace %s on %s: %v", ns, self.ClusterName(), err)
		}
		if err := adm.Namespaces().SetNamespaceReplicationClusters(ns, names); err != nil {
			t.Fatalf("replication of %s on %s: %v", ns, self.ClusterName(), err)
		}
	}
}

// The headline: input produced to cluster a only and geo-replicated to c
// (message ids differ between the two); an effectively_once function
// processes part of it in a, its agent stops, the function fails over to c
// and reads c's copy from a subscription it creates at a's watermark, and
// later fails back to a. Every output is written exactly once; the outputs
// the fallback did not write because a had written them are counted.
func TestEffectivelyOnceFailoverToReplicatedCopy(t *testing.T) {
	f := newFederationWith(t, func(c *controlplane.Config) { c.FailbackHoldDown = 500 * time.Millisecond }, "a", "c")
	replicate(t, "public/default", f.brokers["a"], f.brokers["c"])
	dirA := t.TempDir()
	stopA := f.startAgent(t, "agent-a", "a", dirA)
	// A rewind longer than the test: the fallback replays everything a did,
	// so the outputs it skips are exactly those a wrote.
	f.startAgentWith(t, "agent-c", "c", t.TempDir(), func(c *Config) { c.FallbackRewind = time.Minute })
	in, out := "persistent://public/default/geo-in", "persistent://public/out/geo-out"
	fn := builtinFn("split", "word-split", "a", in, "c", out, "effectively_once")
	fn.Failover = &meshfedv1.Failover{Clusters: []string{"c"}, Failback: "auto"}
	f.apply(t, meshObj("geo", fn))
	f.waitRunningOn(t, "geo", "split", "agent-a")

	ca, cc := pulsarClient(t, f.brokers["a"]), pulsarClient(t, f.brokers["c"])
	var prods []pulsar.Producer
	for _, name := range []string{"src", "src2"} {
		p, err := ca.CreateProducer(pulsar.ProducerOptions{Topic: in, Name: name, BatchingMaxMessages: 5, BatchingMaxPublishDelay: 2 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		prods = append(prods, p)
	}
	var want []string
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			prods[i%2].SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("w%da w%db", i, i))},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			want = append(want, fmt.Sprintf("w%da", i), fmt.Sprintf("w%db", i))
		}
		for _, p := range prods {
			if err := p.FlushWithCtx(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 600)
	// Part of it is processed in a, then a's agent goes away.
	drainMessages(t, cc, out, 300, 30*time.Second)
	stopA()
	send(600, 400)

	// c's copy: every message, replicated from a, at other positions.
	copyC := drainMessages(t, cc, in, 1000, 30*time.Second)
	origA := drainMessages(t, ca, in, 1000, 30*time.Second)
	if len(copyC) != 1000 || len(origA) != 1000 {
		t.Fatalf("read %d messages in a and %d in c, want 1000 each", len(origA), len(copyC))
	}
	for i := range copyC {
		if !copyC[i].IsReplicated() || copyC[i].GetReplicatedFrom() != "a" || copyC[i].ProducerName() != origA[i].ProducerName() ||
			!copyC[i].PublishTime().Equal(origA[i].PublishTime()) || string(copyC[i].Payload()) != string(origA[i].Payload()) {
			t.Fatalf("message %d in c is not a's replicated: %v/%q %s %s %q vs %s %s %q", i, copyC[i].IsReplicated(), copyC[i].GetReplicatedFrom(),
				copyC[i].ProducerName(), copyC[i].PublishTime(), copyC[i].Payload(), origA[i].ProducerName(), origA[i].PublishTime(), origA[i].Payload())
		}
		if copyC[i].ID().LedgerID() == origA[i].ID().LedgerID() {
			t.Fatalf("message %d has ledger id %d in both clusters: positions must differ", i, origA[i].ID().LedgerID())
		}
	}

	f.waitRunningOn(t, "geo", "split", "agent-c")
	got := drainMessages(t, cc, out, 2000, 60*time.Second)
	exactlyOnce(t, got, want)
	fromA, fromC := 0, 0
	for _, m := range got {
		switch m.Properties()[clusterProperty] {
		case "a":
			fromA++
		case "c":
			fromC++
		default:
			t.Fatalf("output %q without %s", m.Payload(), clusterProperty)
		}
	}
	t.Logf("outputs written in a: %d, in c: %d", fromA, fromC)
	if fromA < 300 || fromC == 0 {
		t.Fatalf("%d outputs written in a and %d in c: want the failover in the middle", fromA, fromC)
	}
	controlplane.WaitFor(t, 10*time.Second, func() error {
		st := instanceStatus(f, "geo", "split")
		if st.GetCluster() != "c" || st.GetDeduplicated() != uint64(fromA) || st.GetUnproven() != 0 {
			return fmt.Errorf("status in %s: deduplicated=%d unproven=%d, want the %d outputs a wrote and 0", st.GetCluster(), st.GetDeduplicated(), st.GetUnproven(), fromA)
		}
		return nil
	})
	sub := "meshfed-public-default-geo-split"
	subs, err := testAdmin(t, f.brokers["c"]).Subscriptions().List(topicName(t, in))
	if err != nil || !slices.Contains(subs, sub) {
		t.Fatalf("subscriptions of %s in c: %v, %v", in, subs, err)
	}

	// Failback: a returns, the function goes home, the subscription in c
	// is removed, and what comes next is written once more.
	f.startAgent(t, "agent-a", "a", dirA)
	f.waitRunningOn(t, "geo", "split", "agent-a")
	send(1000, 100)
	got = drainMessages(t, cc, out, 2200, 60*time.Second)
	exactlyOnce(t, got, want)
	controlplane.WaitFor(t, 30*time.Second, func() error {
		subs, err := testAdmin(t, f.brokers["c"]).Subscriptions().List(topicName(t, in))
		if err != nil {
			return err
		}
		if slices.Contains(subs, sub) {
			return fmt.Errorf("fallback subscription still in c: %v", subs)
		}
		return nil
	})
}
