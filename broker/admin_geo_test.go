package broker

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/internal/testkit"
)

func testAdmin(t *testing.T, b *Broker) pulsaradmin.Client {
	t.Helper()
	a, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: b.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantCode fails unless err is a pulsaradmin error with the HTTP status.
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var re rest.Error
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("%s: got %v, want HTTP %d", what, err, code)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestClustersTenantsReplicationAdmin(t *testing.T) {
	dir := t.TempDir()
	b, restart := restartable(t, dir, func(c *Config) { c.ClusterName = "a" })
	admin := testAdmin(t, b)
	names, err := admin.Clusters().List()
	must(t, "list clusters", err)
	if fmt.Sprint(names) != "[a]" {
		t.Fatalf("clusters %v, want [a]", names)
	}
	own, err := admin.Clusters().Get("a")
	must(t, "get own cluster", err)
	if own.ServiceURL != b.AdminURL() || own.BrokerServiceURL != b.ServiceURL() {
		t.Fatalf("own cluster %+v, want %s and %s", own, b.AdminURL(), b.ServiceURL())
	}
	c := utils.ClusterData{Name: "c", ServiceURL: "http://127.0.0.1:1", BrokerServiceURL: "pulsar://127.0.0.1:2"}
	must(t, "create c", admin.Clusters().Create(c))
	wantCode(t, "create c again", admin.Clusters().Create(c), http.StatusConflict)
	wantCode(t, "create a (own)", admin.Clusters().Create(utils.ClusterData{Name: "a"}), http.StatusConflict)
	wantCode(t, "bad name", admin.Clusters().Create(utils.ClusterData{Name: "b%20x"}), http.StatusPreconditionFailed)
	wantCode(t, "bad url", admin.Clusters().Create(utils.ClusterData{Name: "d", BrokerServiceURL: "http://x"}), http.StatusBadRequest)
	c.BrokerServiceURL = "pulsar://127.0.0.1:3"
	must(t, "update c", admin.Clusters().Update(c))
	wantCode(t, "update unknown", admin.Clusters().Update(utils.ClusterData{Name: "zz"}), http.StatusNotFound)
	_, err = admin.Clusters().Get("zz")
	wantCode(t, "get unknown", err, http.StatusNotFound)
	must(t, "create d", admin.Clusters().Create(utils.ClusterData{Name: "d", BrokerServiceURL: "pulsar://127.0.0.1:4"}))

	b = restart()
	admin = testAdmin(t, b)
	got, err := admin.Clusters().Get("c")
	must(t, "get c after restart", err)
	if got.BrokerServiceURL != "pulsar://127.0.0.1:3" || got.ServiceURL != "http://127.0.0.1:1" {
		t.Fatalf("c after restart: %+v", got)
	}
	names, _ = admin.Clusters().List()
	if fmt.Sprint(names) != "[a c d]" {
		t.Fatalf("clusters after restart %v", names)
	}

	wantCode(t, "tenant with unknown cluster",
		admin.Tenants().Create(utils.TenantData{Name: "acme", AllowedClusters: []string{"a", "ghost"}}), http.StatusPreconditionFailed)
	must(t, "create tenant", admin.Tenants().Create(utils.TenantData{Name: "acme", AllowedClusters: []string{"a", "c"}}))
	wantCode(t, "update unknown tenant", admin.Tenants().Update(utils.TenantData{Name: "nobody", AllowedClusters: []string{"a"}}), http.StatusNotFound)
	must(t, "create namespace", admin.Namespaces().CreateNamespace("acme/ns"))
	repl, err := admin.Namespaces().GetNamespaceReplicationClusters("acme/ns")
	must(t, "get default replication", err)
	if fmt.Sprint(repl) != "[a]" {
		t.Fatalf("default replication %v, want [a]", repl)
	}
	for _, tc := range []struct {
		clusters []string
		code     int
	}{
		{nil, http.StatusPreconditionFailed},
		{[]string{"a", "global"}, http.StatusPreconditionFailed},
		{[]string{"a", "ghost"}, http.StatusForbidden},
		{[]string{"a", "d"}, http.StatusForbidden}, // d exists but acme may not use it
	} {
		wantCode(t, fmt.Sprintf("replication %v", tc.clusters),
			admin.Namespaces().SetNamespaceReplicationClusters("acme/ns", tc.clusters), tc.code)
	}
	must(t, "set replication", admin.Namespaces().SetNamespaceReplicationClusters("acme/ns", []string{"a", "c"}))
	repl, _ = admin.Namespaces().GetNamespaceReplicationClusters("acme/ns")
	pol, err := admin.Namespaces().GetPolicies("acme/ns")
	must(t, "get policies", err)
	if fmt.Sprint(repl) != "[a c]" || fmt.Sprint(pol.ReplicationClusters) != "[a c]" {
		t.Fatalf("replication %v, policies %v", repl, pol.ReplicationClusters)
	}
	wantCode(t, "drop c from the tenant while replicated",
		admin.Tenants().Update(utils.TenantData{Name: "acme", AllowedClusters: []string{"a"}}), http.StatusConflict)
	wantCode(t, "delete used cluster", admin.Clusters().Delete("c"), http.StatusPreconditionFailed)
	pols := utils.NewDefaultPolicies()
	pols.ReplicationClusters = []string{"a", "c"}
	must(t, "create namespace with policies", admin.Namespaces().CreateNsWithPolices("acme/ns2", *pols))
	repl, _ = admin.Namespaces().GetNamespaceReplicationClusters("acme/ns2")
	if fmt.Sprint(repl) != "[a c]" {
		t.Fatalf("ns2 replication %v", repl)
	}

	must(t, "replicate ns locally", admin.Namespaces().SetNamespaceReplicationClusters("acme/ns", []string{"a"}))
	must(t, "delete ns2", admin.Namespaces().DeleteNamespace("acme/ns2"))
	must(t, "narrow tenant", admin.Tenants().Update(utils.TenantData{Name: "acme", AllowedClusters: []string{"a"}}))
	must(t, "delete c", admin.Clusters().Delete("c"))
	wantCode(t, "delete own", admin.Clusters().Delete("a"), http.StatusPreconditionFailed)
	names, _ = admin.Clusters().List()
	if fmt.Sprint(names) != "[a d]" {
		t.Fatalf("clusters after delete %v", names)
	}
}

func adminTopic(t *testing.T, name string) utils.TopicName {
	t.Helper()
	tn, err := utils.GetTopicName(name)
	if err != nil {
		t.Fatal(err)
	}
	return *tn
}

func adminID(id pulsar.MessageID) utils.MessageID {
	return utils.MessageID{LedgerID: id.LedgerID(), EntryID: id.EntryID(), PartitionIndex: int(id.PartitionIdx())}
}

func firstPayload(t *testing.T, c pulsar.Client, topic, sub string) string {
	t.Helper()
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: sub})
	must(t, "subscribe "+sub, err)
	defer cons.Close()
	m, err := cons.Receive(ctxT(t))
	must(t, "receive on "+sub, err)
	return string(m.Payload())
}

