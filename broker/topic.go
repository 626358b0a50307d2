package broker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfed/meshfed/broker/wire"
)

// topic is one persistent topic partition (or non-partitioned topic).
type topic struct {
	b    *Broker
	name topicName
	full string
	dir  string
	// hidden marks the internal heartbeat topic (see isHeartbeat).
	hidden bool
	// retainTime and retainSize are the retention limits (0 = none; see
	// applyRetention).
	retainTime time.Duration
	retainSize int64

	appendCh chan *appendReq
	flushCh  chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup

	// retentionPasses counts applyRetention runs (tests wait on it).
	retentionPasses atomic.Int64

	// log is owned by the appender goroutine after load (it alone appends
	// and drops segments); reads of stored entries go through entryInfo.seg.
	log *entryLog

	mu sync.Mutex
	// entries indexes stored entries; entries[i].id == first+i. Guarded by mu.
	entries []entryInfo
	// first is the oldest retained entry id; next the id the next entry
	// gets. Guarded by mu.
	first, next int64
	producers   map[string]*producer     // by producer name; guarded by mu
	subs        map[string]*subscription // guarded by mu
	dedup       map[string]uint64        // producer name → highest sequence id accepted; guarded by mu
	schemas     []*wire.Schema           // version i at index i; guarded by mu
	waiters     []func(error)            // called after the next cursor flush; guarded by mu
	// cursorRemovals are cursor files of deleted subscriptions, removed by
	// the next flush. Guarded by mu.
	cursorRemovals []string
	// exclusiveWait queues WaitForExclusive producers until the topic has
	// no producer. Guarded by mu.
	exclusiveWait []*exclusiveWaiter
	// replicators run by remote cluster name. Guarded by mu.
	replicators map[string]*replicator
	// replIn counts what replicators of other clusters stored here, by
	// the cluster they replicate from. Guarded by mu.
	replIn     map[string]*replInStats
	closed     bool       // guarded by mu
	terminated bool       // no more writes are accepted; guarded by mu
	stats      topicStats // guarded by mu
	lastRateAt time.Time  // guarded by mu
}

type topicStats struct {
	msgIn, bytesIn, msgOut, bytesOut            int64
	prevMsgIn, prevBytesIn, prevMsgOut, prevOut int64
	rateIn, tputIn, rateOut, tputOut            float64
}

// exclusiveWaiter is a WaitForExclusive producer request not yet admitted.
type exclusiveWaiter struct {
	c   *conn
	cmd *wire.Producer
}

type appendReq struct {
	p       *producer
	send    *wire.Send
	payload []byte
	crc     uint32
	meta    *wire.Metadata
	// done is called once the entry is durable (per the fsync policy), or
	// with dup set when de-duplication dropped it, or with an error.
	done func(res appendResult, err error)
}

// producer is a producer connected to a topic.
type producer struct {
	id      uint64
	c       *conn
	t       *topic
	name    string
	since   time.Time
	address string
	msgIn   int64 // guarded by t.mu
	bytesIn int64 // guarded by t.mu
	// exclusive is set for Exclusive access-mode producers.
	exclusive bool
	// metadata is the producer's user-supplied properties.
	metadata map[string]string
	// remote is the cluster a replicator producer (named pulsar.repl.<cluster>)
	// replicates from; "" for other producers.
	remote string
}

func topicDir(root string, n topicName) string {
	return filepath.Join(root, "topics", n.domain, n.tenant, n.namespace, escapeName(n.local))
}

