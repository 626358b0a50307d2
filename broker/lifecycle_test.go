package broker

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/internal/testkit"
)

func TestDelayedDelivery(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "delay", SubscriptionName: "s", Type: pulsar.Shared})
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "delay", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sent := time.Now()
	if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("later"), DeliverAfter: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("now")}); err != nil {
		t.Fatal(err)
	}
	got := drain(t, cons, 2)
	if string(got[0].Payload()) != "now" || string(got[1].Payload()) != "later" {
		t.Fatalf("order %s, %s", got[0].Payload(), got[1].Payload())
	}
	// Delivery times travel in whole milliseconds, so the message may come
	// up to 1 ms before sent+300ms measured in nanoseconds.
	if d := time.Since(sent); d < 299*time.Millisecond {
		t.Fatalf("delayed message arrived after %v", d)
	}
}

func TestTerminateAndUnload(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "term", SubscriptionName: "s"})
	produceN(t, c, "term", 3, nil)
	// Unload: clients reconnect and go on where they were.
	if code := adminDo(t, b, http.MethodPut, "/admin/v2/persistent/public/default/term/unload", ""); code != http.StatusNoContent {
		t.Fatalf("unload: HTTP %d", code)
	}
	drain(t, cons, 3)
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "term"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if code := adminDo(t, b, http.MethodPost, "/admin/v2/persistent/public/default/term/terminate", ""); code != http.StatusOK {
		t.Fatalf("terminate: HTTP %d", code)
	}
	// The broker closes the open producer; pulsar-client-go v0.19.0 then
	// closes it while a concurrent Send may still write to it (a data race
	// inside the client), so the refusal is checked on new producers.
	testkit.Eventually(t, waitTimeout, "new producers to be refused", func() bool {
		np, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "term", SendTimeout: time.Second})
		if err == nil {
			np.Close()
			return false
		}
		return strings.Contains(err.Error(), "erminated")
	})
	// Consumers keep working on a terminated topic.
	if _, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "term", SubscriptionName: "late"}); err != nil {
		t.Fatal(err)
	}
}
