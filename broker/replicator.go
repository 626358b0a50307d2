package broker

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfed/meshfed/broker/wire"
)

// Geo-replication, as Apache Pulsar's PersistentReplicator does it: for
// every topic partition of a namespace whose replication clusters include
// another cluster, a replicator reads the partition through a durable
// cursor named pulsar.repl.<remote> and republishes each entry produced
// in this cluster to the same topic on the remote cluster's broker, as a
// producer named pulsar.repl.<local>. The entry goes out byte for byte
// (producer name, sequence id, publish and event time, key, properties,
// batch structure, compression) with replicated_from=<local> added to its
// metadata; entries that already carry replicated_from are never sent on.
// Sends are pipelined; the cursor moves only on send receipts, in order,
// and is persisted by the topic's cursor flusher. After any error the
// replicator reconnects with backoff and resends from the cursor; the
// remote drops what it already stored by the original producer name and
// sequence id (see appendBatch), so a restart of either side stores
// nothing twice.

const (
	// replWindow and replWindowBytes bound the entries a replicator has
	// sent and not yet had receipts for.
	replWindow      = 1000
	replWindowBytes = 16 << 20
	// replReceiptTimeout ends a session whose oldest send has had no
	// receipt for this long.
	replReceiptTimeout = 30 * time.Second
	// replPingInterval is how often an idle session pings the remote.
	replPingInterval = 30 * time.Second
	// replBackoffMin and replBackoffMax bound the wait between sessions.
	replBackoffMin = 100 * time.Millisecond
	replBackoffMax = 5 * time.Second
	// replDialTimeout bounds connecting and creating the producer.
	replDialTimeout = 10 * time.Second
)

// replicator copies one topic partition to one remote cluster.
type replicator struct {
	t      *topic
	remote string // remote cluster name
	local  string // this broker's cluster name
	url    string // the remote's broker service URL (pulsar://host:port)
	// adminURL is the remote's admin URL ("" = unknown), used to create a
	// partitioned topic's metadata there before producing to a partition.
	adminURL string
	// data is the remote's cluster record as the replicator started with
	// it (its client settings); never changed.
	data ClusterData
	// cursor is the durable cursor pulsar.repl.<remote>; its fields are
	// guarded by t.mu.
	cursor *subscription

	stop chan struct{}
	done chan struct{}
	// wake is signalled (never blocking) when entries are appended.
	wake chan struct{}

	// msgOut and bytesOut count messages and bytes the remote confirmed.
	msgOut, bytesOut atomic.Int64

	mu sync.Mutex
	// connected, since and outbound describe the current session; lastErr
	// is why the last one ended ("" if none did). Guarded by mu.
	connected bool
	since     time.Time
	outbound  string
	lastErr   string
	// prevOut, prevBytes, rateOut, tputOut are the per-second rates of
	// msgOut and bytesOut. Guarded by mu.
	prevOut, prevBytes int64
	rateOut, tputOut   float64
	partitionsDone     bool // the remote has the partitioned topic; guarded by mu
}

func replCursorName(remote string) string { return replPrefix + remote }

// replDesire is the replicators a topic should run: remote cluster →
// its cluster data.
type replDesire map[string]*ClusterData

// replDesireLocked computes what topic n should replicate to from the
// namespace's replication clusters. Called with b.mu held.
func (b *Broker) replDesireLocked(n topicName) replDesire {
	if b.isHeartbeat(n) {
		return nil
	}
	want := replDesire{}
	for _, c := range b.replicationClustersLocked(n.ns()) {
		if c == b.cfg.ClusterName {
			continue
		}
		if d, ok := b.clusterDataLocked(c); ok {
			want[c] = d
		}
	}
	return want
}

// syncReplication brings every loaded topic's replicators in line with
// the namespaces' replication clusters and the clusters' URLs. It must be
// called without b.mu held (stopping a replicator waits for it).
func (b *Broker) syncReplication() {
	b.replMu.Lock()
	defer b.replMu.Unlock()
	type job struct {
		t    *topic
		want replDesire
	}
	b.mu.Lock()
	jobs := make([]job, 0, len(b.topics))
	for _, t := range b.topics {
		jobs = append(jobs, job{t, b.replDesireLocked(t.name)})
	}
	b.mu.Unlock()
	for _, j := range jobs {
		j.t.setReplication(j.want)
	}
}

