package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestProduceConsume(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, batching := range []bool{false, true} {
		t.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			topic := fmt.Sprintf("persistent://public/default/pc-%v", batching)
			cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			prod, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: !batching})
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			const n = 100
			for i := 0; i < n; i++ {
				prod.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(i)), Key: fmt.Sprint(i % 3)}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						t.Error(err)
					}
				})
			}
			if err := prod.Flush(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				m, err := cons.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := string(m.Payload()); got != fmt.Sprint(i) {
					t.Fatalf("message %d: got %q", i, got)
				}
				if err := cons.Ack(m); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