// openTopic loads (or creates) a topic's storage and starts its goroutines.
func openTopic(b *Broker, n topicName) (*topic, error) {
	dir := topicDir(b.cfg.DataDir, n)
	hidden := b.isHeartbeat(n)
	segSize, retainTime, retainSize := b.cfg.SegmentSize, b.cfg.RetentionTime, b.cfg.RetentionSize
	if hidden {
		// The heartbeat topic keeps only its active segment: nothing reads
		// an entry after the check that wrote it.
		segSize, retainTime, retainSize = 256<<10, 0, 1
	}
	l, index, err := openLog(dir, segSize, b.newLedger)
	if err != nil {
		return nil, err
	}
	t := &topic{
		b: b, name: n, full: n.String(), dir: dir, log: l, hidden: hidden, retainTime: retainTime, retainSize: retainSize,
		appendCh: make(chan *appendReq, 1024), flushCh: make(chan struct{}, 1), stop: make(chan struct{}),
		producers: map[string]*producer{}, subs: map[string]*subscription{}, dedup: map[string]uint64{},
		replicators: map[string]*replicator{}, replIn: map[string]*replInStats{},
		entries: index, lastRateAt: time.Now(),
	}
	if len(index) > 0 {
		t.first = index[0].id
		t.next = index[len(index)-1].id + 1
	} else if len(l.segs) > 0 {
		s := l.segs[len(l.segs)-1]
		t.first, t.next = s.last+1, s.last+1
	}
	if err := t.loadSidecars(); err != nil {
		l.close()
		return nil, err
	}
	for _, e := range index {
		t.noteSequence(e.producer, e.hiSeq)
	}
	if err := t.loadCursors(); err != nil {
		l.close()
		return nil, err
	}
	t.wg.Add(2)
	go t.appender()
	go t.flusher()
	return t, nil
}

func (t *topic) noteSequence(name string, hi uint64) {
	if name == "" {
		return
	}
	if last, ok := t.dedup[name]; !ok || hi > last {
		t.dedup[name] = hi
	}
}

// state is the small sidecar file of a topic: de-duplication state that
// must outlive segments removed by retention, the first retained entry id
// (so ids never restart after every segment was removed) and schemas.
type topicState struct {
	Dedup   map[string]uint64 `json:"dedup,omitempty"`
	Next    int64             `json:"next"`
	Schemas []*storedSchema   `json:"schemas,omitempty"`
	// Terminated is set by the admin terminate operation.
	Terminated bool `json:"terminated,omitempty"`
}

type storedSchema struct {
	Name       string            `json:"name"`
	Type       int32             `json:"type"`
	Data       []byte            `json:"data"`
	Properties map[string]string `json:"properties,omitempty"`
}

func (t *topic) loadSidecars() error {
	data, err := os.ReadFile(filepath.Join(t.dir, "state.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read topic state: %w", err)
	}
	var st topicState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("decode topic state: %w", err)
	}
	for k, v := range st.Dedup {
		t.noteSequence(k, v)
	}
	if st.Next > t.next {
		t.first, t.next = st.Next, st.Next
	}
	t.terminated = st.Terminated
	for _, s := range st.Schemas {
		ws := &wire.Schema{Name: s.Name, Type: s.Type, Data: s.Data}
		for k, v := range s.Properties {
			ws.Properties = append(ws.Properties, wire.KeyValue{Key: k, Value: v})
		}
		sort.Slice(ws.Properties, func(i, j int) bool { return ws.Properties[i].Key < ws.Properties[j].Key })
		t.schemas = append(t.schemas, ws)
	}
	return nil
}

// saveStateLocked writes the sidecar file. Called with mu held.
func (t *topic) saveStateLocked() error {
	st := topicState{Dedup: t.dedup, Next: t.next, Terminated: t.terminated}
	for _, s := range t.schemas {
		ss := &storedSchema{Name: s.Name, Type: s.Type, Data: s.Data, Properties: map[string]string{}}
		for _, kv := range s.Properties {
			ss.Properties[kv.Key] = kv.Value
		}
		st.Schemas = append(st.Schemas, ss)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(t.dir, "state.json"), data, t.b.cfg.Fsync != FsyncOff)
}

// dedupEnabled reports whether the namespace (or broker default) turns
// producer de-duplication on for this topic.
func (t *topic) dedupEnabled() bool { return t.b.topicDedupEnabled(t.name) }

