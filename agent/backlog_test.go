package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// TestSubscriptionBacklog reads a subscription's backlog through the
// broker's admin API, as the instances do for
// meshfed_function_backlog_messages: unacknowledged messages count, and
// none are left once all are acknowledged (the producer batches, and a
// batch leaves the backlog when all of its messages are acknowledged).
func TestSubscriptionBacklog(t *testing.T) {
	f := newFederation(t, "a")
	b := f.brokers["a"]
	a, err := New(Config{Name: "agent-a", Cluster: "a", Servers: []string{f.srv.GRPCAddr()}, DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.clusters["a"] = &meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}, Spec: &meshfedv1.ClusterSpec{ServiceUrl: b.ServiceURL(), AdminUrl: b.AdminURL()}}
	a.mu.Unlock()

	const topic, sub = "persistent://public/default/backlog", "fn-sub"
	c := pulsarClient(t, b)
	consumer, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: sub, Type: pulsar.Shared})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	produce(t, c, topic, 0, 7)
	backlog := func(want int64) {
		t.Helper()
		controlplane.WaitFor(t, 10*time.Second, func() error {
			n, err := a.subscriptionBacklog(context.Background(), "a", []string{topic}, sub)
			if err != nil {
				return err
			}
			if n != want {
				return fmt.Errorf("backlog %d, want %d", n, want)
			}
			return nil
		})
	}
	backlog(7)
	for range 7 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := consumer.Receive(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := consumer.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	backlog(0)
	if _, err := a.subscriptionBacklog(context.Background(), "a", []string{topic}, "no-such-sub"); err == nil {
		t.Error("backlog of a missing subscription: no error")
	}
}

func TestBacklogGaugeAbsentUntilRead(t *testing.T) {
	m := newFunctionMetrics(time.Now)
	s := m.acquire(functionLabels("t", "n", "m", "f", 0, "a"))
	if n := countSeries(m, metricBacklog); n != 0 {
		t.Fatalf("%d backlog series before a read, want 0", n)
	}
	s.setBacklog(12)
	if n := countSeries(m, metricBacklog); n != 1 {
		t.Fatalf("%d backlog series after a read, want 1", n)
	}
	s.backlogUnknown()
	if n := countSeries(m, metricBacklog); n != 0 {
		t.Fatalf("%d backlog series after a failed read, want 0", n)
	}
}
