package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/broker"
)

// Identities computed by a consumer that starts anywhere in a partition —
// through look-backs with a real Reader and time seek — equal those
// computed over the whole partition, for batched messages of two producers
// sharing milliseconds.
func TestLookBackMatchesAFullRead(t *testing.T) {
	b := broker.TestBroker(t, func(c *broker.Config) { c.ClusterName, c.Logger = "a", quiet() })
	c := pulsarClient(t, b)
	topic := "persistent://public/default/lb"
	var prods []pulsar.Producer
	for _, name := range []string{"src", "src2"} {
		p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: name, BatchingMaxMessages: 5, BatchingMaxPublishDelay: 2 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		prods = append(prods, p)
	}
	const n = 400
	for i := 0; i < n; i++ {
		prods[i%3%2].SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	for _, p := range prods {
		if err := p.FlushWithCtx(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	all := drainMessages(t, c, topic, n, 20*time.Second)
	if len(all) != n {
		t.Fatalf("read %d of %d messages", len(all), n)
	}
	// The reference: each message's ordinal among its producer's messages
	// with its publish time, over the whole partition.
	want := make([]int64, n)
	seen := map[string]int64{}
	sameMs, batched := 0, 0
	for i, m := range all {
		k := fmt.Sprintf("%s@%d", m.ProducerName(), m.PublishTime().UnixMilli())
		want[i] = seen[k]
		seen[k]++
		if want[i] > 0 {
			sameMs++
		}
		if m.ID().BatchSize() > 1 {
			batched++
		}
	}
	if sameMs == 0 || batched == 0 {
		t.Fatalf("%d messages share a millisecond with an earlier one, %d are batched: the test covers neither", sameMs, batched)
	}
	for _, start := range []int{0, 1, 7, n / 2, n - 3} {
		t.Run(fmt.Sprint("from ", start), func(t *testing.T) {
			r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: all[start].ID(), StartMessageIDInclusive: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			lookBacks := 0
			ids := newInputIdentities(c, nil, time.Now, func() { lookBacks++ })
			for i := start; i < n; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				m, err := r.Next(ctx)
				cancel()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if string(m.Payload()) != string(all[i].Payload()) {
					t.Fatalf("message %d is %q, want %q", i, m.Payload(), all[i].Payload())
				}
				got, err := ids.identify(context.Background(), m)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if got.verdict != proven || got.ordinal != want[i] {
					t.Fatalf("message %d (%s at %d, id %s): %+v, want ordinal %d", i, m.ProducerName(), m.PublishTime().UnixMilli(), m.ID(), got, want[i])
				}
			}
			if lookBacks < 1 || lookBacks > 2 {
				t.Fatalf("%d look-backs, want one per producer at most", lookBacks)
			}
		})
	}
}
