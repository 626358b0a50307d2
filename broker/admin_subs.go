package broker

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// The subscription admin API: list, create at a position, reset the cursor
// to a time or a message id, delete. On a partitioned topic each call
// applies to every partition, as Pulsar's does for creation, time resets
// and deletion (see resetCursorHTTP for resets by message id).

// adminTargets returns the topic partitions an admin call on n addresses:
// every partition of a partitioned topic, else n itself.
func (b *Broker) adminTargets(n topicName) []string {
	if np := b.partitions(n); np > 0 && n.partition < 0 {
		out := make([]string, np)
		for i := range out {
			out[i] = n.partitionName(i).String()
		}
		return out
	}
	return []string{n.String()}
}

// eachTarget runs op on every topic an admin call on n addresses (see
// adminTargets) and counts the topics op changed. Topics not loaded are
// passed over, unless create asks to create them, when failing to is an
// error. An op error matching absent counts as nothing to change; any
// other error stops the walk.
func (b *Broker) eachTarget(n topicName, create bool, absent error, op func(*topic) error) (int, error) {
	changed := 0
	for _, name := range b.adminTargets(n) {
		t, err := b.getTopic(name, create)
		if err != nil {
			if create {
				return changed, err
			}
			continue
		}
		switch err := op(t); {
		case errors.Is(err, absent):
		case err != nil:
			return changed, err
		default:
			changed++
		}
	}
	return changed, nil
}

// messageIDBody is Pulsar's MessageId JSON (and ResetCursorData, which adds
// isExcluded and batchIndex).
type messageIDBody struct {
	LedgerID       int64 `json:"ledgerId"`
	EntryID        int64 `json:"entryId"`
	PartitionIndex *int  `json:"partitionIndex,omitempty"`
	BatchIndex     *int  `json:"batchIndex,omitempty"`
	// IsExcluded starts after the message instead of at it.
	IsExcluded bool `json:"isExcluded,omitempty"`
}

// readMessageIDBody decodes an optional message id body; def is returned
// when the body is empty.
func readMessageIDBody(r *http.Request, def messageIDBody) (messageIDBody, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return def, errorf(ErrBadRequest, "read message id: %v", err)
	}
	if s := strings.TrimSpace(string(body)); s == "" || s == "null" {
		return def, nil
	}
	var m messageIDBody
	if err := json.Unmarshal(body, &m); err != nil {
		return def, errorf(ErrBadRequest, "message id must be {\"ledgerId\":L,\"entryId\":E}: %v", err)
	}
	return m, nil
}

var latestBody = messageIDBody{LedgerID: math.MaxInt64, EntryID: math.MaxInt64}

// positionLocked is the first entry a cursor placed at m delivers:
// earliest (-1:-1) is the oldest retained entry, latest the next one to
// be written, any other id that message (or the one after it when
// excluded).
func (m messageIDBody) positionLocked(t *topic) int64 {
	switch {
	case m.LedgerID == math.MaxInt64 || m.EntryID == math.MaxInt64:
		return t.next
	case m.LedgerID < 0 || m.EntryID < 0:
		return t.first
	}
	pos := t.entryIDLocked(m.LedgerID, m.EntryID)
	if m.IsExcluded {
		pos++
	}
	return pos
}

func (b *Broker) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	set := map[string]struct{}{}
	found := false
	for _, name := range b.adminTargets(n) {
		t, err := b.getTopic(name, false)
		if err != nil {
			continue
		}
		found = true
		t.mu.Lock()
		for sub, s := range t.subs {
			if !s.system {
				set[sub] = struct{}{}
			}
		}
		t.mu.Unlock()
	}
	if !found && b.partitions(n) == 0 {
		httpError(w, errorf(ErrTopicNotFound, "Topic %s not found", n))
		return
	}
	out := make([]string, 0, len(set))
	for sub := range set {
		out = append(out, sub)
	}
	sort.Strings(out)
	writeJSON(w, out)
}

// createSubscriptionHTTP is PUT .../{topic}/subscription/{sub} with an
// optional MessageId body (default latest): a durable subscription whose
// next message is the one named. The topic is created if auto-creation
// allows it. 409 if the subscription already exists (on every partition).
func (b *Broker) createSubscriptionHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	sub := r.PathValue("sub")
	if err := checkSubscriptionName(sub); err != nil {
		httpError(w, err)
		return
	}
	at, err := readMessageIDBody(r, latestBody)
	if err != nil {
		httpError(w, err)
		return
	}
	created, err := b.eachTarget(n, true, ErrAlreadyExists, func(t *topic) error {
		return t.createSubscription(sub, at)
	})
	if err == nil && created == 0 {
		err = errorf(ErrAlreadyExists, "Subscription %s already exists for topic %s", sub, n)
	}
	replyNoContent(w, err)
}