func (t *topic) appender() {
	defer t.wg.Done()
	var buf []byte
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		var batch []*appendReq
		select {
		case r := <-t.appendCh:
			batch = append(batch, r)
		case <-ticker.C:
			t.applyRetention()
			continue
		case <-t.stop:
			t.failPending()
			return
		}
		size := len(batch[0].payload)
		limit := 1000
		if t.b.cfg.Fsync == FsyncAlways {
			limit = 1
		}
	drain:
		for len(batch) < limit && size < 8<<20 {
			select {
			case r := <-t.appendCh:
				batch = append(batch, r)
				size += len(r.payload)
			default:
				break drain
			}
		}
		buf = t.appendBatch(batch, buf)
	}
}

func (t *topic) failPending() {
	for {
		select {
		case r := <-t.appendCh:
			r.done(appendResult{}, ErrClosed)
		default:
			return
		}
	}
}

// appendResult is the outcome of one SEND: the entry id and message id it
// was stored under, or dup when de-duplication dropped it.
type appendResult struct {
	id  int64
	pos wire.MessageID
	dup bool
}

func (t *topic) appendBatch(batch []*appendReq, buf []byte) []byte {
	results := make([]appendResult, len(batch))
	var recs []*appendRecord
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		for _, r := range batch {
			r.done(appendResult{}, ErrClosed)
		}
		return buf
	}
	if t.terminated {
		t.mu.Unlock()
		for _, r := range batch {
			r.done(appendResult{}, ErrTopicTerminated)
		}
		return buf
	}
	dedupOn := t.dedupEnabled()
	saved := map[string]uint64{}
	for i, r := range batch {
		name := r.meta.ProducerName
		if name == "" {
			name = r.p.name
		}
		seq := r.send.SequenceID
		hi := r.send.HighestSequenceID
		if hi < seq {
			hi = seq
		}
		dedup := dedupOn
		if r.p.remote != "" {
			// An entry from another cluster's replicator: de-duplicated by
			// the original producer name and sequence ids in its metadata,
			// whatever the namespace's setting, so that resends after a
			// replicator restart or a crash of either side store nothing
			// twice. The record keeps the original ids.
			dedup = true
			seq = r.meta.SequenceID
			hi = max(r.meta.HighestSequenceID, r.send.HighestSequenceID, seq)
		}
		last, known := t.dedup[name]
		if dedup && known && seq <= last {
			results[i] = appendResult{dup: true, id: -1}
			if r.p.remote != "" {
				t.replInLocked(r.p.remote).dups++
			}
			continue
		}
		if _, ok := saved[name]; !ok {
			if known {
				saved[name] = last
			} else {
				saved[name] = 0
			}
		}
		t.noteSequence(name, hi)
		id := t.next + int64(len(recs))
		results[i] = appendResult{id: id}
		recs = append(recs, &appendRecord{id: id, seq: seq, hiSeq: hi, producer: name,
			payloadCRC: r.crc, payload: r.payload, meta: r.meta})
	}
	t.mu.Unlock()

	infos, buf, err := t.log.append(recs, buf, t.b.cfg.Fsync != FsyncOff)
	now := time.Now()
	t.mu.Lock()
	if err != nil {
		for name, v := range saved {
			t.dedup[name] = v
		}
		t.b.log.Error("append failed", "topic", t.full, "err", err)
	} else if len(infos) > 0 {
		t.entries = append(t.entries, infos...)
		t.next += int64(len(infos))
		for i := range results {
			if !results[i].dup {
				results[i].pos = t.entryPosition(t.entryLocked(results[i].id))
			}
		}
		for i, r := range batch {
			if results[i].dup {
				continue
			}
			t.stats.msgIn += int64(r.meta.NumMessages)
			t.stats.bytesIn += int64(len(r.payload))
			r.p.msgIn += int64(r.meta.NumMessages)
			r.p.bytesIn += int64(len(r.payload))
			if r.p.remote != "" {
				in := t.replInLocked(r.p.remote)
				in.msgIn += int64(r.meta.NumMessages)
				in.bytesIn += int64(len(r.payload))
			}
		}
		for _, s := range t.subs {
			s.dispatchLocked()
		}
		t.wakeReplicatorsLocked()
		t.b.metrics.add(len(infos), int64(len(buf)), t.b.cfg.Fsync != FsyncOff, now)
	}
	t.mu.Unlock()
	for i, r := range batch {
		switch {
		case results[i].dup:
			r.done(results[i], nil)
		case err != nil:
			r.done(appendResult{}, err)
		default:
			r.done(results[i], nil)
		}
	}
	return buf
}

