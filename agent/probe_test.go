package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/broker"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// silentListener accepts TCP connections and never answers on them.
func silentListener(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// probeAgent is an agent (not running) whose own cluster has the given URLs.
func probeAgent(t *testing.T, serviceURL, adminURL string) *Agent {
	t.Helper()
	a, err := New(Config{Name: "probe", Cluster: "a", Servers: []string{"127.0.0.1:1"}, DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	a.clusters["a"] = &meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}, Spec: &meshfedv1.ClusterSpec{ServiceUrl: serviceURL, AdminUrl: adminURL}}
	t.Cleanup(func() { a.cp.Close(); a.pulsar.closeAll(); a.probe.closeClient() })
	return a
}

func TestBrokerProbe(t *testing.T) {
	b := broker.TestBroker(t, func(c *broker.Config) { c.ClusterName, c.Logger = "a", quiet() })
	silent := silentListener(t)
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	cases := []struct {
		name           string
		service, admin string
		reachable      bool
	}{
		{"health check through the admin API", b.ServiceURL(), b.AdminURL(), true},
		{"binary lookup without an admin URL", b.ServiceURL(), "", true},
		{"binary lookup when the admin API lacks the health endpoint", b.ServiceURL(), notFound.URL, true},
		{"admin API accepts TCP but never answers", b.ServiceURL(), "http://" + silent, false},
		{"broker accepts TCP but never answers", "pulsar://" + silent, "", false},
		{"both accept TCP but never answer", "pulsar://" + silent, "http://" + silent, false},
		{"nothing listens", "pulsar://" + deadAddr, "http://" + deadAddr, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := probeAgent(t, c.service, c.admin)
			a.probe.timeout = 300 * time.Millisecond
			start := time.Now()
			err := a.probe.probe(context.Background())
			took := time.Since(start)
			if (err == nil) != c.reachable {
				t.Fatalf("probe: %v, want reachable=%v", err, c.reachable)
			}
			if took > a.probe.timeout+time.Second {
				t.Fatalf("probe took %s, more than its %s timeout", took, a.probe.timeout)
			}
			// The heartbeat's verdict turns after probeFailuresDown failures.
			var verdict bool
			for n := 0; n < probeFailuresDown; n++ {
				verdict = a.probe.check(context.Background())
			}
			if verdict != c.reachable {
				t.Fatalf("after %d probes BrokerReachable=%v, want %v", probeFailuresDown, verdict, c.reachable)
			}
		})
	}
}
