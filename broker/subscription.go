package broker

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meshfed/meshfed/broker/wire"
)

// maxReplayAhead bounds how far Key_Shared dispatch reads past entries it
// could not hand to their (busy) consumer.
const maxReplayAhead = 1000

// consumer is one consumer attached to a subscription. All fields are
// guarded by the topic's mu.
type consumer struct {
	id       uint64
	c        *conn
	s        *subscription
	name     string
	priority int32
	permits  int64
	unacked  int
	ranges   [][2]int32 // Key_Shared sticky hash ranges (inclusive); nil for auto split
	since    time.Time
	msgOut   int64
	bytesOut int64
	address  string
	// announced is set once the consumer was told its Failover state.
	announced bool
	metadata  map[string]string
}

// subscription is a cursor over a topic plus its consumers. All fields are
// guarded by the topic's mu.
type subscription struct {
	t       *topic
	name    string
	durable bool
	typ     wire.SubType
	// system marks a replicator's cursor (pulsar.repl.<cluster>): durable,
	// never dispatched to consumers, hidden from subscription lists and
	// stats, and not deletable through the subscription API.
	system bool

	// markDelete is the newest entry id such that it and every older entry
	// are acknowledged (first-1 when nothing is).
	markDelete int64
	// acked holds entries above markDelete acknowledged individually.
	acked map[int64]struct{}
	// batchAcks holds, for partially acknowledged batch entries, the bit set
	// of batch indexes still unacknowledged (set bit = still to deliver).
	batchAcks map[int64][]int64
	// readPos is the next entry never dispatched since the last rewind.
	readPos int64
	// replay holds entries to dispatch again (sorted ascending), before
	// anything at readPos.
	replay   []int64
	inReplay map[int64]struct{}
	// pending maps each dispatched, unacknowledged entry to its consumer.
	pending      map[int64]*consumer
	redeliveries map[int64]uint32
	consumers    []*consumer
	rr           int
	active       *consumer // Failover: the active consumer
	dirty        bool      // cursor changed since last flush
	msgOut       int64
	// delayTimer re-runs dispatch when the earliest delayed entry is due;
	// delayAt is its deadline (ms).
	delayTimer *time.Timer
	delayAt    int64
}

func newSubscription(t *topic, name string, durable bool, typ wire.SubType, markDelete int64) *subscription {
	return &subscription{t: t, name: name, durable: durable, typ: typ, markDelete: markDelete,
		readPos: markDelete + 1, acked: map[int64]struct{}{}, batchAcks: map[int64][]int64{},
		inReplay: map[int64]struct{}{}, pending: map[int64]*consumer{}, redeliveries: map[int64]uint32{}}
}

func (s *subscription) cursorPath() string {
	return filepath.Join(s.t.dir, "cursors", escapeName(s.name)+".json")
}

// cursorFile is the persisted state of a durable subscription.
type cursorFile struct {
	Type       int32             `json:"type"`
	MarkDelete int64             `json:"markDelete"`
	Acked      [][2]int64        `json:"acked,omitempty"` // inclusive ranges above markDelete
	BatchAcks  map[int64][]int64 `json:"batchAcks,omitempty"`
}

func (s *subscription) encodeCursorLocked() []byte {
	cf := cursorFile{Type: int32(s.typ), MarkDelete: s.markDelete, BatchAcks: s.batchAcks}
	ids := make([]int64, 0, len(s.acked))
	for id := range s.acked {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if n := len(cf.Acked); n > 0 && cf.Acked[n-1][1]+1 == id {
			cf.Acked[n-1][1] = id
		} else {
			cf.Acked = append(cf.Acked, [2]int64{id, id})
		}
	}
	data, _ := json.Marshal(cf)
	return data
}