// publish queues a SEND for appending. It blocks when the topic's queue is
// full, which pushes back on the producing connection.
func (t *topic) publish(r *appendReq) {
	select {
	case t.appendCh <- r:
	case <-t.stop:
		r.done(appendResult{}, ErrClosed)
	}
}

// applyRetention drops segments that every durable subscription has
// consumed and that are beyond the size or time retention. Runs on the
// appender goroutine, which owns the segment list.
func (t *topic) applyRetention() {
	defer t.retentionPasses.Add(1)
	if t.retainTime <= 0 && t.retainSize <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	consumed := t.next
	for _, s := range t.subs {
		if s.durable && s.markDelete+1 < consumed {
			consumed = s.markDelete + 1
		}
	}
	total := t.log.sizeBytes()
	nowMs := time.Now().UnixMilli()
	keep := func(s *segment) bool {
		overSize := t.retainSize > 0 && total > t.retainSize
		overTime := t.retainTime > 0 && nowMs-s.lastPublishMs > t.retainTime.Milliseconds()
		if overSize || overTime {
			total -= s.size
			return false
		}
		return true
	}
	if _, err := t.log.dropBefore(consumed, keep); err != nil {
		t.b.log.Warn("retention", "topic", t.full, "err", err)
	}
	first := t.next
	if len(t.log.segs) > 0 {
		first = t.log.segs[0].base
	}
	if first > t.first {
		drop := first - t.first
		if drop > int64(len(t.entries)) {
			drop = int64(len(t.entries))
		}
		t.entries = append([]entryInfo(nil), t.entries[drop:]...)
		t.first = first
		if err := t.saveStateLocked(); err != nil {
			t.b.log.Warn("save topic state", "topic", t.full, "err", err)
		}
	}
}

// entryLocked returns the index entry for id, or nil if it is not stored.
func (t *topic) entryLocked(id int64) *entryInfo {
	if id < t.first || id >= t.next {
		return nil
	}
	return &t.entries[id-t.first]
}

// addProducer registers a producer, enforcing unique names.
func (t *topic) addProducer(c *conn, cmd *wire.Producer) (*producer, int64, []byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, 0, nil, ErrClosed
	}
	if t.terminated {
		return nil, 0, nil, errorf(ErrTopicTerminated, "topic %s was terminated", t.full)
	}
	name := cmd.ProducerName
	if name == "" {
		name = t.b.newProducerName()
	}
	if old, ok := t.producers[name]; ok {
		switch {
		case old.c == c && old.id == cmd.ProducerID:
			return old, t.lastSeqLocked(name), t.schemaVersionLocked(cmd.Schema), nil
		case old.remote != "" && old.c != c:
			// A cluster runs one replicator per topic: a new connection
			// of it replaces one this broker has not yet seen die (a
			// network partition leaves it open until the idle timeout).
			delete(t.producers, name)
			defer func() { go old.c.dropProducer(old, true) }()
		default:
			return nil, 0, nil, errorf(ErrProducerBusy, "producer with name %q is already connected to topic %s", name, t.full)
		}
	}
	exclusive := cmd.AccessMode == 1 || cmd.AccessMode == 2 || cmd.AccessMode == 3
	for _, other := range t.producers {
		switch {
		case exclusive && cmd.AccessMode == 3:
			// ExclusiveWithFencing takes the topic over.
			other := other
			defer func() { go other.c.dropProducer(other, true) }()
		case cmd.AccessMode == 2:
			t.exclusiveWait = append(t.exclusiveWait, &exclusiveWaiter{c: c, cmd: cmd})
			return nil, 0, nil, errWaitExclusive
		case exclusive:
			return nil, 0, nil, errorf(ErrProducerFenced, "topic %s already has producers", t.full)
		case other.exclusive:
			return nil, 0, nil, errorf(ErrProducerBusy, "topic %s has an exclusive producer", t.full)
		}
	}
	version, err := t.registerSchemaLocked(cmd.Schema)
	if err != nil {
		return nil, 0, nil, err
	}
	if sub := cmd.InitialSubscription; sub != "" && checkSubscriptionName(sub) == nil {
		if _, ok := t.subs[sub]; !ok {
			s := newSubscription(t, sub, true, wire.SubShared, t.next-1)
			s.dirty = true
			t.subs[sub] = s
			t.requestFlushLocked(nil)
		}
	}
	p := &producer{id: cmd.ProducerID, c: c, t: t, name: name, since: time.Now(), address: c.remote, metadata: kvMap(cmd.Metadata),
		exclusive: exclusive, remote: replProducerCluster(name)}
	t.producers[name] = p
	return p, t.lastSeqLocked(name), version, nil
}

