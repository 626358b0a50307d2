package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/internal/testkit"
)

// geoEndpoint is what the replication set-up needs of one broker.
type geoEndpoint struct {
	name, serviceURL, adminURL string
}

func endpointOf(b *Broker) geoEndpoint {
	return geoEndpoint{b.ClusterName(), b.ServiceURL(), b.AdminURL()}
}

// configureGeo does, through pulsaradmin on every broker, what an operator
// does to geo-replicate a namespace: create the other clusters, allow them
// for the tenant and set the namespace's replication clusters.
func configureGeo(t *testing.T, ns string, eps ...geoEndpoint) {
	t.Helper()
	var names []string
	for _, e := range eps {
		names = append(names, e.name)
	}
	tenant := strings.Split(ns, "/")[0]
	for _, self := range eps {
		admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: self.adminURL})
		must(t, "admin client", err)
		for _, other := range eps {
			if other.name == self.name {
				continue
			}
			cd := utils.ClusterData{Name: other.name, ServiceURL: other.adminURL, BrokerServiceURL: other.serviceURL}
			if err := admin.Clusters().Create(cd); err != nil {
				must(t, "update cluster "+other.name, admin.Clusters().Update(cd))
			}
		}
		td := utils.TenantData{Name: tenant, AllowedClusters: names}
		if err := admin.Tenants().Update(td); err != nil {
			must(t, "create tenant", admin.Tenants().Create(td))
		}
		if err := admin.Namespaces().CreateNamespace(ns); err != nil && !strings.Contains(err.Error(), "409") {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
		must(t, "set replication", admin.Namespaces().SetNamespaceReplicationClusters(ns, names))
	}
}