// resetCursorHTTP is POST .../subscription/{sub}/resetcursor/{timestamp}
// (the first message published after the time is delivered next) and
// POST .../subscription/{sub}/resetcursor with a MessageId body (that
// message is delivered next; after it with "isExcluded": true). Connected
// consumers are disconnected and reconnect at the new position, as after a
// SEEK. On a partitioned topic every partition holding the subscription
// is reset; a message id is mapped into each partition by its ledger (see
// entryIDLocked), where Pulsar refuses resets by id on partitioned topics.
func (b *Broker) resetCursorHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	sub := r.PathValue("sub")
	var target func(t *topic) int64
	if ts := r.PathValue("timestamp"); ts != "" {
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			httpError(w, errorf(ErrBadRequest, "timestamp %q is not a number of milliseconds", ts))
			return
		}
		target = func(t *topic) int64 { return t.seekByTimeLocked(ms) }
	} else {
		at, err := readMessageIDBody(r, messageIDBody{})
		if err != nil {
			httpError(w, err)
			return
		}
		if at == (messageIDBody{}) {
			httpError(w, errorf(ErrBadRequest, "a message id body is required"))
			return
		}
		target = at.positionLocked
	}
	reset, err := b.eachTarget(n, false, ErrSubscriptionNotFound, func(t *topic) error {
		return t.resetSubscription(sub, target)
	})
	if err == nil && reset == 0 {
		err = errorf(ErrSubscriptionNotFound, "Subscription %s not found on topic %s", sub, n)
	}
	replyNoContent(w, err)
}

// forceDeleteAttempts bounds how often a forced delete disconnects the
// consumers that subscribed again before it could delete.
const forceDeleteAttempts = 10

// deleteSubscriptionHTTP deletes a subscription (from every partition of
// a partitioned topic). With ?force=true connected consumers are
// disconnected first; otherwise they make it fail with 412, as in Pulsar.
func (b *Broker) deleteSubscriptionHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	sub := r.PathValue("sub")
	force := r.URL.Query().Get("force") == "true"
	deleted, err := b.eachTarget(n, false, ErrSubscriptionNotFound, func(t *topic) error {
		err := t.deleteSubscription(sub)
		// A client told its consumer was closed subscribes again at once;
		// force disconnects whoever is attached until the delete wins.
		for attempt := 0; force && errors.Is(err, ErrConsumerBusy) && attempt < forceDeleteAttempts; attempt++ {
			t.mu.Lock()
			var cs []*consumer
			if s, ok := t.subs[sub]; ok && !s.system {
				cs = append(cs, s.consumers...)
			}
			t.mu.Unlock()
			for _, c := range cs {
				c.c.dropConsumer(c, true)
			}
			err = t.deleteSubscription(sub)
		}
		if errors.Is(err, ErrConsumerBusy) {
			// Pulsar's answer: 412.
			return errorf(ErrPrecondition, "Subscription has active connected consumers: %v", err)
		}
		return err
	})
	if err == nil && deleted == 0 {
		err = errorf(ErrSubscriptionNotFound, "Subscription %s not found on topic %s", sub, n)
	}
	replyNoContent(w, err)
}

// createSubscription adds a durable subscription whose next entry is at
// and waits until its cursor is on disk.
func (t *topic) createSubscription(name string, at messageIDBody) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if _, ok := t.subs[name]; ok {
		t.mu.Unlock()
		return errorf(ErrAlreadyExists, "subscription %s of %s", name, t.full)
	}
	pos := at.positionLocked(t)
	if pos < t.first {
		pos = t.first
	}
	if pos > t.next {
		pos = t.next
	}
	s := newSubscription(t, name, true, 0, pos-1)
	s.dirty = true
	t.subs[name] = s
	wait := make(chan error, 1)
	t.requestFlushLocked(func(err error) { wait <- err })
	t.mu.Unlock()
	return <-wait
}

// resetSubscription moves a subscription's cursor to target (computed
// under the topic lock), waits until it is on disk and disconnects its
// consumers, which reconnect and read from there.
func (t *topic) resetSubscription(name string, target func(*topic) int64) error {
	t.mu.Lock()
	s, ok := t.subs[name]
	if !ok || s.system {
		t.mu.Unlock()
		return errorf(ErrSubscriptionNotFound, "subscription %s of %s", name, t.full)
	}
	s.resetLocked(target(t))
	consumers := append([]*consumer(nil), s.consumers...)
	var wait chan error
	if s.durable {
		wait = make(chan error, 1)
		t.requestFlushLocked(func(err error) { wait <- err })
	}
	t.mu.Unlock()
	var err error
	if wait != nil {
		err = <-wait
	}
	// Like Pulsar, disconnect the subscription's consumers; clients
	// re-subscribe and read from the new position.
	for _, x := range consumers {
		x.c.detachConsumer(x, true, true)
	}
	return err
}

// replPrefix starts the names of replicator cursors and producers, as in
// Pulsar ("pulsar.repl.<cluster>").
const replPrefix = "pulsar.repl."

// checkSubscriptionName refuses names clients may not use: empty ones and
// those reserved for replicator cursors.
func checkSubscriptionName(name string) error {
	switch {
	case name == "":
		return errorf(ErrPrecondition, "subscription name is empty")
	case strings.HasPrefix(name, replPrefix):
		return errorf(ErrNotAllowed, "subscription names starting with %q are reserved for replicators", replPrefix)
	}
	return nil
}
