package agent

import (
	"context"
	"sync"

	"github.com/apache/pulsar-client-go/pulsar"
)

// handover lets an effectively-once instance give up and take over input
// partitions inside one consumer session. On a Failover subscription the
// broker gives each partition to one consumer and moves it when consumers
// come and go (replicas added or removed): the consumer that loses a
// partition is told so, and the broker redelivers everything it had not
// acknowledged to the new owner, from the first unacknowledged message.
//
// The loser must then (1) process nothing more of the partition that it had
// received before the loss — those messages sit in its client's queue and
// now belong to the new owner; processing one after the owner wrote later
// outputs would give it a sequence id below theirs, and de-duplication would
// drop its outputs — and (2) release the partition: close its
// effectively-once producers (their names are deterministic, so the new
// owner needs them) once their sends are confirmed, and forget the
// partition's acknowledgement and identity state, so that a later takeover
// starts afresh from the broker's redelivery.
//
// The client calls the listener and the interceptor on the connection's
// goroutine, in the order of the broker's commands, so a message stamped
// with the partition's generation at its receipt is stale exactly when a
// loss came after it.
type handover struct {
	// mu guards the fields below.
	mu sync.Mutex
	// gen counts each partition's active/inactive changes.
	gen map[string]uint64
	// lostAt is the generation of each partition's latest loss.
	lostAt map[string]uint64
	// stamps holds the generation at receipt of messages not yet taken
	// by the consumer loop.
	stamps map[pulsar.Message]uint64
	// released holds the latest loss the loop released, per partition.
	released map[string]uint64
	// kick wakes the consumer loop after a loss.
	kick chan struct{}

	// last is the newest entry the consumer loop accepted per partition
	// (used by the loop only, without mu).
	last map[string]entryPos
}

var (
	_ pulsar.ConsumerEventListener = (*handover)(nil)
	_ pulsar.ConsumerInterceptor   = (*handover)(nil)
)

func newHandover() *handover {
	return &handover{gen: map[string]uint64{}, lostAt: map[string]uint64{}, stamps: map[pulsar.Message]uint64{},
		released: map[string]uint64{}, kick: make(chan struct{}, 1), last: map[string]entryPos{}}
}

// BecameActive implements pulsar.ConsumerEventListener.
func (h *handover) BecameActive(_ pulsar.Consumer, topic string, _ int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen[topic]++
}

// BecameInactive implements pulsar.ConsumerEventListener.
func (h *handover) BecameInactive(_ pulsar.Consumer, topic string, _ int32) {
	h.mu.Lock()
	h.gen[topic]++
	h.lostAt[topic] = h.gen[topic]
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// BeforeConsume implements pulsar.ConsumerInterceptor: it stamps a
// received message with its partition's generation.
func (h *handover) BeforeConsume(m pulsar.ConsumerMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stamps[m.Message] = h.gen[m.Message.Topic()]
}

// OnAcknowledge implements pulsar.ConsumerInterceptor.
func (h *handover) OnAcknowledge(pulsar.Consumer, pulsar.MessageID) {}

// OnNegativeAcksSend implements pulsar.ConsumerInterceptor.
func (h *handover) OnNegativeAcksSend(pulsar.Consumer, []pulsar.MessageID) {}

// stale reports whether msg was received before its partition was lost
// (the loop must skip it), and forgets its stamp.
func (h *handover) stale(msg pulsar.Message) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.stamps[msg]
	delete(h.stamps, msg)
	return ok && g < h.lostAt[msg.Topic()]
}

// gapped reports whether msg skips entries of its partition after the
// last one the loop accepted. The identity tracker numbers a producer's
// messages assuming it sees every entry of the partition; a partition taken
// over from another replica breaks that: the previous owner may acknowledge
// entries after the broker queued them for this replica, and the broker
// then skips them. The caller then makes the tracker look back. A new
// ledger counts as a gap (it cannot be told from one); a rewind does not
// (the tracker recognises redeliveries itself).
func (h *handover) gapped(msg pulsar.Message) bool {
	id := msg.ID()
	pos := entryPos{id.LedgerID(), id.EntryID()}
	last, seen := h.last[msg.Topic()]
	h.last[msg.Topic()] = pos
	return seen && (pos.ledger != last.ledger || pos.entry > last.entry+1)
}

// toRelease returns the partitions lost since the loop last released them,
// and marks them released.
func (h *handover) toRelease() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for t, g := range h.lostAt {
		if h.released[t] < g {
			h.released[t] = g
			out = append(out, t)
		}
	}
	return out
}

// releasePartitions gives up the partitions lost since the last call:
// their effectively-once producers are flushed and closed and their
// acknowledgement and identity state forgotten. Called by the consumer
// loop, which owns the producers' connecting and the identity trackers.
func (i *instance) releasePartitions(h *handover, prods *producerSet, ack *acker, ids *inputIdentities) {
	for _, t := range h.toRelease() {
		delete(h.last, t)
		n := prods.closePartition(t)
		ack.forget(t)
		if ids != nil {
			delete(ids.trackers, t)
		}
		mHandovers.Add(context.Background(), 1, *i.attrs.Load())
		i.logger.Info("input partition handed over to another replica", "partition", t, "producers_closed", n)
	}
}

// closePartition flushes and closes the effectively-once producers of
// input partition t and returns how many there were.
func (p *producerSet) closePartition(t string) int {
	var closing []pulsar.Producer
	p.mu.Lock()
	for k, ep := range p.eo {
		if k.partition == t {
			closing = append(closing, ep.p)
			delete(p.eo, k)
		}
	}
	p.mu.Unlock()
	for _, pr := range closing {
		_ = pr.FlushWithCtx(context.Background())
		pr.Close()
	}
	return len(closing)
}

// forget drops what the acker holds of partition t: its unacknowledged
// inputs go to the partition's new owner, which the broker redelivers them to.
func (a *acker) forget(t string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.parts, t)
}
