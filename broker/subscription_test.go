package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func produceN(t *testing.T, c pulsar.Client, topic string, n int, key func(int) string) []pulsar.MessageID {
	t.Helper()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ids []pulsar.MessageID
	for i := 0; i < n; i++ {
		m := &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(i))}
		if key != nil {
			m.Key = key(i)
		}
		id, err := p.Send(ctxT(t), m)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func subscribe(t *testing.T, c pulsar.Client, o pulsar.ConsumerOptions) pulsar.Consumer {
	t.Helper()
	if o.SubscriptionInitialPosition == 0 {
		o.SubscriptionInitialPosition = pulsar.SubscriptionPositionEarliest
	}
	cons, err := c.Subscribe(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	return cons
}

// drain receives until n messages arrived, acking each.
func drain(t *testing.T, cons pulsar.Consumer, n int) []pulsar.Message {
	t.Helper()
	var out []pulsar.Message
	for len(out) < n {
		m, err := cons.Receive(ctxT(t))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestExclusiveRejectsSecondConsumer(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	subscribe(t, c, pulsar.ConsumerOptions{Topic: "excl", SubscriptionName: "s", Type: pulsar.Exclusive})
	_, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "excl", SubscriptionName: "s", Type: pulsar.Exclusive})
	if err == nil {
		t.Fatal("second exclusive consumer was accepted")
	}
	_, err = c.Subscribe(pulsar.ConsumerOptions{Topic: "excl", SubscriptionName: "s", Type: pulsar.Shared})
	if err == nil {
		t.Fatal("consumer of another type was accepted on an exclusive subscription")
	}
}

func TestSharedSpreadsMessages(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	c1 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "shared", SubscriptionName: "s", Type: pulsar.Shared, ReceiverQueueSize: 5})
	c2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "shared", SubscriptionName: "s", Type: pulsar.Shared, ReceiverQueueSize: 5})
	const n = 100
	produceN(t, c, "shared", n, nil)
	seen := map[string]int{}
	counts := [2]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(15 * time.Second)
	for i, cons := range []pulsar.Consumer{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				m, err := cons.Receive(ctx)
				cancel()
				mu.Lock()
				done := len(seen) == n
				mu.Unlock()
				if err != nil {
					if done {
						return
					}
					continue
				}
				_ = cons.Ack(m)
				mu.Lock()
				seen[string(m.Payload())]++
				counts[i]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("received %d distinct messages of %d", len(seen), n)
	}
	for k, v := range seen {
		if v != 1 {
			t.Errorf("message %s delivered %d times", k, v)
		}
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Fatalf("shared subscription did not spread messages: %v", counts)
	}
}

func TestFailoverActiveConsumer(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	c1 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "fo", SubscriptionName: "s", Type: pulsar.Failover, Name: "a"})
	c2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "fo", SubscriptionName: "s", Type: pulsar.Failover, Name: "b"})
	produceN(t, c, "fo", 10, nil)
	got := drain(t, c1, 10)
	for i, m := range got {
		if string(m.Payload()) != fmt.Sprint(i) {
			t.Fatalf("out of order: %d got %s", i, m.Payload())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if m, err := c2.Receive(ctx); err == nil {
		t.Fatalf("standby consumer received %s", m.Payload())
	}
	cancel()
	c1.Close()
	produceN(t, c, "fo", 5, nil)
	drain(t, c2, 5)
}

func TestKeySharedKeepsKeysTogether(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	c1 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "ks", SubscriptionName: "s", Type: pulsar.KeyShared})
	c2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "ks", SubscriptionName: "s", Type: pulsar.KeyShared})
	const n = 200
	produceN(t, c, "ks", n, func(i int) string { return fmt.Sprintf("key-%d", i%20) })
	owner := map[string]int{}
	total := 0
	last := map[string]int{}
	for total < n {
		for ci, cons := range []pulsar.Consumer{c1, c2} {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			m, err := cons.Receive(ctx)
			cancel()
			if err != nil {
				continue
			}
			_ = cons.Ack(m)
			total++
			if o, ok := owner[m.Key()]; ok && o != ci {
				t.Fatalf("key %s went to both consumers", m.Key())
			}
			owner[m.Key()] = ci
			var v int
			fmt.Sscan(string(m.Payload()), &v)
			if p, ok := last[m.Key()]; ok && v < p {
				t.Fatalf("key %s out of order: %d after %d", m.Key(), v, p)
			}
			last[m.Key()] = v
		}
	}
	used := map[int]bool{}
	for _, o := range owner {
		used[o] = true
	}
	if len(used) != 2 {
		t.Fatalf("all keys went to one consumer")
	}
}

func TestNackRedeliversWithCount(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "nack", SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 10 * time.Millisecond})
	produceN(t, c, "nack", 3, nil)
	for i := 0; i < 3; i++ {
		m, err := cons.Receive(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload()) == "1" {
			cons.Nack(m)
		} else {
			_ = cons.Ack(m)
		}
	}
	m, err := cons.Receive(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload()) != "1" || m.RedeliveryCount() != 1 {
		t.Fatalf("got %s with redelivery count %d, want 1 with 1", m.Payload(), m.RedeliveryCount())
	}
}

func TestCloseRedeliversUnacked(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	c1, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "close", SubscriptionName: "s", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	produceN(t, c, "close", 10, nil)
	for i := 0; i < 4; i++ {
		m, err := c1.Receive(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := c1.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	c1.Close()
	c2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "close", SubscriptionName: "s", Type: pulsar.Shared})
	got := drain(t, c2, 8)
	seen := map[string]bool{}
	for _, m := range got {
		seen[string(m.Payload())] = true
	}
	for i := 2; i < 10; i++ {
		if !seen[fmt.Sprint(i)] {
			t.Fatalf("message %d not redelivered; got %v", i, seen)
		}
	}
}