// setReplication starts the replicators want names, restarts those whose
// remote URLs changed, and stops the others, deleting their cursors.
func (t *topic) setReplication(want replDesire) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	var stop []*replicator
	for remote, r := range t.replicators {
		d, ok := want[remote]
		if !ok || !reflect.DeepEqual(*d, r.data) {
			stop = append(stop, r)
			delete(t.replicators, remote)
		}
	}
	t.mu.Unlock()
	for _, r := range stop {
		r.halt()
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	// Cursors of clusters no longer replicated to go, also those found
	// on disk when the topic was loaded.
	dropped := false
	for name, s := range t.subs {
		if remote, ok := strings.CutPrefix(name, replPrefix); ok && s.system {
			if _, keep := want[remote]; !keep {
				t.dropReplCursorLocked(remote)
				dropped = true
			}
		}
	}
	for remote, d := range want {
		if _, ok := t.replicators[remote]; ok {
			continue
		}
		t.startReplicatorLocked(remote, d)
	}
	var wait chan error
	if dropped {
		wait = make(chan error, 1)
		t.requestFlushLocked(func(err error) { wait <- err })
	}
	t.mu.Unlock()
	if wait != nil {
		<-wait
	}
}

// startReplicatorLocked creates the replicator's cursor if it has none (at
// the end of the topic, as Pulsar opens a new replicator's cursor) and
// starts it.
func (t *topic) startReplicatorLocked(remote string, d *ClusterData) {
	name := replCursorName(remote)
	s, ok := t.subs[name]
	if !ok {
		s = newSubscription(t, name, true, wire.SubExclusive, t.next-1)
		s.system = true
		s.dirty = true
		t.subs[name] = s
		t.requestFlushLocked(nil)
	}
	tg := t.b.targetOf(d)
	r := &replicator{t: t, remote: remote, local: t.b.cfg.ClusterName, url: tg.url, adminURL: tg.adminURL, data: *d,
		cursor: s, stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	t.replicators[remote] = r
	go r.run()
}

// dropReplCursorLocked deletes a stopped replicator's cursor (memory and
// file): retention no longer waits for it.
func (t *topic) dropReplCursorLocked(remote string) {
	name := replCursorName(remote)
	s, ok := t.subs[name]
	if !ok || !s.system {
		return
	}
	delete(t.subs, name)
	s.dirty = false
	t.cursorRemovals = append(t.cursorRemovals, s.cursorPath())
}

// stopReplicators stops every replicator of the topic (keeping cursors).
// takeReplicatorsLocked removes every replicator of t and returns them for
// the caller to halt once t.mu is released. The caller holds t.mu.
func (t *topic) takeReplicatorsLocked() []*replicator {
	rs := slices.Collect(maps.Values(t.replicators))
	clear(t.replicators)
	return rs
}

func (t *topic) stopReplicators() {
	t.mu.Lock()
	rs := t.takeReplicatorsLocked()
	t.mu.Unlock()
	for _, r := range rs {
		r.halt()
	}
}

// wakeReplicatorsLocked tells replicators new entries are there.
func (t *topic) wakeReplicatorsLocked() {
	for _, r := range t.replicators {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// halt stops the replicator and waits for it.
func (r *replicator) halt() {
	close(r.stop)
	<-r.done
}

func (r *replicator) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *replicator) run() {
	defer close(r.done)
	backoff := replBackoffMin
	for !r.stopped() {
		progressed, err := r.session()
		if r.stopped() {
			return
		}
		r.mu.Lock()
		r.connected = false
		r.outbound = ""
		if err != nil {
			r.lastErr = err.Error()
		}
		r.mu.Unlock()
		if progressed {
			backoff = replBackoffMin
		}
		r.t.b.log.Warn("replicator disconnected", "topic", r.t.full, "remote", r.remote, "err", err, "retry_in", backoff)
		select {
		case <-r.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, replBackoffMax)
	}
}

// inflight is an entry a session has taken from the topic: sent and
// waiting for its receipt, or skipped (needs none).
type inflight struct {
	id     int64
	seq    uint64
	msgs   int32
	size   int
	sentAt time.Time
	skip   bool
	acked  bool
}

// session connects to the remote, creates the producer and replicates
// until an error or a stop. progressed reports that the remote confirmed
// something.
func (r *replicator) session() (progressed bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), replDialTimeout)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	opts, hc, err := r.t.b.remoteClient(&r.data)
	if err != nil {
		return false, fmt.Errorf("client settings for cluster %s: %w", r.remote, err)
	}
	if r.t.name.partition >= 0 {
		if err := r.ensureRemotePartitions(ctx, hc); err != nil {
			return false, err
		}
	}
	c, err := dialBroker(ctx, r.url, opts)
	if err != nil {
		return false, err
	}
	c.writeTimeout = replReceiptTimeout
	// Closing the connection unblocks the reader below and any write when
	// the session ends or the replicator is stopped.
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-r.stop:
		case <-ended:
		}
		c.close()
	}()
	if _, err := c.createProducer(ctx, r.t.full, replPrefix+r.local, 1, 1); err != nil {
		return false, err
	}
	r.mu.Lock()
	r.connected, r.since, r.outbound, r.lastErr = true, time.Now(), c.local, ""
	r.mu.Unlock()
	r.t.b.log.Info("replicator connected", "topic", r.t.full, "remote", r.remote, "url", r.url)

	resps := make(chan *wire.Response, replWindow+16)
	readErr := make(chan error, 1)
	go func() {
		for {
			resp, err := c.read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case resps <- resp:
			case <-ended:
				return
			}
		}
	}()

	t := r.t
	t.mu.Lock()
	pos := r.cursor.markDelete + 1
	t.mu.Unlock()
	// queue holds every entry taken from the topic and not yet passed by
	// the cursor, in order; awaiting the sent ones still without receipt.
	var queue, awaiting []*inflight
	var qBytes int
	lastWrite := time.Now()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var frames []byte
	for {
		frames = frames[:0]
		for len(queue) < replWindow && qBytes < replWindowBytes {
			item, frame, ok, err := r.next(pos)
			if err != nil {
				return progressed, err
			}
			if !ok {
				break
			}
			pos = item.id + 1
			queue = append(queue, item)
			qBytes += item.size
			if !item.skip {
				item.sentAt = time.Now()
				awaiting = append(awaiting, item)
				frames = append(frames, frame...)
			}
		}
		if len(frames) > 0 {
			if err := c.write(frames); err != nil {
				return progressed, fmt.Errorf("send to %s: %w", r.remote, err)
			}
			lastWrite = time.Now()
		}
		queue, qBytes = r.complete(queue, qBytes)

		select {
		case <-r.stop:
			return progressed, nil
		case err := <-readErr:
			return progressed, fmt.Errorf("read from %s: %w", r.remote, err)
		case <-r.wake:
		case resp := <-resps:
			// Take every response already there before moving the cursor.
			for more := true; more; {
				if awaiting, err = r.handle(resp, awaiting); err != nil {
					return progressed, err
				}
				select {
				case resp = <-resps:
				default:
					more = false
				}
			}
			progressed = true
		case now := <-ticker.C:
			if len(awaiting) > 0 && now.Sub(awaiting[0].sentAt) > replReceiptTimeout {
				return progressed, fmt.Errorf("no send receipt from %s for %v", r.remote, replReceiptTimeout)
			}
			if now.Sub(lastWrite) > replPingInterval {
				if err := c.write(wire.AppendFrame(nil, wire.Ping())); err != nil {
					return progressed, fmt.Errorf("ping %s: %w", r.remote, err)
				}
				lastWrite = now
			}
		}
	}
}

