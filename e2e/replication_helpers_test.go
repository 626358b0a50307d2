//go:build e2e

package e2e

// Helpers for the tests that run on geo-replicated namespaces: replication
// is configured on the brokers through Pulsar's admin REST API with
// pulsar-client-go's pulsaradmin, as a user would configure Apache Pulsar;
// producers write to one cluster only; readers watch for the first output
// an instance wrote in a given cluster.

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/internal/testkit"
)

// outputClusterProperty is the property agents set on every output: the
// cluster the instance that wrote it ran in.
const outputClusterProperty = "meshfed-cluster"

// admin returns a pulsaradmin client of a cluster's broker.
func (f *fed) admin(cluster string) pulsaradmin.Client {
	f.t.Helper()
	a, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: f.brokers[cluster].adminURL()})
	if err != nil {
		f.t.Fatalf("admin client of %s: %v", cluster, err)
	}
	return a
}

// replicate makes every broker of the federation know every other one as a
// cluster, allows tenant public on all of them and replicates namespace
// public/default to all of them (each broker holds its own policies, as
// Pulsar clusters with separate configuration stores do).
func (f *fed) replicate() {
	f.t.Helper()
	names := make([]string, 0, len(f.brokers))
	for n := range f.brokers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, local := range names {
		a := f.admin(local)
		for _, remote := range names {
			if remote == local {
				continue
			}
			b := f.brokers[remote]
			err := a.Clusters().Create(utils.ClusterData{Name: remote, ServiceURL: b.adminURL(), BrokerServiceURL: b.serviceURL()})
			if err != nil {
				f.t.Fatalf("create cluster %s on broker %s: %v", remote, local, err)
			}
		}
		if err := a.Tenants().Update(utils.TenantData{Name: "public", AllowedClusters: names}); err != nil {
			f.t.Fatalf("allow tenant public on %v at broker %s: %v", names, local, err)
		}
		if err := a.Namespaces().SetNamespaceReplicationClusters("public/default", names); err != nil {
			f.t.Fatalf("replicate public/default to %v at broker %s: %v", names, local, err)
		}
		got, err := a.Namespaces().GetNamespaceReplicationClusters("public/default")
		if err != nil {
			f.t.Fatalf("read replication clusters of public/default at broker %s: %v", local, err)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(names) {
			f.t.Fatalf("broker %s replicates public/default to %v, want %v", local, got, names)
		}
	}
}

// aStream produces sentences to one cluster only, at a steady pace, with a
// producer that never times out a send: while the broker is down the
// client keeps its pending messages and sends them when it returns, as a
// producing application would.
type aStream struct {
	f       *fed
	topic   string
	c       pulsar.Client
	p       pulsar.Producer
	perTick int
	// limit is the sentence the stream stops before; zero: none.
	limit int
	stop  chan struct{}
	done  chan struct{}

	mu sync.Mutex
	// next is the next sentence to send; acked the length of the prefix of
	// sentences the broker confirmed; err the first send error. Guarded by mu.
	next, acked int
	confirmed   map[int]bool
	err         error
}

// streamTo starts producing sentences from `from` on, perTick every 10 ms,
// to topic on cluster, up to limit (0: no limit), batching on. The caller
// closes it (it usually outlives the subtest that starts it).
func (f *fed) streamTo(cluster, topic string, from, perTick, limit int) *aStream {
	f.t.Helper()
	// A client of its own: the test drops its shared clients of a cluster
	// whose broker it kills, and this producer must outlive that.
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: f.brokers[cluster].serviceURL(), OperationTimeout: 30 * time.Second,
		ConnectionTimeout: 5 * time.Second, Logger: plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))})
	if err != nil {
		f.t.Fatalf("pulsar client of %s: %v", cluster, err)
	}
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: time.Millisecond,
		MaxPendingMessages: 100000, SendTimeout: -1})
	if err != nil {
		c.Close()
		f.t.Fatalf("producer for %s on %s: %v", topic, cluster, err)
	}
	s := &aStream{f: f, topic: topic, c: c, p: p, perTick: perTick, limit: limit, stop: make(chan struct{}), done: make(chan struct{}),
		next: from, acked: from, confirmed: map[int]bool{}}
	go s.run()
	return s
}

func (s *aStream) run() {
	defer close(s.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		from, to := s.next, s.next+s.perTick
		if s.limit > 0 {
			to = min(to, s.limit)
		}
		s.next = to
		s.mu.Unlock()
		if from == to {
			return
		}
		for i := from; i < to; i++ {
			s.p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(sentence(i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				s.mu.Lock()
				defer s.mu.Unlock()
				if err != nil {
					if s.err == nil {
						s.err = fmt.Errorf("sentence %d: %w", i, err)
					}
					return
				}
				s.confirmed[i] = true
				for s.confirmed[s.acked] {
					delete(s.confirmed, s.acked)
					s.acked++
				}
			})
		}
	}
}

// halt stops sending new sentences; those sent stay pending in the client.
func (s *aStream) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// close stops the stream and closes its producer and client.
func (s *aStream) close() {
	s.halt()
	s.p.Close()
	s.c.Close()
}

// progress returns the next sentence to send and the confirmed prefix.
func (s *aStream) progress() (next, acked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next, s.acked
}

// finish halts the stream and waits until every sentence sent was
// confirmed; it returns how many sentences were produced in all.
func (s *aStream) finish(timeout time.Duration) int {
	s.f.t.Helper()
	s.halt()
	var next int
	testkit.Eventually(s.f.t, timeout, "every sentence sent to "+s.topic+" confirmed", func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			s.f.t.Fatalf("produce to %s: %v", s.topic, s.err)
		}
		next = s.next
		return s.acked == s.next, fmt.Sprintf("%d of %d confirmed", s.acked, s.next)
	})
	return next
}