func TestReplicationKeepsMetadata(t *testing.T) {
	a := TestBroker(t, func(c *Config) { c.ClusterName = "a" })
	c := TestBroker(t, func(c *Config) { c.ClusterName = "c" })
	configureGeo(t, "public/default", endpointOf(a), endpointOf(c))
	ca, cc := testClient(t, a), testClient(t, c)

	p, err := ca.CreateProducer(pulsar.ProducerOptions{Topic: "geo", Name: "orig", BatchingMaxMessages: 10,
		BatchingMaxPublishDelay: 5 * time.Millisecond})
	must(t, "producer", err)
	const n = 100
	sentIDs := make([]pulsar.MessageID, n)
	event := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < n; i++ {
		i := i
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(i)), Key: fmt.Sprint("k", i%7),
			Properties: map[string]string{"i": fmt.Sprint(i)}, EventTime: event.Add(time.Duration(i) * time.Millisecond)},
			func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					t.Error(err)
				}
				sentIDs[i] = id
			})
	}
	must(t, "flush", p.Flush())
	p.Close()
	origin := map[string]pulsar.Message{}
	onA := subscribe(t, ca, pulsar.ConsumerOptions{Topic: "geo", SubscriptionName: "check"})
	for _, m := range drain(t, onA, n) {
		origin[string(m.Payload())] = m
	}

	cons := subscribe(t, cc, pulsar.ConsumerOptions{Topic: "geo", SubscriptionName: "s"})
	got := drain(t, cons, n)
	for i, m := range got {
		o := origin[string(m.Payload())]
		switch {
		case string(m.Payload()) != fmt.Sprint(i):
			t.Fatalf("message %d on c is %s", i, m.Payload())
		case !m.IsReplicated() || m.GetReplicatedFrom() != "a":
			t.Fatalf("message %d: replicated %v from %q", i, m.IsReplicated(), m.GetReplicatedFrom())
		case m.ProducerName() != "orig" || m.Key() != o.Key() || m.Properties()["i"] != fmt.Sprint(i):
			t.Fatalf("message %d: producer %q key %q properties %v", i, m.ProducerName(), m.Key(), m.Properties())
		case !m.PublishTime().Equal(o.PublishTime()) || !m.EventTime().Equal(o.EventTime()):
			t.Fatalf("message %d: publish %v/%v event %v/%v", i, m.PublishTime(), o.PublishTime(), m.EventTime(), o.EventTime())
		case m.ID().LedgerID() == o.ID().LedgerID():
			t.Fatalf("message %d has ledger %d in both clusters", i, m.ID().LedgerID())
		case m.ID().BatchIdx() != o.ID().BatchIdx():
			t.Fatalf("message %d: batch index %d on c, %d on a", i, m.ID().BatchIdx(), o.ID().BatchIdx())
		}
	}
	// Nothing comes back to a: c's replicator skips replicated entries.
	testkit.Eventually(t, waitTimeout, "c's replicator to a to pass the replicated entries", func() bool {
		st, err := c.Stats("geo")
		return err == nil && st.Replication["a"] != nil && st.Replication["a"].ReplicationBacklog == 0 && st.Replication["a"].Connected
	})
	// c delivers an entry before a's replicator has its send receipt.
	testkit.Eventually(t, waitTimeout, "a's replicator to c to have every send receipt", func() bool {
		st, err := a.Stats("geo")
		return err == nil && st.Replication["c"] != nil && st.Replication["c"].ReplicationBacklog == 0 && st.Replication["c"].MsgOutCounter == n
	})
	stA, _ := a.Stats("geo")
	if stA.MsgInCounter != n {
		t.Fatalf("a stored %d messages, want %d (replicated entries came back)", stA.MsgInCounter, n)
	}
	rs := stA.Replication["c"]
	if rs == nil || !rs.Connected || rs.ReplicationBacklog != 0 || rs.MsgOutCounter != n || rs.OutboundConnection == "" {
		t.Fatalf("a's replication stats %+v", rs)
	}
	stC, _ := c.Stats("geo")
	if in := stC.Replication["a"]; in == nil || in.InboundConnection == "" || in.DuplicatesIn != 0 {
		t.Fatalf("c's replication stats %+v", stC.Replication["a"])
	}
	for _, sub := range []string{"pulsar.repl.c"} {
		if _, ok := stA.Subscriptions[sub]; ok {
			t.Fatalf("replicator cursor %s listed among subscriptions", sub)
		}
	}
	resp, err := http.Get(a.AdminURL() + "/metrics")
	must(t, "metrics", err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`pulsar_replication_backlog{cluster="a",namespace="public/default",topic="persistent://public/default/geo",remote_cluster="c"} 0`,
		`pulsar_replication_connected_count{cluster="a",namespace="public/default",topic="persistent://public/default/geo",remote_cluster="c"} 1`,
		"pulsar_replication_rate_out", "pulsar_replication_throughput_out", "pulsar_replication_delay_in_seconds"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

func TestReplicationPartitionedTopic(t *testing.T) {
	a := TestBroker(t, func(c *Config) { c.ClusterName = "a" })
	c := TestBroker(t, func(c *Config) { c.ClusterName = "c" })
	configureGeo(t, "public/default", endpointOf(a), endpointOf(c))
	admin := testAdmin(t, a)
	must(t, "create partitioned topic on a", admin.Topics().Create(adminTopic(t, "pgeo"), 3))
	produceN(t, testClient(t, a), "pgeo", 30, func(i int) string { return fmt.Sprint(i) })
	cons := subscribe(t, testClient(t, c), pulsar.ConsumerOptions{Topic: "pgeo", SubscriptionName: "s", Type: pulsar.Shared})
	got := drain(t, cons, 30)
	parts := map[string]bool{}
	seen := map[string]bool{}
	for _, m := range got {
		parts[m.Topic()] = true
		seen[string(m.Payload())] = true
		if m.GetReplicatedFrom() != "a" {
			t.Fatalf("message from %q", m.GetReplicatedFrom())
		}
	}
	if len(parts) != 3 || len(seen) != 30 {
		t.Fatalf("partitions %v, distinct messages %d", parts, len(seen))
	}
	if np := c.partitions(topicName{domain: "persistent", tenant: "public", namespace: "default", local: "pgeo", partition: -1}); np != 3 {
		t.Fatalf("c knows %d partitions", np)
	}
}

func TestReplicationRemovedDeletesCursor(t *testing.T) {
	a := TestBroker(t, func(c *Config) { c.ClusterName = "a" })
	c := TestBroker(t, func(c *Config) { c.ClusterName = "c" })
	configureGeo(t, "public/default", endpointOf(a), endpointOf(c))
	produceN(t, testClient(t, a), "rm", 5, nil)
	tp, err := a.getTopic("rm", false)
	must(t, "topic", err)
	cursor := filepath.Join(tp.dir, "cursors", escapeName("pulsar.repl.c")+".json")
	testkit.Eventually(t, waitTimeout, "the replication cursor on disk", func() bool { _, err := os.Stat(cursor); return err == nil })
	testkit.Eventually(t, waitTimeout, "c to have the 5 messages", func() bool {
		st, err := c.Stats("rm")
		return err == nil && st.MsgInCounter == 5
	})
	must(t, "stop replicating", testAdmin(t, a).Namespaces().SetNamespaceReplicationClusters("public/default", []string{"a"}))
	if _, err := os.Stat(cursor); !os.IsNotExist(err) {
		t.Fatalf("replication cursor still on disk: %v", err)
	}
	st, _ := a.Stats("rm")
	if rs, ok := st.Replication["c"]; ok && (rs.OutboundConnection != "" || rs.Connected || rs.ReplicationBacklog != 0) {
		t.Fatalf("replication to c still in stats: %+v", rs)
	}
	// Back on: a new cursor starts at the end, as in Pulsar.
	must(t, "replicate again", testAdmin(t, a).Namespaces().SetNamespaceReplicationClusters("public/default", []string{"a", "c"}))
	produceN(t, testClient(t, a), "rm", 1, nil)
	cons := subscribe(t, testClient(t, c), pulsar.ConsumerOptions{Topic: "rm", SubscriptionName: "s"})
	if got := drain(t, cons, 6); len(got) != 6 {
		t.Fatalf("c has %d messages", len(got))
	}
}

func TestRetentionWaitsForReplicator(t *testing.T) {
	a := TestBroker(t, func(c *Config) { c.ClusterName = "a"; c.SegmentSize = 2048; c.RetentionSize = 1 })
	c := TestBroker(t, func(c *Config) { c.ClusterName = "c" })
	// c is first known at an address nothing listens on.
	dead := geoEndpoint{name: "c", serviceURL: "pulsar://127.0.0.1:1", adminURL: c.AdminURL()}
	configureGeo(t, "public/default", endpointOf(a), dead)
	cl := testClient(t, a)
	cons := subscribe(t, cl, pulsar.ConsumerOptions{Topic: "keep", SubscriptionName: "s"})
	produceN(t, cl, "keep", 100, nil)
	drain(t, cons, 100)
	tp, err := a.getTopic("keep", false)
	must(t, "topic", err)
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(tp.dir, "*.log"))
		return len(m)
	}
	before := segs()
	if before < 3 {
		t.Fatalf("only %d segments", before)
	}
	// Two retention passes (one a second) keep everything the replicator
	// has not sent.
	passes := tp.retentionPasses.Load()
	testkit.Eventually(t, waitTimeout, "two retention passes", func() bool { return tp.retentionPasses.Load() >= passes+2 })
	if n := segs(); n != before {
		t.Fatalf("retention removed %d of %d segments the replicator still needs", before-n, before)
	}
	st, _ := a.Stats("keep")
	if rs := st.Replication["c"]; rs == nil || rs.Connected || rs.ReplicationBacklog != 100 || rs.LastError == "" {
		t.Fatalf("replication stats while c is unreachable: %+v", rs)
	}
	must(t, "point a at c", testAdmin(t, a).Clusters().Update(utils.ClusterData{Name: "c", ServiceURL: c.AdminURL(),
		BrokerServiceURL: c.ServiceURL()}))
	testkit.Eventually(t, waitTimeout, "retention after replication", func() bool { return segs() == 1 })
	st, _ = c.Stats("keep")
	if st.MsgInCounter != 100 {
		t.Fatalf("c stored %d messages", st.MsgInCounter)
	}
}