// next reads entry pos and returns its queue item and, unless the entry is
// skipped, the SEND frame that republishes it. ok is false when pos is not
// written yet.
func (r *replicator) next(pos int64) (item *inflight, frame []byte, ok bool, err error) {
	t := r.t
	t.mu.Lock()
	if pos >= t.next {
		t.mu.Unlock()
		return nil, nil, false, nil
	}
	if pos < t.first {
		// Removed before replication was configured (retention waits for
		// this cursor): nothing to send up to the first retained entry.
		first := t.first
		t.mu.Unlock()
		return &inflight{id: first - 1, skip: true}, nil, true, nil
	}
	e := t.entryLocked(pos)
	var info entryInfo
	if e != nil {
		info = *e
	}
	t.mu.Unlock()
	if e == nil {
		return nil, nil, false, fmt.Errorf("entry %d of %s is not indexed", pos, t.full)
	}
	payload, err := t.log.read(&info)
	if err != nil {
		return nil, nil, false, fmt.Errorf("read entry %d: %w", pos, err)
	}
	md, err := wire.ParseMetadata(payload)
	if err != nil {
		// Stored entries were parsed on the way in; this is disk damage.
		return nil, nil, false, fmt.Errorf("entry %d: %w", pos, err)
	}
	if md.ReplicatedFrom != "" || md.Marker || !replicateTo(md.ReplicateTo, r.remote) {
		return &inflight{id: pos, skip: true}, nil, true, nil
	}
	out, err := wire.WithReplicatedFrom(payload, r.local)
	if err != nil {
		return nil, nil, false, fmt.Errorf("entry %d: %w", pos, err)
	}
	item = &inflight{id: pos, seq: info.seq, msgs: info.numMsgs, size: len(out)}
	frame = wire.AppendPayloadFrame(nil, wire.SendCmd(1, info.seq, info.hiSeq, info.numMsgs), wire.CRC32C(out), out)
	return item, frame, true, nil
}

