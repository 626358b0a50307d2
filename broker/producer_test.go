package broker

import (
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/internal/testkit"
)

func TestProducerAccessModes(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	p1, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "excl-p", ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "excl-p", ProducerAccessMode: pulsar.ProducerAccessModeExclusive}); err == nil || !strings.Contains(err.Error(), "ProducerFenced") {
		t.Fatalf("second exclusive producer: %v", err)
	}
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "excl-p"}); err == nil || !strings.Contains(err.Error(), "ProducerBusy") {
		t.Fatalf("shared producer next to an exclusive one: %v", err)
	}
	type result struct {
		p   pulsar.Producer
		err error
	}
	waited := make(chan result, 1)
	go func() {
		p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "excl-p", ProducerAccessMode: pulsar.ProducerAccessModeWaitForExclusive})
		waited <- result{p, err}
	}()
	testkit.Eventually(t, waitTimeout, "the waiting producer to queue", func() bool {
		tp, err := b.getTopic("excl-p", false)
		if err != nil {
			return false
		}
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return len(tp.exclusiveWait) == 1
	})
	p1.Close()
	r := <-waited
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.p.Close()
	if _, err := r.p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "excl-p", Name: r.p.Name()}); err == nil {
		t.Fatal("duplicate producer name accepted")
	}
}
