package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// ackMode is how an instance acknowledges its inputs.
type ackMode uint8

const (
	// ackOnReceipt (at-most-once): the consumer loop acknowledges on
	// receipt; the acker only follows publish times for the watermark.
	ackOnReceipt ackMode = iota
	// ackEach (at-least-once): each input once processed; a failed one is
	// negatively acknowledged and redelivered.
	ackEach
	// ackInOrder (effectively-once): cumulatively, per partition, up to
	// the newest input before which every input is processed. The
	// subscription never holds an acknowledged input after an
	// unacknowledged one, so a consumer session always receives a
	// partition's entries without gaps — what the identity tracker needs.
	ackInOrder
)

// watermarkEvery bounds how often watermarks are committed.
const watermarkEvery = time.Second

// finalCommitTimeout bounds the state commit of the last flush when an
// instance stops: an agent that lost the control plane (its lease ran out)
// must release its subscription at once, not wait on commits; inputs whose
// state could not be committed are left unacknowledged and redelivered.
const finalCommitTimeout = 500 * time.Millisecond

// ticket is one received input until it is acknowledged.
type ticket struct {
	msg       pulsar.Message
	publishMs int64
	// done: processed; nacked: negatively acknowledged, kept until its
	// redelivery arrives. Both guarded by acker.mu.
	done, nacked bool
	// appliedKey and seq identify a proven input under effectively_once
	// (appliedKey empty: unproven or another guarantee); applied: its
	// state changes were committed before a crash, so they are not made
	// again. Set by the consumer loop before the input is processed.
	appliedKey string
	seq        int64
	applied    bool
}

// partitionAcks is the acker's view of one input partition.
type partitionAcks struct {
	name string
	// pending are the partition's received inputs not yet acknowledged,
	// in receipt order.
	pending []*ticket
	// nacked counts pending tickets negatively acknowledged (ackEach).
	nacked int
	// maxPublishMs is the newest publish time received; zero: none.
	maxPublishMs int64
	// floor is the newest position acknowledged cumulatively (ackInOrder);
	// hasFloor is false before the first.
	floor    entryPos
	hasFloor bool
	// committed is the last watermark committed; zero: none.
	committed int64
}

// watermarkLocked is the publish time before which every input of the
// partition has been processed: the oldest publish time still pending,
// else the newest received. Zero when nothing was received.
func (p *partitionAcks) watermarkLocked() int64 {
	if len(p.pending) == 0 {
		return p.maxPublishMs
	}
	wm := p.pending[0].publishMs
	for _, t := range p.pending[1:] {
		wm = min(wm, t.publishMs)
	}
	return wm
}

// acker acknowledges processed inputs in batches, committing the
// function's buffered state changes — and, at most once a second, the
// input partitions' watermarks — first: an input is acknowledged only
// after its outputs were confirmed and its state change is durable.
type acker struct {
	consumer pulsar.Consumer
	state    *fnState
	logger   *slog.Logger
	mode     ackMode
	// watermarkKey names a partition's watermark in the function's state.
	watermarkKey func(partition string) string
	// failure restarts the instance when a state commit fails under
	// ackInOrder (negative acknowledgements would reorder the partition).
	failure *runFailure
	now     func() time.Time

	kick chan struct{}
	stop chan struct{}
	// ctx ends with close, cutting short a commit under way.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards parts, ready, closed, cut and lastWatermark.
	mu    sync.Mutex
	parts map[string]*partitionAcks
	// ready are processed inputs not yet acknowledged (ackEach).
	ready  []*ticket
	closed bool
	// cut: close was asked to cut commits short.
	cut           bool
	lastWatermark time.Time
}

func newAcker(c pulsar.Consumer, st *fnState, logger *slog.Logger, mode ackMode, watermarkKey func(string) string, failure *runFailure, now func() time.Time) *acker {
	ctx, cancel := context.WithCancel(context.Background())
	return &acker{consumer: c, state: st, logger: logger, mode: mode, watermarkKey: watermarkKey, failure: failure, now: now,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), ctx: ctx, cancel: cancel, parts: map[string]*partitionAcks{}}
}

// track registers a received input; the consumer loop calls it before
// processing, in receipt order.
func (a *acker) track(m pulsar.Message) *ticket {
	t := &ticket{msg: m, publishMs: m.PublishTime().UnixMilli()}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.parts[m.Topic()]
	if p == nil {
		p = &partitionAcks{name: m.Topic()}
		a.parts[m.Topic()] = p
	}
	p.maxPublishMs = max(p.maxPublishMs, t.publishMs)
	if a.mode == ackOnReceipt {
		return t
	}
	if a.mode == ackEach && p.nacked > 0 {
		// A redelivered input replaces its nacked ticket.
		for i, old := range p.pending {
			if old.nacked && sameID(old.msg.ID(), m.ID()) {
				p.pending = append(p.pending[:i:i], p.pending[i+1:]...)
				p.nacked--
				break
			}
		}
	}
	p.pending = append(p.pending, t)
	return t
}

func sameID(a, b pulsar.MessageID) bool {
	return a.LedgerID() == b.LedgerID() && a.EntryID() == b.EntryID() && a.BatchIdx() == b.BatchIdx()
}

// done marks an input processed. Safe from producer callbacks, also after
// close: an input completed after the instance stopped is left
// unacknowledged and redelivered.
func (a *acker) done(t *ticket) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.mode == ackOnReceipt {
		return
	}
	t.done = true
	if a.mode == ackEach {
		a.ready = append(a.ready, t)
		if len(a.ready) >= 1000 {
			select {
			case a.kick <- struct{}{}:
			default:
			}
		}
	}
}