func TestSubscriptionAdmin(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	admin := testAdmin(t, b)
	ids := produceN(t, c, "subs", 10, nil)
	tn := adminTopic(t, "subs")
	must(t, "create at 3", admin.Subscriptions().Create(tn, "at3", adminID(ids[3])))
	must(t, "create earliest", admin.Subscriptions().Create(tn, "early", utils.Earliest))
	must(t, "create latest", admin.Subscriptions().Create(tn, "late", utils.Latest))
	wantCode(t, "create existing", admin.Subscriptions().Create(tn, "at3", utils.Earliest), http.StatusConflict)
	wantCode(t, "reserved name", admin.Subscriptions().Create(tn, "pulsar.repl.x", utils.Earliest), http.StatusMethodNotAllowed)
	subs, err := admin.Subscriptions().List(tn)
	must(t, "list", err)
	if fmt.Sprint(subs) != "[at3 early late]" && fmt.Sprint(subs) != "[at3 early fwd late]" {
		t.Fatalf("subscriptions %v", subs)
	}
	if got := firstPayload(t, c, "subs", "at3"); got != "3" {
		t.Fatalf("at3 starts at %s", got)
	}
	if got := firstPayload(t, c, "subs", "early"); got != "0" {
		t.Fatalf("early starts at %s", got)
	}
	st, _ := b.Stats("subs")
	if bl := st.Subscriptions["late"].MsgBacklog; bl != 0 {
		t.Fatalf("latest subscription has backlog %d", bl)
	}

	// Reset a subscription with a connected consumer that has received
	// nothing: it is disconnected and goes on from the new position.
	// (pulsar-client-go drops, and acknowledges, redelivered messages at or
	// before the last one the application received, so a rewind past
	// received messages is checked with no consumer.)
	must(t, "create fwd at latest", admin.Subscriptions().Create(tn, "fwd", utils.Latest))
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "subs", SubscriptionName: "fwd"})
	must(t, "reset to id 7", admin.Subscriptions().ResetCursorToMessageID(tn, "fwd", adminID(ids[7])))
	if m, err := cons.Receive(ctxT(t)); err != nil || string(m.Payload()) != "7" {
		t.Fatalf("after reset to 7: %v %v", m, err)
	}
	must(t, "rewind to id 2", admin.Subscriptions().ResetCursorToMessageID(tn, "early", adminID(ids[2])))
	if got := firstPayload(t, c, "subs", "early"); got != "2" {
		t.Fatalf("after rewind to 2: %s", got)
	}
	cut := time.Now()
	testkit.Eventually(t, waitTimeout, "the next millisecond", func() bool { return time.Now().UnixMilli() > cut.UnixMilli() })
	produceN(t, c, "subs", 1, nil)
	must(t, "reset to time", admin.Subscriptions().ResetCursorToTimestamp(tn, "late", cut.UnixMilli()))
	if got := firstPayload(t, c, "subs", "late"); got != "0" {
		t.Fatalf("after reset to time: %s, want the message published after it", got)
	}
	wantCode(t, "reset unknown", admin.Subscriptions().ResetCursorToTimestamp(tn, "nope", 0), http.StatusNotFound)
	wantCode(t, "delete with a consumer", admin.Subscriptions().Delete(tn, "fwd"), http.StatusPreconditionFailed)
	must(t, "force delete", admin.Subscriptions().ForceDelete(tn, "fwd"))
	must(t, "delete", admin.Subscriptions().Delete(tn, "at3"))
	wantCode(t, "delete again", admin.Subscriptions().Delete(tn, "at3"), http.StatusNotFound)
}