func (t *topic) loadCursors() error {
	dir := filepath.Join(t.dir, "cursors")
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list cursors: %w", err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("read cursor: %w", err)
		}
		var cf cursorFile
		if err := json.Unmarshal(data, &cf); err != nil {
			return fmt.Errorf("decode cursor %s: %w", e.Name(), err)
		}
		name := unescapeName(strings.TrimSuffix(e.Name(), ".json"))
		s := newSubscription(t, name, true, wire.SubType(cf.Type), cf.MarkDelete)
		s.system = strings.HasPrefix(name, replPrefix)
		for _, r := range cf.Acked {
			for id := r[0]; id <= r[1] && r[1]-r[0] < 1<<24; id++ {
				s.acked[id] = struct{}{}
			}
		}
		for k, v := range cf.BatchAcks {
			s.batchAcks[k] = v
		}
		if s.readPos < t.first {
			s.readPos = t.first
		}
		t.subs[name] = s
	}
	return nil
}

// isAckedLocked reports whether entry id needs no (re)delivery.
func (s *subscription) isAckedLocked(id int64) bool {
	if id <= s.markDelete {
		return true
	}
	_, ok := s.acked[id]
	return ok
}

// pickLocked chooses the consumer that should get entry e now, or nil.
func (s *subscription) pickLocked(e *entryInfo) *consumer {
	switch s.typ {
	case wire.SubExclusive, wire.SubFailover:
		c := s.active
		if s.typ == wire.SubExclusive && len(s.consumers) > 0 {
			c = s.consumers[0]
		}
		if c != nil && c.permits > 0 {
			return c
		}
		return nil
	case wire.SubKeyShared:
		c := s.keyOwnerLocked(e)
		if c != nil && c.permits > 0 {
			return c
		}
		return nil
	default:
		n := len(s.consumers)
		for i := 0; i < n; i++ {
			c := s.consumers[(s.rr+i)%n]
			if c.permits > 0 {
				s.rr = (s.rr + i + 1) % n
				return c
			}
		}
		return nil
	}
}

// keyOwnerLocked maps an entry's key hash to a consumer: a sticky consumer
// whose range covers it, otherwise an equal split of the hash space among
// the auto-split consumers (in subscription order).
func (s *subscription) keyOwnerLocked(e *entryInfo) *consumer {
	h := int32(e.keyHash)
	if !e.hasKey {
		h = 0
	}
	var auto []*consumer
	for _, c := range s.consumers {
		if c.ranges == nil {
			auto = append(auto, c)
			continue
		}
		for _, r := range c.ranges {
			if h >= r[0] && h <= r[1] {
				return c
			}
		}
	}
	if len(auto) == 0 {
		return nil
	}
	return auto[int(h)*len(auto)/keyHashRange]
}

// delayedLocked reports whether entry e must wait for its deliver_at_time
// (only Shared and Key_Shared subscriptions delay, as in Pulsar), arming
// the subscription's timer for it.
func (s *subscription) delayedLocked(e *entryInfo, nowMs int64) bool {
	if e.deliverAt <= nowMs || (s.typ != wire.SubShared && s.typ != wire.SubKeyShared) {
		return false
	}
	if s.delayTimer == nil || e.deliverAt < s.delayAt {
		if s.delayTimer != nil {
			s.delayTimer.Stop()
		}
		s.delayAt = e.deliverAt
		t := s.t
		s.delayTimer = time.AfterFunc(time.Duration(e.deliverAt-nowMs)*time.Millisecond, func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			s.delayTimer = nil
			if t.subs[s.name] == s {
				s.dispatchLocked()
			}
		})
	}
	return true
}

// dispatchLocked hands out entries to consumers with permits: first the
// replay set, then new entries from readPos.
//
// REACHED_END_OF_TOPIC is never sent for terminated topics: pulsar-client-go
// v0.19.0 treats it as an invalid command and drops the connection.
func (s *subscription) dispatchLocked() {
	s.dispatchEntriesLocked()
}

