package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/federation"
)

// ParseStream parses a topic flag: CLUSTER[,CLUSTER...]:TOPIC, for example
// b:persistent://public/default/words or a,c:persistent://public/default/sentences.
func ParseStream(s string) (federation.DrillStream, error) {
	i := strings.Index(s, ":")
	if i <= 0 || strings.HasPrefix(s[i+1:], "//") {
		return federation.DrillStream{}, fmt.Errorf("%q: name the cluster before the topic, as in b:persistent://public/default/words", s)
	}
	var st federation.DrillStream
	for _, c := range strings.Split(s[:i], ",") {
		if c = strings.TrimSpace(c); c == "" {
			return federation.DrillStream{}, fmt.Errorf("%q: empty cluster name", s)
		}
		st.Clusters = append(st.Clusters, c)
	}
	st.Topic = strings.TrimSpace(s[i+1:])
	if st.Topic == "" {
		return federation.DrillStream{}, fmt.Errorf("%q: no topic after the cluster", s)
	}
	return st, nil
}

// marker builds and recognises the tokens of a drill's input stream. Input
// message n carries the tokens <prefix>n<n>w<k> for k < outputs, separated
// by spaces; each token is one output item. Tokens are lower-case letters
// and digits only, so word-splitting functions keep them whole and
// lower-casing leaves them unchanged.
type marker struct {
	prefix  string
	outputs int
}

func newMarker(id string, outputs int) marker {
	var b strings.Builder
	b.WriteByte('d')
	for _, r := range strings.ToLower(id) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return marker{prefix: b.String(), outputs: outputs}
}

func (m marker) payload(seq int64) []byte {
	var b strings.Builder
	for k := 0; k < m.outputs; k++ {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%sn%dw%d", m.prefix, seq, k)
	}
	return []byte(b.String())
}

// scan calls fn for every token of this drill in an output payload.
func (m marker) scan(payload []byte, fn func(seq int64, out int)) {
	s := string(payload)
	for {
		i := strings.Index(s, m.prefix+"n")
		if i < 0 {
			return
		}
		s = s[i+len(m.prefix)+1:]
		seq, rest, ok := digits(s)
		if !ok || !strings.HasPrefix(rest, "w") {
			continue
		}
		out, rest2, ok := digits(rest[1:])
		if !ok {
			continue
		}
		// A longer run of letters or digits is another token.
		if rest2 != "" && isAlnum(rest2[0]) {
			s = rest2
			continue
		}
		fn(seq, int(out))
		s = rest2
	}
}