func TestSubscriptionAdminPartitioned(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	admin := testAdmin(t, b)
	tn := adminTopic(t, "ptopic")
	must(t, "create partitioned", admin.Topics().Create(tn, 3))
	produceN(t, c, "ptopic", 30, func(i int) string { return fmt.Sprint(i) })
	must(t, "create at earliest", admin.Subscriptions().Create(tn, "fn", utils.Earliest))
	for i := 0; i < 3; i++ {
		st, err := b.Stats(fmt.Sprintf("ptopic-partition-%d", i))
		must(t, "stats", err)
		if s, ok := st.Subscriptions["fn"]; !ok || s.MsgBacklog == 0 {
			t.Fatalf("partition %d: subscription %+v", i, st.Subscriptions)
		}
	}
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "ptopic", SubscriptionName: "fn", Type: pulsar.Shared,
		AckWithResponse: true})
	drain(t, cons, 30)
	cons.Close()
	must(t, "reset partitioned to time 0", admin.Subscriptions().ResetCursorToTimestamp(tn, "fn", 0))
	cons = subscribe(t, c, pulsar.ConsumerOptions{Topic: "ptopic", SubscriptionName: "fn", Type: pulsar.Shared})
	drain(t, cons, 30)
	subs, err := admin.Subscriptions().List(tn)
	must(t, "list", err)
	if !slices.Equal(subs, []string{"fn"}) {
		t.Fatalf("subscriptions %v", subs)
	}
	cons.Close()
	must(t, "delete partitioned", admin.Subscriptions().Delete(tn, "fn"))
	for i := 0; i < 3; i++ {
		st, _ := b.Stats(fmt.Sprintf("ptopic-partition-%d", i))
		if _, ok := st.Subscriptions["fn"]; ok {
			t.Fatalf("partition %d still has the subscription", i)
		}
	}
}

func TestHealthCheck(t *testing.T) {
	b := TestBroker(t, func(c *Config) { c.ClusterName = "hc"; c.DeduplicationDefault = true })
	admin := testAdmin(t, b)
	for i := 0; i < 3; i++ {
		must(t, "health check", admin.Brokers().HealthCheck())
	}
	tenants, err := admin.Tenants().List()
	must(t, "tenants", err)
	if slices.Contains(tenants, heartbeatTenant) {
		t.Fatalf("heartbeat tenant listed: %v", tenants)
	}
	if topics := b.topicsOfNamespace(heartbeatTenant + "/hc"); len(topics) != 0 {
		t.Fatalf("heartbeat topic listed: %v", topics)
	}
	st, err := b.Stats(b.heartbeatTopic())
	must(t, "heartbeat stats", err)
	if st.MsgInCounter != 3 || st.MsgOutCounter != 3 {
		t.Fatalf("heartbeat topic stored %d and dispatched %d messages, want 3 and 3", st.MsgInCounter, st.MsgOutCounter)
	}
	if len(st.Subscriptions) != 0 || len(st.Publishers) != 0 {
		t.Fatalf("health check left %d subscriptions and %d producers", len(st.Subscriptions), len(st.Publishers))
	}
	// With the protocol listener gone the check fails with an error.
	b.ln.Close()
	if err := b.HealthCheck(ctxT(t)); err == nil {
		t.Fatal("health check passed with the listener closed")
	}
}