// replicateTo reports whether an entry restricted to the clusters list
// (empty = no restriction) goes to remote.
func replicateTo(list []string, remote string) bool {
	if len(list) == 0 {
		return true
	}
	for _, c := range list {
		if c == remote {
			return true
		}
	}
	return false
}

// handle applies one response of the remote: a receipt confirms the
// oldest entry awaiting one (receipts come in send order).
func (r *replicator) handle(resp *wire.Response, awaiting []*inflight) ([]*inflight, error) {
	switch {
	case resp.SendReceipt != nil:
		if len(awaiting) == 0 {
			return awaiting, fmt.Errorf("unexpected receipt from %s for sequence id %d", r.remote, resp.SendReceipt.SequenceID)
		}
		it := awaiting[0]
		if it.seq != resp.SendReceipt.SequenceID {
			return awaiting, fmt.Errorf("receipt from %s for sequence id %d, expected %d", r.remote, resp.SendReceipt.SequenceID, it.seq)
		}
		it.acked = true
		return awaiting[1:], nil
	case resp.SendError != nil:
		return awaiting, fmt.Errorf("%s refused entry with sequence id %d: %w", r.remote, resp.SendError.SequenceID,
			&remoteError{resp.SendError.Code, resp.SendError.Message})
	case resp.CloseProducer != nil:
		return awaiting, fmt.Errorf("%s closed the replication producer", r.remote)
	case resp.Error != nil:
		return awaiting, fmt.Errorf("%s: %w", r.remote, &remoteError{resp.Error.Code, resp.Error.Message})
	}
	return awaiting, nil
}

// complete takes the leading confirmed or skipped entries off the queue
// and moves the cursor past them.
func (r *replicator) complete(queue []*inflight, qBytes int) ([]*inflight, int) {
	n := 0
	var msgs, bytes int64
	for n < len(queue) && (queue[n].skip || queue[n].acked) {
		if queue[n].acked {
			msgs += int64(queue[n].msgs)
			bytes += int64(queue[n].size)
		}
		qBytes -= queue[n].size
		n++
	}
	if n == 0 {
		return queue, qBytes
	}
	last := queue[n-1].id
	r.msgOut.Add(msgs)
	r.bytesOut.Add(bytes)
	t := r.t
	t.mu.Lock()
	if t.subs[r.cursor.name] == r.cursor && last > r.cursor.markDelete {
		r.cursor.moveMarkDeleteLocked(last)
		r.cursor.dirty = true
		t.requestFlushLocked(nil)
	}
	t.mu.Unlock()
	return append(queue[:0], queue[n:]...), qBytes
}

// ensureRemotePartitions makes the remote know the partitioned topic this
// partition belongs to (with at least as many partitions) before anything
// is produced to the partition there, as the partitioned metadata of a
// geo-replicated namespace is shared between clusters in Pulsar.
func (r *replicator) ensureRemotePartitions(ctx context.Context, hc *http.Client) error {
	r.mu.Lock()
	done := r.partitionsDone
	r.mu.Unlock()
	if done {
		return nil
	}
	base := r.t.name.base()
	np := r.t.b.partitions(base)
	if r.adminURL == "" {
		return fmt.Errorf("cluster %s has no serviceUrl: cannot create partitioned topic %s there", r.remote, base)
	}
	if err := ensurePartitionedTopic(ctx, hc, r.adminURL, base, np); err != nil {
		return fmt.Errorf("create partitioned topic %s on %s: %w", base, r.remote, err)
	}
	r.mu.Lock()
	r.partitionsDone = true
	r.mu.Unlock()
	return nil
}