func (s *subscription) dispatchEntriesLocked() {
	if len(s.consumers) == 0 {
		return
	}
	t := s.t
	if s.readPos < t.first {
		s.readPos = t.first
	}
	nowMs := time.Now().UnixMilli()
	if len(s.replay) > 0 {
		kept := s.replay[:0]
		stalled := false
		for _, id := range s.replay {
			if stalled {
				kept = append(kept, id)
				continue
			}
			e := t.entryLocked(id)
			if e == nil || s.isAckedLocked(id) {
				delete(s.inReplay, id)
				continue
			}
			if _, out := s.pending[id]; out {
				delete(s.inReplay, id)
				continue
			}
			if s.delayedLocked(e, nowMs) {
				kept = append(kept, id)
				continue
			}
			c := s.pickLocked(e)
			if c == nil {
				kept = append(kept, id)
				stalled = s.typ != wire.SubKeyShared
				continue
			}
			if !s.deliverLocked(c, e) {
				kept = append(kept, id)
				stalled = true
				continue
			}
			delete(s.inReplay, id)
		}
		s.replay = kept
		if stalled {
			return
		}
	}
	for s.readPos < t.next {
		id := s.readPos
		e := t.entryLocked(id)
		if e == nil || s.isAckedLocked(id) {
			s.readPos++
			continue
		}
		if _, out := s.pending[id]; out {
			s.readPos++
			continue
		}
		if s.delayedLocked(e, nowMs) {
			s.addReplayLocked(id)
			s.readPos++
			continue
		}
		c := s.pickLocked(e)
		if c == nil {
			if s.typ == wire.SubKeyShared && len(s.replay) < maxReplayAhead && s.anyPermitsLocked() {
				s.addReplayLocked(id)
				s.readPos++
				continue
			}
			return
		}
		if !s.deliverLocked(c, e) {
			return
		}
		s.readPos++
	}
}

func (s *subscription) anyPermitsLocked() bool {
	for _, c := range s.consumers {
		if c.permits > 0 {
			return true
		}
	}
	return false
}

func (s *subscription) addReplayLocked(id int64) {
	if _, ok := s.inReplay[id]; ok {
		return
	}
	s.inReplay[id] = struct{}{}
	i := sort.Search(len(s.replay), func(i int) bool { return s.replay[i] >= id })
	s.replay = append(s.replay, 0)
	copy(s.replay[i+1:], s.replay[i:])
	s.replay[i] = id
}

// deliverLocked sends entry e to c. It returns false if the entry could not
// be read.
func (s *subscription) deliverLocked(c *consumer, e *entryInfo) bool {
	payload, err := s.t.log.read(e)
	if err != nil {
		s.t.b.log.Error("read entry", "topic", s.t.full, "entry", e.id, "err", err)
		return false
	}
	id := s.t.entryPosition(e)
	var ackSet []int64
	if set, ok := s.batchAcks[e.id]; ok {
		ackSet = set
	}
	frame := wire.AppendPayloadFrame(nil, wire.Message(c.id, id, s.redeliveries[e.id], ackSet), e.crc, payload)
	c.c.send(frame)
	c.permits -= int64(e.numMsgs)
	c.unacked++
	c.msgOut += int64(e.numMsgs)
	c.bytesOut += int64(e.size)
	s.msgOut += int64(e.numMsgs)
	s.t.stats.msgOut += int64(e.numMsgs)
	s.t.stats.bytesOut += int64(e.size)
	s.pending[e.id] = c
	return true
}

// ackLocked applies an ACK from c.
func (s *subscription) ackLocked(c *consumer, a *wire.Ack) {
	for _, mid := range a.MessageIDs {
		e := s.t.storedEntryLocked(mid.LedgerID, mid.EntryID)
		if e == nil {
			// Not an entry of this topic (yet, or any more): acknowledging
			// by a guessed position could skip a message stored under it.
			continue
		}
		id := e.id
		partial := len(mid.AckSet) > 0 && !allZero(mid.AckSet)
		if a.Cumulative {
			upTo := id
			if partial {
				upTo = id - 1
				s.mergeBatchAckLocked(id, mid.AckSet)
			}
			s.moveMarkDeleteLocked(upTo)
			continue
		}
		if partial {
			if s.isAckedLocked(id) {
				continue
			}
			if s.mergeBatchAckLocked(id, mid.AckSet) {
				s.ackEntryLocked(id)
			}
			continue
		}
		s.ackEntryLocked(id)
	}
	s.dirty = s.dirty || s.durable
	s.dispatchLocked()
}