// nack redelivers an input later (ackEach only).
func (a *acker) nack(t *ticket) {
	a.mu.Lock()
	if !t.nacked {
		t.nacked = true
		if p := a.parts[t.msg.Topic()]; p != nil {
			p.nacked++
		}
	}
	a.mu.Unlock()
	a.consumer.Nack(t.msg)
}

// floor returns the newest position of partition acknowledged cumulatively.
func (a *acker) floor(partition string) (entryPos, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.parts[partition]
	if p == nil {
		return entryPos{}, false
	}
	return p.floor, p.hasFloor
}

// close stops run after it acknowledged everything processed whose state
// it can commit. With cut (the instance is stopping: its agent may have
// lost the control plane) a commit under way is cut short and the last
// one gets finalCommitTimeout; their inputs are redelivered. Without (a
// restart after a failure) commits run to their end: a commit cut short
// may still be applied, and its inputs' changes would then be applied
// again when they are redelivered.
func (a *acker) close(cut bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed, a.cut = true, cut
		close(a.stop)
		if cut {
			a.cancel()
		}
	}
}

func (a *acker) run() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			a.flush(true)
			a.cancel()
			return
		case <-a.kick:
		case <-t.C:
		}
		a.flush(false)
	}
}

// flush commits state and due watermarks, then acknowledges. The final
// flush of a stopping instance commits no watermark (they are progress
// hints, not worth a wait) and, when close cut it short, gives the commit
// finalCommitTimeout.
func (a *acker) flush(final bool) {
	now := a.now()
	a.mu.Lock()
	ready := a.ready
	a.ready = nil
	// acking holds the inputs this flush acknowledges: only their state
	// changes are committed with it (under a strict state).
	acking := map[*ticket]bool{}
	for _, t := range ready {
		acking[t] = true
	}
	cumulative := map[*partitionAcks]*ticket{}
	if a.mode == ackInOrder {
		for _, p := range a.parts {
			n := 0
			for n < len(p.pending) && p.pending[n].done {
				acking[p.pending[n]] = true
				n++
			}
			if n > 0 {
				cumulative[p] = p.pending[n-1]
				p.pending = append(p.pending[:0:0], p.pending[n:]...)
			}
		}
	}
	// applied: the newest sequence acknowledged now per applied key.
	applied := map[string]int64{}
	for t := range acking {
		if t.appliedKey != "" && t.seq > applied[t.appliedKey] {
			applied[t.appliedKey] = t.seq
		}
	}
	var ops []*meshfedv1.StateOp
	marks := map[*partitionAcks]int64{}
	if !final && now.Sub(a.lastWatermark) >= watermarkEvery {
		a.lastWatermark = now
		for _, p := range a.parts {
			if wm := p.watermarkLocked(); wm > 0 && wm != p.committed {
				marks[p] = wm
				ops = append(ops, &meshfedv1.StateOp{Key: a.watermarkKey(p.name), Op: &meshfedv1.StateOp_Put{Put: []byte(strconv.FormatInt(wm, 10))}})
			}
		}
	}
	a.mu.Unlock()
	if len(ready) == 0 && len(cumulative) == 0 && len(ops) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	a.mu.Lock()
	cut := a.cut
	a.mu.Unlock()
	if final && cut {
		ctx, cancel = context.WithTimeout(context.Background(), finalCommitTimeout)
	}
	err := a.state.flush(ctx, func(t *ticket) bool { return acking[t] }, applied, ops...)
	cancel()
	if err != nil {
		if a.mode == ackInOrder {
			a.logger.Warn("state commit failed; its inputs are not acknowledged and are processed again after a restart", "err", err, "final", final)
			a.failure.fail(fmt.Errorf("inputs processed but not acknowledged: %w", err))
			return
		}
		for _, t := range ready {
			a.nack(t)
		}
		a.logger.Warn("state commit failed; inputs will be redelivered", "err", err, "messages", len(ready))
		return
	}
	a.mu.Lock()
	for p, wm := range marks {
		p.committed = wm
	}
	if a.mode == ackEach && len(ready) > 0 {
		acked := make(map[*ticket]bool, len(ready))
		for _, t := range ready {
			acked[t] = true
		}
		for _, p := range a.parts {
			kept := p.pending[:0]
			for _, t := range p.pending {
				if !acked[t] {
					kept = append(kept, t)
				}
			}
			clear(p.pending[len(kept):])
			p.pending = kept
		}
	}
	for p, t := range cumulative {
		// A cumulative acknowledgement inside a batch leaves the batch's
		// entry to be redelivered: the floor is the entry before it.
		id := t.msg.ID()
		pos := entryPos{id.LedgerID(), id.EntryID()}
		if id.BatchSize() > 1 && id.BatchIdx() < id.BatchSize()-1 {
			pos.entry--
		}
		if pos.entry >= 0 {
			p.floor, p.hasFloor = pos, true
		}
	}
	a.mu.Unlock()
	for _, t := range ready {
		if err := a.consumer.Ack(t.msg); err != nil {
			a.logger.Debug("ack", "err", err)
		}
	}
	for _, t := range cumulative {
		if err := a.consumer.AckCumulative(t.msg); err != nil {
			a.logger.Debug("ack cumulative", "err", err)
		}
	}
}