// TestReplicatorProducerTakesOver checks that a new connection of a
// cluster's replicator replaces one the broker still holds (as after a
// network partition), instead of failing with ProducerBusy until the old
// connection times out.
func TestReplicatorProducerTakesOver(t *testing.T) {
	c := TestBroker(t, func(cfg *Config) { cfg.ClusterName = "c" })
	ctx := ctxT(t)
	old, err := dialBroker(ctx, c.ServiceURL(), dialOptions{})
	must(t, "dial", err)
	defer old.close()
	_, err = old.createProducer(ctx, "persistent://public/default/takeover", "pulsar.repl.a", 1, 1)
	must(t, "first replicator producer", err)
	again, err := dialBroker(ctx, c.ServiceURL(), dialOptions{})
	must(t, "dial again", err)
	defer again.close()
	_, err = again.createProducer(ctx, "persistent://public/default/takeover", "pulsar.repl.a", 1, 1)
	must(t, "second replicator producer", err)
	resp, err := old.read()
	must(t, "read on the old connection", err)
	if resp.CloseProducer == nil {
		t.Fatalf("old connection got command %d, want CLOSE_PRODUCER", resp.Type)
	}
	// Other producers still get ProducerBusy.
	p1, err := dialBroker(ctx, c.ServiceURL(), dialOptions{})
	must(t, "dial", err)
	defer p1.close()
	_, err = p1.createProducer(ctx, "persistent://public/default/takeover", "someone", 1, 1)
	must(t, "producer", err)
	p2, err := dialBroker(ctx, c.ServiceURL(), dialOptions{})
	must(t, "dial", err)
	defer p2.close()
	if _, err := p2.createProducer(ctx, "persistent://public/default/takeover", "someone", 1, 1); err == nil {
		t.Fatal("a second producer with the same name was admitted")
	}
}