func allZero(set []int64) bool {
	for _, v := range set {
		if v != 0 {
			return false
		}
	}
	return true
}

// mergeBatchAckLocked intersects the still-unacknowledged bits of a batch
// entry with set; it reports whether none remain.
func (s *subscription) mergeBatchAckLocked(id int64, set []int64) bool {
	if id <= s.markDelete {
		return true
	}
	old, ok := s.batchAcks[id]
	merged := append([]int64(nil), set...)
	if ok {
		for i := range merged {
			if i < len(old) {
				merged[i] &= old[i]
			}
		}
	}
	n := 0
	for _, v := range merged {
		n += bits.OnesCount64(uint64(v))
	}
	if n == 0 {
		delete(s.batchAcks, id)
		return true
	}
	s.batchAcks[id] = merged
	return false
}

func (s *subscription) forgetLocked(id int64) {
	if c, ok := s.pending[id]; ok {
		c.unacked--
		delete(s.pending, id)
	}
	delete(s.redeliveries, id)
	delete(s.batchAcks, id)
}

func (s *subscription) ackEntryLocked(id int64) {
	if s.isAckedLocked(id) {
		return
	}
	s.forgetLocked(id)
	s.acked[id] = struct{}{}
	for {
		if _, ok := s.acked[s.markDelete+1]; !ok {
			break
		}
		delete(s.acked, s.markDelete+1)
		s.markDelete++
	}
}

// moveMarkDeleteLocked acknowledges everything up to and including id.
// The mark-delete position never moves backwards.
func (s *subscription) moveMarkDeleteLocked(id int64) {
	if id >= s.t.next {
		id = s.t.next - 1
	}
	if id <= s.markDelete {
		return
	}
	for e := range s.pending {
		if e <= id {
			s.forgetLocked(e)
		}
	}
	for e := range s.acked {
		if e <= id {
			delete(s.acked, e)
		}
	}
	for e := range s.batchAcks {
		if e <= id {
			delete(s.batchAcks, e)
		}
	}
	for e := range s.redeliveries {
		if e <= id {
			delete(s.redeliveries, e)
		}
	}
	s.markDelete = id
	for {
		if _, ok := s.acked[s.markDelete+1]; !ok {
			break
		}
		delete(s.acked, s.markDelete+1)
		s.markDelete++
	}
}

// redeliverLocked puts entries dispatched to c back for redelivery (all of
// them when ids is empty), counting a redelivery for each.
func (s *subscription) redeliverLocked(c *consumer, ids []wire.MessageID) {
	if len(ids) == 0 {
		for id, owner := range s.pending {
			if owner == c {
				s.requeueLocked(id, true)
			}
		}
	} else {
		for _, mid := range ids {
			e := s.t.storedEntryLocked(mid.LedgerID, mid.EntryID)
			if e == nil {
				continue
			}
			if owner, ok := s.pending[e.id]; ok && owner == c {
				s.requeueLocked(e.id, true)
			}
		}
	}
	s.dispatchLocked()
}

func (s *subscription) requeueLocked(id int64, count bool) {
	if c, ok := s.pending[id]; ok {
		c.unacked--
		delete(s.pending, id)
	}
	if count {
		s.redeliveries[id]++
	}
	s.addReplayLocked(id)
}

// addConsumerLocked attaches c, enforcing the subscription type's rules.
func (s *subscription) addConsumerLocked(c *consumer, typ wire.SubType) error {
	if len(s.consumers) > 0 && typ != s.typ {
		return errorf(ErrConsumerBusy, "subscription %s is of type %s, not %s", s.name, s.typ, typ)
	}
	if typ == wire.SubExclusive && len(s.consumers) > 0 {
		return errorf(ErrConsumerBusy, "exclusive consumer is already connected to subscription %s", s.name)
	}
	if typ != s.typ {
		s.typ = typ
		s.dirty = s.durable
	}
	s.consumers = append(s.consumers, c)
	s.updateActiveLocked()
	return nil
}