func digits(s string) (int64, string, bool) {
	n := 0
	for n < len(s) && n < 18 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 {
		return 0, s, false
	}
	v, err := strconv.ParseInt(s[:n], 10, 64)
	return v, s[n:], err == nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ClusterProperty is the output message property that names the cluster
// the function instance ran in.
const ClusterProperty = "meshfed-cluster"

// target is where the stream writes: the identical message to every copy
// (one copy when replication is real), counted as written to cluster.
type target struct {
	cluster string
	copies  []pulsar.Producer
}

// stream produces the drill's numbered input messages and reads the
// watched topics and, when replication is real, the fallback copies of the
// input topic.
type stream struct {
	mark marker
	now  func() time.Time
	// targets[0] is the home; targets[1], if any, the fallback the stream
	// is written to while the home is down in a crash drill, and
	// targets[2] the home again after it returned. cur indexes the one
	// written now. Appended to by the drill's goroutine only, under mu.
	targets []target
	cur     atomic.Int32
	// sent counts the messages sent so far, acknowledged or not.
	sent atomic.Int64
	// sendMu orders sends: the steady stream and a burst share one
	// producer, whose sequence ids must grow in the order of the sends
	// (the brokers de-duplicate by them). nextSeq is the next message's
	// sequence number; guarded by sendMu.
	sendMu  sync.Mutex
	nextSeq int64

	readers  []pulsar.Reader
	readCtx  context.Context
	stopRead context.CancelFunc
	// stopProd ends producing; prodDone is closed when it has ended.
	stopProd context.CancelFunc
	prodDone chan struct{}

	// mu guards every field below.
	mu sync.Mutex
	// pending input messages by sequence: acknowledgements so far.
	pending  map[int64]*pendingSend
	produced []federation.ProducedMessage
	// failures counts input messages some copy did not acknowledge.
	failures int
	seen     []federation.Observation
	// inCopy holds, per fallback cluster, the sequence numbers read from
	// its copy of the input topic.
	inCopy map[string]map[int64]bool
	// firstRead is closed at the first observation.
	firstRead chan struct{}
	readErr   error
}

type pendingSend struct {
	cluster     string
	copies      int
	acks, fails int
	homeAck     time.Time
}

func newStream(mark marker, now func() time.Time) *stream {
	return &stream{mark: mark, now: now, pending: map[int64]*pendingSend{}, inCopy: map[string]map[int64]bool{},
		firstRead: make(chan struct{}), stopRead: func() {}}
}

func (s *stream) startReaders() {
	if s.readCtx == nil {
		s.readCtx, s.stopRead = context.WithCancel(context.Background())
	}
}

// startReading reads a watched topic in the background until close.
func (s *stream) startReading(rd pulsar.Reader) {
	s.startReaders()
	s.readers = append(s.readers, rd)
	go s.read(s.readCtx, rd, func(msg pulsar.Message, at time.Time) {
		cluster := msg.Properties()[ClusterProperty]
		s.mark.scan(msg.Payload(), func(seq int64, out int) {
			if len(s.seen) == 0 {
				close(s.firstRead)
			}
			s.seen = append(s.seen, federation.Observation{Seq: seq, Output: out, At: at, Cluster: cluster})
		})
	})
}

// startReadingCopy reads cluster's copy of the input topic in the
// background until close, noting which inputs reached it.
func (s *stream) startReadingCopy(cluster string, rd pulsar.Reader) {
	s.startReaders()
	s.readers = append(s.readers, rd)
	s.mu.Lock()
	s.inCopy[cluster] = map[int64]bool{}
	s.mu.Unlock()
	go s.read(s.readCtx, rd, func(msg pulsar.Message, _ time.Time) {
		s.mark.scan(msg.Payload(), func(seq int64, _ int) { s.inCopy[cluster][seq] = true })
	})
}

// copySnapshot returns the inputs read so far from cluster's copy of the
// input topic (nil when it is not read).
func (s *stream) copySnapshot(cluster string) map[int64]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.inCopy[cluster]
	if !ok {
		return nil
	}
	out := make(map[int64]bool, len(in))
	for k := range in {
		out[k] = true
	}
	return out
}

// startProducing produces at rate in the background until stopProducing.
func (s *stream) startProducing(rate float64) {
	stop, cancel := context.WithCancel(context.Background())
	s.stopProd, s.prodDone = cancel, make(chan struct{})
	go func() { defer close(s.prodDone); s.produce(stop, rate) }()
}

// addTarget adds a target and writes to it from now on.
func (s *stream) addTarget(t target) {
	s.mu.Lock()
	s.targets = append(s.targets, t)
	n := len(s.targets)
	s.mu.Unlock()
	s.writeTo(n - 1)
}

// writeTo switches the stream to targets[i] for the messages sent from now
// on; sends already made complete where they were made.
func (s *stream) writeTo(i int) { s.cur.Store(int32(i)) }

// stopProducing stops sending and returns once no new send can start.
func (s *stream) stopProducing() {
	if s.stopProd != nil {
		s.stopProd()
		<-s.prodDone
	}
}

// close stops producing and reading and closes producers and readers.
func (s *stream) close() {
	s.stopProducing()
	s.stopRead()
	for _, rd := range s.readers {
		rd.Close()
	}
	for _, t := range s.targets {
		for _, p := range t.copies {
			p.Close()
		}
	}
}

