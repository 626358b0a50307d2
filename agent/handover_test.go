package agent

import (
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
)

// testMsg is a received message as the handover sees it.
type testMsg struct {
	pulsar.Message
	topic string
	id    pulsar.MessageID
}

func (m testMsg) Topic() string        { return m.topic }
func (m testMsg) ID() pulsar.MessageID { return m.id }
func at(topic string, ledger, entry int64) testMsg {
	return testMsg{topic: topic, id: pulsar.NewMessageID(ledger, entry, -1, 0)}
}

func TestHandoverStaleAfterALoss(t *testing.T) {
	h := newHandover()
	const p = "persistent://public/default/in-partition-1"
	before, kept := at(p, 7, 1), at("persistent://public/default/in-partition-0", 7, 1)
	h.BeforeConsume(pulsar.ConsumerMessage{Message: before})
	h.BeforeConsume(pulsar.ConsumerMessage{Message: kept})
	h.BecameInactive(nil, p, 1)
	if got := h.toRelease(); len(got) != 1 || got[0] != p {
		t.Fatalf("toRelease = %v, want [%s]", got, p)
	}
	if got := h.toRelease(); len(got) != 0 {
		t.Errorf("released twice: %v", got)
	}
	h.BecameActive(nil, p, 1)
	after := at(p, 7, 1)
	h.BeforeConsume(pulsar.ConsumerMessage{Message: after})
	if !h.stale(before) {
		t.Error("a message received before the loss is not stale")
	}
	if h.stale(kept) {
		t.Error("a message of another partition is stale")
	}
	if h.stale(after) {
		t.Error("a message received after taking the partition back is stale")
	}
	select {
	case <-h.kick:
	default:
		t.Error("a loss did not wake the loop")
	}
}

func TestHandoverGapped(t *testing.T) {
	h := newHandover()
	const p = "p"
	for i, c := range []struct {
		ledger, entry int64
		want          bool
	}{
		{7, 10, false}, // first
		{7, 11, false},
		{7, 11, false}, // another message of the same entry (a batch)
		{7, 15, true},  // entries 12..14 skipped
		{7, 3, false},  // a rewind: the tracker's business
		{7, 4, false},
		{9, 0, true}, // a new ledger
	} {
		if got := h.gapped(at(p, c.ledger, c.entry)); got != c.want {
			t.Errorf("step %d (%d:%d): gapped = %v, want %v", i, c.ledger, c.entry, got, c.want)
		}
	}
}