// removeConsumerLocked detaches c and queues what it had not acknowledged
// for redelivery to the others.
func (s *subscription) removeConsumerLocked(c *consumer) {
	for i, x := range s.consumers {
		if x == c {
			s.consumers = append(s.consumers[:i], s.consumers[i+1:]...)
			break
		}
	}
	for id, owner := range s.pending {
		if owner == c {
			s.requeueLocked(id, false)
		}
	}
	if s.rr >= len(s.consumers) {
		s.rr = 0
	}
	s.updateActiveLocked()
	s.dispatchLocked()
}

// updateActiveLocked recomputes the Failover active consumer (lowest
// priority level, then consumer name; partitions rotate the choice) and
// tells every consumer whether it is active.
func (s *subscription) updateActiveLocked() {
	if s.typ != wire.SubFailover {
		s.active = nil
		if len(s.consumers) > 0 {
			s.active = s.consumers[0]
		}
		return
	}
	if len(s.consumers) == 0 {
		s.active = nil
		return
	}
	sorted := append([]*consumer(nil), s.consumers...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].priority != sorted[j].priority {
			return sorted[i].priority < sorted[j].priority
		}
		return sorted[i].name < sorted[j].name
	})
	top := 0
	for top < len(sorted) && sorted[top].priority == sorted[0].priority {
		top++
	}
	idx := 0
	if p := s.t.name.partition; p > 0 {
		idx = p % top
	}
	active := sorted[idx]
	changed := active != s.active
	old := s.active
	s.active = active
	if changed && old != nil {
		for id, owner := range s.pending {
			if owner == old {
				s.requeueLocked(id, false)
			}
		}
	}
	if !changed {
		return
	}
	for _, c := range s.consumers {
		if c.announced {
			c.c.send(wire.AppendFrame(nil, wire.ActiveConsumerChange(c.id, c == active)))
		}
	}
}

// announceLocked tells a Failover consumer, on its first FLOW (by then the
// client has registered it), whether it is active; later changes reach it
// through updateActiveLocked.
func (s *subscription) announceLocked(c *consumer) {
	if c.announced {
		return
	}
	c.announced = true
	if s.typ == wire.SubFailover {
		c.c.send(wire.AppendFrame(nil, wire.ActiveConsumerChange(c.id, c == s.active)))
	}
}

// resetLocked moves the cursor so that entry `to` is the next delivered and
// forgets acknowledgements at or after it.
func (s *subscription) resetLocked(to int64) {
	if to < s.t.first {
		to = s.t.first
	}
	if to > s.t.next {
		to = s.t.next
	}
	for id := range s.pending {
		s.forgetLocked(id)
	}
	for _, c := range s.consumers {
		c.unacked = 0
	}
	s.acked = map[int64]struct{}{}
	s.batchAcks = map[int64][]int64{}
	s.replay = nil
	s.inReplay = map[int64]struct{}{}
	s.redeliveries = map[int64]uint32{}
	s.markDelete = to - 1
	s.readPos = to
	s.dirty = s.durable
}

// startPosition converts a client-supplied start message id into the first
// entry to read: earliest and latest are special; otherwise the entry
// itself (the client drops what it should not see).
func (t *topic) startPositionLocked(id *wire.MessageID) int64 {
	switch {
	case id == nil:
		return t.next
	case id.EntryID == math.MaxInt64 || id.LedgerID == math.MaxInt64:
		return t.next
	case id.LedgerID < 0:
		return t.first
	}
	return t.entryIDLocked(id.LedgerID, id.EntryID)
}

// seekByTimeLocked returns the first entry published after ms: like
// Pulsar, the cursor goes past the newest entry whose publish time is at or
// before the timestamp.
func (t *topic) seekByTimeLocked(ms int64) int64 {
	for i := range t.entries {
		if t.entries[i].publishMs > ms {
			return t.entries[i].id
		}
	}
	return t.next
}

// backlogLocked counts messages not yet acknowledged.
func (s *subscription) backlogLocked() int64 {
	var n int64
	for id := s.markDelete + 1; id < s.t.next; id++ {
		if _, ok := s.acked[id]; ok {
			continue
		}
		if e := s.t.entryLocked(id); e != nil {
			n += int64(e.numMsgs)
		}
	}
	return n
}
