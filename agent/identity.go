package agent

import (
	"sort"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// The effectively-once identity of an input message is built only from what
// geo-replication keeps: the partition (the same topic name in every
// cluster), the original producer name P, the publish time T (set by P's
// client, in milliseconds) and the message's place among P's messages with
// the same publish time in that partition:
//
//	m = (sizes of P's earlier entries with time T) + batch index
//
// Output k of the input is written with sequence id
//
//	seq = (T - 2020-01-01T00:00:00Z) << 23 | m << 9 | k
//
// by a producer of its own per (function, partition, P, output topic), so
// sequence ids grow in P's order and are the same in every cluster. The
// tracker below computes m while the instance consumes; the code here is
// pure (no I/O, no clock read): the instance passes positions, times and
// look-back results in.

const (
	// seqOutputBits hold the output index k.
	seqOutputBits = 9
	// seqOrdinalBits hold m, the ordinal among P's same-time messages.
	seqOrdinalBits = 14
	// seqTimeBits hold the publish time in ms since seqEpochMs: the bits an
	// int64 sequence id has left, enough until 2054.
	seqTimeBits = 63 - seqOrdinalBits - seqOutputBits

	// maxOutputsPerInput bounds the outputs of a proven input (k < 512).
	maxOutputsPerInput = 1 << seqOutputBits
	// maxSameTimeMessages bounds m (m < 16384).
	maxSameTimeMessages = 1 << seqOrdinalBits
)

// seqEpochMs is 2020-01-01T00:00:00Z in Unix milliseconds.
var seqEpochMs = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// maxPublishAhead is how far ahead of the agent's clock a publish time may
// be and still be trusted: a producer whose clock runs far ahead would
// otherwise raise its outputs' sequence ids so high that its later,
// correctly timed messages looked like duplicates after a restart.
const maxPublishAhead = 10 * time.Minute

// Reasons an input is unproven (the metric's "reason" attribute).
const (
	unprovenTimeRange    = "publish_time_out_of_range"
	unprovenTimeAhead    = "publish_time_ahead"
	unprovenBackwards    = "publish_time_backwards"
	unprovenOrdinal      = "same_time_overflow"
	unprovenOutputs      = "too_many_outputs"
	unprovenLookBackMiss = "look_back_failed"
)

// sequenceID is the sequence id of output k of the input (T, m). The caller
// has checked the bounds (identify does for T and m, the instance for k).
func sequenceID(publishMs, m int64, k int) int64 {
	return (publishMs-seqEpochMs)<<(seqOrdinalBits+seqOutputBits) | m<<seqOutputBits | int64(k)
}

// entryPos is a message's entry in one partition of one cluster: positions
// differ between clusters, so they only order and match entries inside one
// consumer session, never name an input.
type entryPos struct{ ledger, entry int64 }

func (p entryPos) cmp(q entryPos) int {
	switch {
	case p.ledger < q.ledger:
		return -1
	case p.ledger > q.ledger:
		return 1
	case p.entry < q.entry:
		return -1
	case p.entry > q.entry:
		return 1
	}
	return 0
}

// inputRef is what the tracker needs of a received message.
type inputRef struct {
	producer  string
	publishMs int64
	pos       entryPos
	// batchIdx is the message's index in its entry's batch: 0 outside a batch.
	batchIdx int32
	// batchSize is the number of messages in the entry: 1 outside a batch.
	batchSize int32
}

func refOf(msg pulsar.Message) inputRef {
	id := msg.ID()
	r := inputRef{producer: msg.ProducerName(), publishMs: msg.PublishTime().UnixMilli(),
		pos: entryPos{id.LedgerID(), id.EntryID()}, batchIdx: id.BatchIdx(), batchSize: id.BatchSize()}
	if r.batchIdx < 0 {
		r.batchIdx = 0
	}
	if r.batchSize <= 0 {
		r.batchSize = 1
	}
	return r
}

// verdict says what the tracker knows of an input.
type verdict uint8

const (
	// proven: ordinal holds m.
	proven verdict = iota
	// unproven: the identity cannot be established (why says why); the
	// input is processed at-least-once and never skipped as a duplicate.
	unproven
	// needLookBack: the tracker lacks P's earlier entries with this publish
	// time; the caller looks back and asks again.
	needLookBack
)

// identity is the tracker's answer for one input.
type identity struct {
	verdict verdict
	// ordinal is m when proven.
	ordinal int64
	// why names the reason when unproven.
	why string
}

// trackedEntry is one entry the tracker saw in the partition.
type trackedEntry struct {
	pos       entryPos
	producer  string
	publishMs int64
	size      int32
	// first is the ordinal m of the entry's first message; -1 when the
	// entry is unproven.
	first int64
	why   string
}

func (e *trackedEntry) identityOf(batchIdx int32) identity {
	if e.first < 0 {
		return identity{verdict: unproven, why: e.why}
	}
	m := e.first + int64(batchIdx)
	if m >= maxSameTimeMessages {
		return identity{verdict: unproven, why: unprovenOrdinal}
	}
	return identity{verdict: proven, ordinal: m}
}

// sameTimeGroup is a producer's entries with its newest publish time.
type sameTimeGroup struct {
	publishMs int64
	// next is the ordinal the producer's next entry with publishMs starts at.
	next int64
	// last is the position of the producer's newest entry in the group.
	last entryPos
}

// groupIdleMs: a producer group older than this (in publish time, behind
// the partition's newest) whose entries are all acknowledged is forgotten.
const groupIdleMs = int64(time.Minute / time.Millisecond)

// partitionTracker computes m for the messages of one partition in one
// consumer session. It keeps a window: every entry of the partition from
// the window's start on is seen in position order (the consumer's stream,
// after a look-back that read from the start to the consumer's first
// message). For a producer it has seen in the window it knows m; for a
// producer it has not, m is 0 only when the publish time is at least
// completeFrom (every entry with such a time lies inside the window),
// otherwise the caller must look back. Not safe for concurrent use: the
// instance's consumer loop owns it.
type partitionTracker struct {
	// established is set once a look-back opened the window.
	established bool
	// completeFrom: every producer's entries with a publish time at least
	// this lie inside the window.
	completeFrom int64
	// head is the newest entry recorded; hasHead is false before the first.
	head    entryPos
	hasHead bool
	// entries are the recorded entries newer than the acknowledged floor,
	// in position order, for redeliveries inside the session.
	entries []trackedEntry
	// groups by producer name.
	groups map[string]*sameTimeGroup
	// maxPublishMs is the newest publish time recorded.
	maxPublishMs int64
	// idleMs is groupIdleMs (tests shorten it).
	idleMs int64
}

func newPartitionTracker() *partitionTracker {
	return &partitionTracker{groups: map[string]*sameTimeGroup{}, idleMs: groupIdleMs}
}

// reset opens a new window for a look-back that starts at a time seek to
// fromMs - margin: from there on every entry with a publish time of at
// least fromMs lies inside the window. Everything known before is dropped.
func (t *partitionTracker) reset(fromMs int64) {
	*t = partitionTracker{established: true, completeFrom: fromMs, groups: map[string]*sameTimeGroup{}, idleMs: t.idleMs}
}

// identify answers for one message, recording its entry when it is new
// (after head). nowMs is the agent's clock.
func (t *partitionTracker) identify(r inputRef, nowMs int64) identity {
	if !t.established {
		return identity{verdict: needLookBack}
	}
	if t.hasHead && r.pos.cmp(t.head) <= 0 {
		e := t.find(r.pos)
		if e == nil || e.producer != r.producer || e.publishMs != r.publishMs || e.size != r.batchSize || r.batchIdx >= r.batchSize {
			// Redelivered from before what the window still holds, or
			// the stream is not what was recorded: start over.
			return identity{verdict: needLookBack}
		}
		return e.identityOf(r.batchIdx)
	}
	if r.batchIdx >= r.batchSize {
		return identity{verdict: unproven, why: unprovenOrdinal}
	}
	e, ok := t.add(r, nowMs)
	if !ok {
		return identity{verdict: needLookBack}
	}
	return e.identityOf(r.batchIdx)
}

// add records a new entry; false when its producer's history is missing.
func (t *partitionTracker) add(r inputRef, nowMs int64) (*trackedEntry, bool) {
	e := trackedEntry{pos: r.pos, producer: r.producer, publishMs: r.publishMs, size: r.batchSize, first: -1}
	switch {
	case r.publishMs < seqEpochMs || r.publishMs-seqEpochMs >= 1<<seqTimeBits:
		e.why = unprovenTimeRange
	case r.publishMs > nowMs+maxPublishAhead.Milliseconds():
		e.why = unprovenTimeAhead
	default:
		g := t.groups[r.producer]
		switch {
		case g == nil:
			if r.publishMs < t.completeFrom {
				return nil, false
			}
			g = &sameTimeGroup{publishMs: r.publishMs}
			t.groups[r.producer] = g
		case r.publishMs > g.publishMs:
			g.publishMs, g.next = r.publishMs, 0
		case r.publishMs < g.publishMs:
			// P's clock went back: this entry's ordinal among P's
			// messages with its time is unknowable, and giving it a lower
			// sequence id than P's newest would make it a "duplicate".
			e.why = unprovenBackwards
		}
		if e.why == "" {
			e.first = g.next
			g.next += int64(r.batchSize)
			g.last = r.pos
		}
	}
	t.entries = append(t.entries, e)
	t.head, t.hasHead = r.pos, true
	t.maxPublishMs = max(t.maxPublishMs, r.publishMs)
	return &t.entries[len(t.entries)-1], true
}

// find returns the recorded entry at pos, or nil.
func (t *partitionTracker) find(pos entryPos) *trackedEntry {
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].pos.cmp(pos) >= 0 })
	if i < len(t.entries) && t.entries[i].pos == pos {
		return &t.entries[i]
	}
	return nil
}

// prune forgets entries at or before acked (acknowledged cumulatively, so
// only a reconnect can redeliver them, and a look-back then answers), and
// producer groups idle for a minute of publish time whose entries are all
// acknowledged. Forgetting a group raises completeFrom past its time, so a
// producer that comes back with that time is looked back for, never
// numbered from 0 again.
func (t *partitionTracker) prune(acked entryPos) {
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].pos.cmp(acked) > 0 })
	if i > 0 {
		t.entries = append(t.entries[:0:0], t.entries[i:]...)
	}
	for p, g := range t.groups {
		if g.last.cmp(acked) <= 0 && g.publishMs < t.maxPublishMs-t.idleMs {
			delete(t.groups, p)
			t.completeFrom = max(t.completeFrom, g.publishMs+1)
		}
	}
}
