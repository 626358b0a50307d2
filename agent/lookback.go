package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// lookBackMargin is how far before an input's publish time a look-back
// seeks. A time seek on Pulsar lands after the newest entry published at
// or before the time sought, found by a binary search that assumes publish
// times grow along the partition; the margin absorbs the clock skew
// between the partition's producers.
const lookBackMargin = time.Second

// lookBackTimeout bounds one look-back.
const lookBackTimeout = 30 * time.Second

// inputIdentities gives an instance's effectively-once inputs their
// identity: one tracker per input partition for the consumer session, and
// a look-back — a Reader seeked by publish time to T − 1 s, read up to the
// input — when a tracker lacks a producer's history.
type inputIdentities struct {
	in  pulsar.Client
	ack *acker
	now func() time.Time
	// onLookBack is called once per look-back (metrics).
	onLookBack func()
	// trackers by partition topic; only the consumer loop uses them.
	trackers map[string]*partitionTracker
}

func newInputIdentities(in pulsar.Client, ack *acker, now func() time.Time, onLookBack func()) *inputIdentities {
	return &inputIdentities{in: in, ack: ack, now: now, onLookBack: onLookBack, trackers: map[string]*partitionTracker{}}
}

// identify returns msg's identity. An error (the look-back reader could not
// be created or read) means the instance should restart; an input whose
// earlier entries cannot be read at all is unproven.
func (ids *inputIdentities) identify(ctx context.Context, msg pulsar.Message) (identity, error) {
	partition := msg.Topic()
	tr := ids.trackers[partition]
	if tr == nil {
		tr = newPartitionTracker()
		ids.trackers[partition] = tr
	}
	if ids.ack != nil {
		if floor, ok := ids.ack.floor(partition); ok {
			tr.prune(floor)
		}
	}
	r := refOf(msg)
	got := tr.identify(r, ids.now().UnixMilli())
	if got.verdict != needLookBack {
		return got, nil
	}
	ids.onLookBack()
	err := ids.lookBack(ctx, tr, partition, r)
	switch {
	case errors.Is(err, errLookBackMissed):
		return identity{verdict: unproven, why: unprovenLookBackMiss}, nil
	case err != nil:
		return identity{}, err
	}
	got = tr.identify(r, ids.now().UnixMilli())
	if got.verdict == needLookBack {
		// Cannot happen: the window now covers the message's time.
		return identity{verdict: unproven, why: unprovenLookBackMiss}, nil
	}
	return got, nil
}

// lookBack opens a new window on tr: it reads partition from a time seek
// to r's publish time − lookBackMargin up to r's entry (not included).
func (ids *inputIdentities) lookBack(ctx context.Context, tr *partitionTracker, partition string, r inputRef) error {
	ctx, cancel := context.WithTimeout(ctx, lookBackTimeout)
	defer cancel()
	tr.established = false // until the read below completes
	reader, err := ids.in.CreateReader(pulsar.ReaderOptions{Topic: partition, StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 1000})
	if err != nil {
		return fmt.Errorf("look back on %s: create reader: %w", partition, err)
	}
	defer reader.Close()
	seek := time.UnixMilli(r.publishMs).Add(-lookBackMargin)
	if err := reader.SeekByTime(seek); err != nil {
		return fmt.Errorf("look back on %s: seek to %s: %w", partition, seek.UTC().Format(time.RFC3339Nano), err)
	}
	tr.reset(r.publishMs)
	defer func() {
		if err != nil {
			tr.established = false
		}
	}()
	first := true
	for {
		var m pulsar.Message
		m, err = reader.Next(ctx)
		if err != nil {
			return fmt.Errorf("look back on %s: read: %w", partition, err)
		}
		at := refOf(m)
		if c := at.pos.cmp(r.pos); c >= 0 {
			if first && c > 0 {
				err = fmt.Errorf("look back on %s for %d:%d: %w", partition, r.pos.ledger, r.pos.entry, errLookBackMissed)
				return err
			}
			return nil
		}
		first = false
		tr.identify(at, ids.now().UnixMilli())
	}
}