// lastSeqLocked is the last_sequence_id PRODUCER_SUCCESS returns. A topic
// that replicates to other clusters returns it even with de-duplication
// off: the remote clusters drop replicated entries by producer name and
// sequence id, so a producer with a fixed name must go on numbering after
// a restart instead of starting again from 0.
func (t *topic) lastSeqLocked(name string) int64 {
	if !t.dedupEnabled() && len(t.replicators) == 0 {
		return -1
	}
	if v, ok := t.dedup[name]; ok {
		return int64(v)
	}
	return -1
}

func (t *topic) removeProducer(p *producer) {
	t.mu.Lock()
	if t.producers[p.name] == p {
		delete(t.producers, p.name)
	}
	var admit *exclusiveWaiter
	for len(t.producers) == 0 && len(t.exclusiveWait) > 0 && admit == nil {
		w := t.exclusiveWait[0]
		t.exclusiveWait = t.exclusiveWait[1:]
		if !w.c.isClosed() {
			admit = w
		}
	}
	t.mu.Unlock()
	if admit != nil {
		// Admit the first waiting exclusive producer; it gets its ready
		// PRODUCER_SUCCESS now.
		admit.c.admitProducer(t, admit.cmd)
	}
}

func schemaVersion(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

func sameSchema(a, b *wire.Schema) bool {
	return a.Type == b.Type && bytes.Equal(a.Data, b.Data)
}

// registerSchemaLocked returns the version of s, adding it when new. A
// schema of another type than the topic's latest is incompatible; a new
// definition of the same type becomes a new version.
func (t *topic) registerSchemaLocked(s *wire.Schema) ([]byte, error) {
	if s == nil {
		if len(t.schemas) == 0 {
			return nil, nil
		}
		return schemaVersion(len(t.schemas) - 1), nil
	}
	for i, old := range t.schemas {
		if sameSchema(old, s) {
			return schemaVersion(i), nil
		}
	}
	if n := len(t.schemas); n > 0 && t.schemas[n-1].Type != s.Type && t.schemas[n-1].Type != 0 && s.Type != 0 {
		return nil, errorf(ErrIncompatibleSchema, "topic %s has a schema of type %d, not %d", t.full, t.schemas[n-1].Type, s.Type)
	}
	t.schemas = append(t.schemas, s)
	if err := t.saveStateLocked(); err != nil {
		t.schemas = t.schemas[:len(t.schemas)-1]
		return nil, err
	}
	return schemaVersion(len(t.schemas) - 1), nil
}

func (t *topic) schemaVersionLocked(s *wire.Schema) []byte {
	v, _ := t.registerSchemaLocked(s)
	return v
}

// schema returns the schema with the given version (latest when nil).
func (t *topic) schema(version []byte) (*wire.Schema, []byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.schemas) == 0 {
		return nil, nil, false
	}
	i := len(t.schemas) - 1
	if len(version) == 8 {
		i = int(binary.BigEndian.Uint64(version))
	}
	if i < 0 || i >= len(t.schemas) {
		return nil, nil, false
	}
	return t.schemas[i], schemaVersion(i), true
}

// requestFlush asks the flusher to persist dirty cursors; done (optional)
// runs after a flush that includes every change made before the call.
func (t *topic) requestFlushLocked(done func(error)) {
	if done != nil {
		t.waiters = append(t.waiters, done)
	}
	select {
	case t.flushCh <- struct{}{}:
	default:
	}
}

