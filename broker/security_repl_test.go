package broker

import (
	"context"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
)

// TestReplicationBetweenSecuredBrokers replicates a namespace between two
// brokers that require tokens: each dials the other's pulsar+ssl:// and
// https:// listeners with its broker client token and the CA it trusts.
func TestReplicationBetweenSecuredBrokers(t *testing.T) {
	pki := newTestPKI(t)
	adminTok := testToken(t, "admin", time.Time{})
	client := func(c *Config) {
		c.BrokerClient = BrokerClientConfig{AuthPlugin: "org.apache.pulsar.client.impl.auth.AuthenticationToken",
			AuthParams: "token:" + adminTok, TLSEnabled: true, TrustCertsFile: pki.ca}
	}
	a := secureBroker(t, pki, func(c *Config) { c.ClusterName = "a"; client(c) })
	c := secureBroker(t, pki, func(c *Config) { c.ClusterName = "c"; client(c) })
	const ns = "public/default"
	for _, self := range []*Broker{a, c} {
		admin := secureAdmin(t, self, pki, adminTok)
		for _, other := range []*Broker{a, c} {
			if other == self {
				continue
			}
			must(t, "create cluster", admin.Clusters().Create(utils.ClusterData{Name: other.ClusterName(),
				ServiceURL: other.AdminURL(), ServiceURLTls: other.AdminURLTLS(),
				BrokerServiceURL: other.ServiceURL(), BrokerServiceURLTls: other.ServiceURLTLS()}))
		}
		must(t, "tenant", admin.Tenants().Update(utils.TenantData{Name: "public", AllowedClusters: []string{"a", "c"}}))
		must(t, "replication", admin.Namespaces().SetNamespaceReplicationClusters(ns, []string{"a", "c"}))
	}
	auth := pulsar.NewAuthenticationToken(adminTok)
	p, err := secureClient(t, a.ServiceURLTLS(), pki, auth).CreateProducer(pulsar.ProducerOptions{Topic: "geo-secure"})
	must(t, "producer", err)
	defer p.Close()
	cons, err := secureClient(t, c.ServiceURLTLS(), pki, auth).Subscribe(pulsar.ConsumerOptions{Topic: "geo-secure",
		SubscriptionName: "s", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	must(t, "subscribe", err)
	defer cons.Close()
	for i := 0; i < 10; i++ {
		_, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte{byte(i)}})
		must(t, "send", err)
	}
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		m, err := cons.Receive(ctx)
		cancel()
		must(t, "receive replicated", err)
		if m.Payload()[0] != byte(i) {
			t.Fatalf("message %d: got %d", i, m.Payload()[0])
		}
		must(t, "ack", cons.Ack(m))
	}
	st, err := a.Stats("persistent://public/default/geo-secure")
	must(t, "stats", err)
	if r := st.Replication["c"]; r == nil || !r.Connected {
		t.Fatalf("replicator to c: %+v", r)
	}
	a.mu.Lock()
	tp := a.topics["persistent://public/default/geo-secure"]
	a.mu.Unlock()
	tp.mu.Lock()
	url, adminURL := tp.replicators["c"].url, tp.replicators["c"].adminURL
	tp.mu.Unlock()
	if url != c.ServiceURLTLS() || adminURL != c.AdminURLTLS() {
		t.Fatalf("replicator dials %s and %s, want the TLS listeners", url, adminURL)
	}
}