// firstOutput is a reader of a topic that records when the first message
// of interest arrived (see watchFirst).
type firstOutput struct {
	r    pulsar.Reader
	stop context.CancelFunc
	done chan struct{}
	mu   sync.Mutex
	at   time.Time // guarded by mu
}

// watchFirstOutput records when the first message carrying
// outputClusterProperty=writtenIn arrives on the topic.
func (f *fed) watchFirstOutput(topicCluster, topic, writtenIn string) *firstOutput {
	f.t.Helper()
	return f.watchFirst(topicCluster, topic, func(m pulsar.Message) bool { return m.Properties()[outputClusterProperty] == writtenIn })
}

// watchFirstWord reads a topic from the moment it is started and records
// when the first word of a sentence numbered from or later arrived.
func (f *fed) watchFirstWord(cluster, topic string, from int) *firstOutput {
	f.t.Helper()
	return f.watchFirst(cluster, topic, func(m pulsar.Message) bool {
		var i int
		_, err := fmt.Sscanf(string(m.Payload()), "m%d", &i)
		return err == nil && i >= from
	})
}

// watchFirst reads a topic from the moment it is started and records when
// the first message for which match holds arrived.
func (f *fed) watchFirst(cluster, topic string, match func(pulsar.Message) bool) *firstOutput {
	f.t.Helper()
	r, err := f.pulsar(cluster).CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.LatestMessageID()})
	if err != nil {
		f.t.Fatalf("reader of %s on %s: %v", topic, cluster, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &firstOutput{r: r, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			m, err := r.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					continue
				}
				return
			}
			if match(m) {
				w.mu.Lock()
				w.at = time.Now()
				w.mu.Unlock()
				return
			}
		}
	}()
	f.t.Cleanup(w.close)
	return w
}

// wait returns when the first output from the cluster was read.
func (w *firstOutput) wait(t *testing.T, timeout time.Duration, what string) time.Time {
	t.Helper()
	var at time.Time
	testkit.Eventually(t, timeout, what, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		at = w.at
		return !at.IsZero(), "not yet"
	})
	return at
}

func (w *firstOutput) close() {
	w.stop()
	<-w.done
	w.r.Close()
}

// sentencesIn returns the indexes of the sentences a topic copy holds.
func (f *fed) sentencesIn(cluster, topic string) map[int]bool {
	f.t.Helper()
	out := map[int]bool{}
	for _, p := range f.readAll(cluster, topic) {
		var i int
		if _, err := fmt.Sscanf(p, "M%d, Fox!", &i); err != nil {
			f.t.Fatalf("%s on %s holds %q, not a sentence", topic, cluster, p)
		}
		out[i] = true
	}
	return out
}

// wordsFor is what word-split makes of the given sentences.
func wordsFor(sentences map[int]bool) map[string]int {
	w := map[string]int{}
	for i := range sentences {
		w[fmt.Sprintf("m%d", i)]++
		w["fox"]++
	}
	return w
}

// missingSentences lists the sentences of [0, n) whose own word is not in
// got.
func missingSentences(got map[string]int, n int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if got[fmt.Sprintf("m%d", i)] == 0 {
			out = append(out, i)
		}
	}
	return out
}

// explainMissing logs, for sentences whose words are missing, where the
// sentence is in each cluster's copy of the input (message id, producer,
// publish time, replicated from) and which outputs of neighbouring
// sentences each output copy holds (with the cluster that wrote them).
func (f *fed) explainMissing(what string, missing []int, inTopic string, outs map[string]string) {
	f.t.Helper()
	if len(missing) == 0 {
		return
	}
	if len(missing) > 20 {
		missing = missing[:20]
	}
	want := map[int]bool{}
	for _, i := range missing {
		for d := -2; d <= 2; d++ {
			want[i+d] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d sentences without output, e.g. %v\n", what, len(missing), missing)
	clusters := make([]string, 0, len(f.brokers))
	for c := range f.brokers {
		clusters = append(clusters, c)
	}
	sort.Strings(clusters)
	for _, c := range clusters {
		for _, m := range f.readMessages(c, inTopic) {
			var i int
			if _, err := fmt.Sscanf(string(m.Payload()), "M%d, Fox!", &i); err == nil && want[i] {
				fmt.Fprintf(&b, "  input %d in %s: id %v producer %s published %s replicated from %q\n", i, c, m.ID(), m.ProducerName(),
					m.PublishTime().UTC().Format("15:04:05.000"), m.GetReplicatedFrom())
			}
		}
	}
	for c, topic := range outs {
		for _, m := range f.readMessages(c, topic) {
			var i int
			if _, err := fmt.Sscanf(string(m.Payload()), "m%d", &i); err == nil && want[i] {
				fmt.Fprintf(&b, "  output %s in %s: id %v producer %s written in %s replicated from %q\n", m.Payload(), c, m.ID(), m.ProducerName(),
					m.Properties()[outputClusterProperty], m.GetReplicatedFrom())
			}
		}
	}
	f.t.Log(b.String())
}

// readMessages reads a topic copy from its first message to its last.
func (f *fed) readMessages(cluster, topic string) []pulsar.Message {
	f.t.Helper()
	r, err := f.pulsar(cluster).CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 5000})
	if err != nil {
		f.t.Logf("reader of %s on %s: %v", topic, cluster, err)
		return nil
	}
	defer r.Close()
	var out []pulsar.Message
	deadline := time.Now().Add(time.Minute)
	for r.HasNext() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			f.t.Logf("read %s on %s after %d messages: %v", topic, cluster, len(out), err)
			return out
		}
		out = append(out, m)
	}
	return out
}