func (t *topic) flusher() {
	defer t.wg.Done()
	for {
		select {
		case <-t.flushCh:
			t.flushCursors()
		case <-t.stop:
			t.flushCursors()
			return
		}
	}
}

// flushCursors writes every dirty durable cursor and then wakes waiters.
func (t *topic) flushCursors() {
	t.mu.Lock()
	var jobs []cursorJob
	for _, s := range t.subs {
		if s.durable && s.dirty {
			jobs = append(jobs, cursorJob{path: s.cursorPath(), data: s.encodeCursorLocked()})
			s.dirty = false
		}
	}
	waiters := t.waiters
	t.waiters = nil
	removals := t.cursorRemovals
	t.cursorRemovals = nil
	t.mu.Unlock()
	var err error
	// Removals first: a subscription deleted and created again since the
	// last flush has a job below that writes its new cursor.
	for _, path := range removals {
		if e := removeFile(path); e != nil && err == nil {
			err = e
			t.b.log.Error("remove cursor", "topic", t.full, "err", e)
		}
	}
	for _, j := range jobs {
		if e := writeFileAtomic(j.path, j.data, t.b.cfg.Fsync != FsyncOff); e != nil && err == nil {
			err = e
			t.b.log.Error("persist cursor", "topic", t.full, "err", e)
		}
	}
	for _, w := range waiters {
		w(err)
	}
}

type cursorJob struct {
	path string
	data []byte
}

// close stops the topic's goroutines, disconnects its clients and flushes
// cursors. With remove set it also deletes its storage.
func (t *topic) close(remove bool) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	var conns []func()
	for _, p := range t.producers {
		p := p
		conns = append(conns, func() { p.c.dropProducer(p, true) })
	}
	for _, s := range t.subs {
		for _, c := range s.consumers {
			c := c
			conns = append(conns, func() { c.c.dropConsumer(c, true) })
		}
	}
	if !remove {
		_ = t.saveStateLocked()
	}
	repls := t.takeReplicatorsLocked()
	t.mu.Unlock()
	for _, r := range repls {
		r.halt()
	}
	for _, f := range conns {
		f()
	}
	close(t.stop)
	t.wg.Wait()
	t.log.close()
	if remove {
		return os.RemoveAll(t.dir)
	}
	return nil
}

// sampleRates updates the per-second rates shown in stats.
func (t *topic) sampleRates(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dt := now.Sub(t.lastRateAt).Seconds()
	if dt <= 0 {
		return
	}
	s := &t.stats
	s.rateIn = float64(s.msgIn-s.prevMsgIn) / dt
	s.tputIn = float64(s.bytesIn-s.prevBytesIn) / dt
	s.rateOut = float64(s.msgOut-s.prevMsgOut) / dt
	s.tputOut = float64(s.bytesOut-s.prevOut) / dt
	s.prevMsgIn, s.prevBytesIn, s.prevMsgOut, s.prevOut = s.msgIn, s.bytesIn, s.msgOut, s.bytesOut
	t.lastRateAt = now
	for _, in := range t.replIn {
		in.rateIn = float64(in.msgIn-in.prevMsg) / dt
		in.tputIn = float64(in.bytesIn-in.prevByte) / dt
		in.prevMsg, in.prevByte = in.msgIn, in.bytesIn
	}
	for _, r := range t.replicators {
		r.sampleRates(dt)
	}
}

// terminate stops the topic accepting messages: producers are
// disconnected (and cannot come back) and consumers get
// REACHED_END_OF_TOPIC once they have everything. It returns the last
// message id.
func (t *topic) terminate() (wire.MessageID, error) {
	t.mu.Lock()
	t.terminated = true
	err := t.saveStateLocked()
	var ps []*producer
	for _, p := range t.producers {
		ps = append(ps, p)
	}
	for _, s := range t.subs {
		s.dispatchLocked()
	}
	last := t.positionLocked(t.next - 1)
	t.mu.Unlock()
	for _, p := range ps {
		p.c.dropProducer(p, true)
	}
	return last, err
}