// read consumes r until ctx ends, calling fn under s.mu for each message.
func (s *stream) read(ctx context.Context, r pulsar.Reader, fn func(msg pulsar.Message, at time.Time)) {
	for {
		msg, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.mu.Lock()
				s.readErr = err
				s.mu.Unlock()
			}
			return
		}
		at := s.now()
		s.mu.Lock()
		fn(msg, at)
		s.mu.Unlock()
	}
}

// send publishes message seq with sequence id seq to every copy of the
// current target, so that the copies hold the same producer name and
// sequence ids, as geo-replication keeps them.
func (s *stream) send(ctx context.Context, seq int64) {
	s.mu.Lock()
	t := s.targets[s.cur.Load()]
	s.pending[seq] = &pendingSend{cluster: t.cluster, copies: len(t.copies)}
	s.mu.Unlock()
	payload := s.mark.payload(seq)
	for i, p := range t.copies {
		id := seq
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload, SequenceID: &id}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			at := s.now()
			s.mu.Lock()
			defer s.mu.Unlock()
			ps := s.pending[seq]
			if ps == nil {
				return
			}
			if err != nil {
				ps.fails++
			} else {
				ps.acks++
				if i == 0 {
					ps.homeAck = at
				}
			}
			if ps.acks+ps.fails < ps.copies {
				return
			}
			delete(s.pending, seq)
			if ps.fails > 0 {
				s.failures++
				return
			}
			s.produced = append(s.produced, federation.ProducedMessage{Seq: seq, Outputs: s.mark.outputs, Acked: ps.homeAck, Cluster: ps.cluster})
		})
	}
}

// sendNext sends the next n messages in order and returns the first's
// sequence number.
func (s *stream) sendNext(n int) int64 {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	first := s.nextSeq
	for range n {
		s.send(context.Background(), s.nextSeq)
		s.nextSeq++
		s.sent.Add(1)
	}
	return first
}

// settled reports whether every message of [from, from+n) was
// acknowledged or failed.
func (s *stream) settled(from int64, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := range s.pending {
		if seq >= from && seq < from+int64(n) {
			return false
		}
	}
	return true
}

// inCopyAll reports whether cluster's copy of the input topic, when it is
// read, holds every message of [from, from+n) (true when it is not read).
func (s *stream) inCopyAll(cluster string, from int64, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.inCopy[cluster]
	if !ok {
		return true
	}
	for seq := from; seq < from+int64(n); seq++ {
		if !in[seq] {
			return false
		}
	}
	return true
}

// sawFrom reports whether an output of an input numbered from or later
// was read.
func (s *stream) sawFrom(from int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.seen) - 1; i >= 0; i-- {
		if s.seen[i].Seq >= from {
			return true
		}
	}
	return false
}

// produce sends at rate until stop ends. Sends already made are not
// cancelled with it: flush waits for them.
func (s *stream) produce(stop context.Context, rate float64) {
	interval := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sendNext(1)
		select {
		case <-stop.Done():
			return
		case <-t.C:
		}
	}
}

// flush waits for every producer to have its sends acknowledged or failed.
func (s *stream) flush() error {
	var errs []error
	for _, t := range s.targets {
		for _, p := range t.copies {
			if err := p.Flush(); err != nil {
				errs = append(errs, fmt.Errorf("flush %s on cluster %s: %w", p.Topic(), t.cluster, err))
			}
		}
	}
	return errors.Join(errs...)
}

// snapshot returns copies of what was produced and read so far.
func (s *stream) snapshot() ([]federation.ProducedMessage, []federation.Observation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.produced), slices.Clone(s.seen)
}

// account matches what was produced with what was read.
func (s *stream) account() federation.MessageAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return federation.AccountMessages(s.produced, s.seen)
}

func (s *stream) counts() (produced, failures, seen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.produced), s.failures, len(s.seen)
}