// sampleRates updates the per-second rates shown in stats.
func (r *replicator) sampleRates(dt float64) {
	out, bytes := r.msgOut.Load(), r.bytesOut.Load()
	r.mu.Lock()
	r.rateOut = float64(out-r.prevOut) / dt
	r.tputOut = float64(bytes-r.prevBytes) / dt
	r.prevOut, r.prevBytes = out, bytes
	r.mu.Unlock()
}

// replProducerCluster is the cluster a replicator producer replicates from:
// its name is pulsar.repl.<cluster> (Pulsar 3 adds "--><remote>"). "" for
// any other producer.
func replProducerCluster(name string) string {
	c, ok := strings.CutPrefix(name, replPrefix)
	if !ok || c == "" {
		return ""
	}
	c, _, _ = strings.Cut(c, "-->")
	return c
}

// replInStats counts what one other cluster's replicators stored in a
// topic. Guarded by the topic's mu.
type replInStats struct {
	msgIn, bytesIn int64
	// dups counts replicated entries dropped as already stored.
	dups              int64
	prevMsg, prevByte int64
	rateIn, tputIn    float64
}

func (t *topic) replInLocked(remote string) *replInStats {
	in, ok := t.replIn[remote]
	if !ok {
		in = &replInStats{}
		t.replIn[remote] = in
	}
	return in
}

// replicationStatsLocked builds the stats' replication map.
func (t *topic) replicationStatsLocked() map[string]*ReplicatorStats {
	out := map[string]*ReplicatorStats{}
	get := func(c string) *ReplicatorStats {
		rs, ok := out[c]
		if !ok {
			rs = &ReplicatorStats{}
			out[c] = rs
		}
		return rs
	}
	for remote, r := range t.replicators {
		rs := get(remote)
		md := r.cursor.markDelete
		rs.ReplicationBacklog = t.next - 1 - md
		if e := t.entryLocked(md + 1); e != nil && e.publishMs > 0 {
			rs.ReplicationDelayInSeconds = max(0, (time.Now().UnixMilli()-e.publishMs)/1000)
		}
		rs.MsgOutCounter = r.msgOut.Load()
		r.mu.Lock()
		rs.Connected = r.connected
		rs.MsgRateOut, rs.MsgThroughputOut = r.rateOut, r.tputOut
		rs.OutboundConnection = r.outbound
		if r.connected {
			rs.OutboundConnectedSince = r.since.UTC().Format(time.RFC3339Nano)
		}
		rs.LastError = r.lastErr
		r.mu.Unlock()
	}
	for remote, in := range t.replIn {
		rs := get(remote)
		rs.MsgRateIn, rs.MsgThroughputIn, rs.DuplicatesIn = in.rateIn, in.tputIn, in.dups
	}
	for _, p := range t.producers {
		if p.remote != "" {
			rs := get(p.remote)
			rs.InboundConnection = p.address
			rs.InboundConnectedSince = p.since.UTC().Format(time.RFC3339Nano)
		}
	}
	return out
}

// add sums a partition's replication stats into a partitioned topic's.
func (a *ReplicatorStats) add(b *ReplicatorStats) {
	a.MsgRateIn += b.MsgRateIn
	a.MsgThroughputIn += b.MsgThroughputIn
	a.MsgRateOut += b.MsgRateOut
	a.MsgThroughputOut += b.MsgThroughputOut
	a.ReplicationBacklog += b.ReplicationBacklog
	a.ReplicationDelayInSeconds = max(a.ReplicationDelayInSeconds, b.ReplicationDelayInSeconds)
	a.Connected = a.Connected && b.Connected
	a.MsgOutCounter += b.MsgOutCounter
	a.DuplicatesIn += b.DuplicatesIn
	if a.LastError == "" {
		a.LastError = b.LastError
	}
}
