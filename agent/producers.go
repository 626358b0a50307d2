package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/objects"
)

// runFailure latches the first error that needs the instance to restart
// (a failed effectively-once send, a producer that cannot be created, a
// state commit that failed under effectively-once). Once it is set the
// consumer loop processes no further input, so an input whose outputs were
// not written is never overtaken by a later one of the same producer: on
// restart the subscription redelivers it, in order, before anything after.
type runFailure struct {
	// err holds the first error; nil until fail.
	err atomic.Pointer[error]
	ch  chan struct{}
}

func newRunFailure() *runFailure { return &runFailure{ch: make(chan struct{})} }

func (f *runFailure) fail(err error) {
	if f.err.CompareAndSwap(nil, &err) {
		close(f.ch)
	}
}

func (f *runFailure) failed() bool { return f.err.Load() != nil }

// done is closed by the first fail.
func (f *runFailure) done() <-chan struct{} { return f.ch }

func (f *runFailure) error() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// eoKey names an effectively-once producer: one per input partition,
// original producer of the input and output topic.
type eoKey struct{ partition, producer, topic string }

// eoProducer is an effectively-once producer and what the set knows of it.
type eoProducer struct {
	p    pulsar.Producer
	name string
	// last is the highest sequence id the output topic holds from this
	// producer: the broker's LastSequenceID when it connected, raised by
	// every receipt. Guarded by producerSet.mu.
	last int64
	// inflight counts sends without an answer yet; used the last use.
	// Both guarded by producerSet.mu.
	inflight int
	used     time.Time
}

// producerSet holds an instance's producers: one per output topic for
// plain sends and, under effectively_once, one per eoKey with a
// deterministic name, batching off and explicit sequence ids, so a
// restarted, moved or failed-over instance reconnects as the same producer
// and the output topic's de-duplication keeps every output once.
type producerSet struct {
	inst    *instance
	out, in pulsar.Client
	failure *runFailure

	// mu guards the maps and the eoProducers' fields.
	mu sync.Mutex
	// plain producers by output topic.
	plain map[string]pulsar.Producer
	eo    map[eoKey]*eoProducer
	dlq   map[string]pulsar.Producer
	// dedupOn holds output namespaces whose de-duplication was turned on.
	dedupOn map[string]bool

	// started is when the set was made (the instance's run began);
	// firstWritten is set by the first output the broker stored.
	started      time.Time
	firstWritten atomic.Bool
}

func newProducerSet(inst *instance, out, in pulsar.Client, failure *runFailure) *producerSet {
	return &producerSet{inst: inst, out: out, in: in, failure: failure, plain: map[string]pulsar.Producer{}, eo: map[eoKey]*eoProducer{},
		dlq: map[string]pulsar.Producer{}, dedupOn: map[string]bool{}, started: time.Now()}
}

// noteWritten logs the run's first output the broker stored: how long
// the start took, replays included (after a move or a failover, the
// outputs it skipped as already written are counted in deduplicated).
func (p *producerSet) noteWritten() {
	if p.firstWritten.CompareAndSwap(false, true) {
		p.inst.logger.Info("first output written", "after", time.Since(p.started).Round(time.Millisecond),
			"deduplicated", p.inst.deduplicated.Load())
	}
}

// send publishes asynchronously on the plain producer of topic.
func (p *producerSet) send(ctx context.Context, topic string, m *pulsar.ProducerMessage, done func(error)) {
	p.mu.Lock()
	pr, ok := p.plain[topic]
	if !ok {
		var err error
		pr, err = p.out.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: 2 * time.Millisecond})
		if err != nil {
			p.mu.Unlock()
			err = onCluster(p.inst.outputCluster(), fmt.Errorf("create producer for %s on cluster %s: %w", topic, p.inst.outputCluster(), err))
			done(err)
			p.failure.fail(err)
			return
		}
		p.plain[topic] = pr
	}
	p.mu.Unlock()
	pr.SendAsync(ctx, m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		if err == nil {
			p.noteWritten()
		}
		done(err)
	})
}

// eoName is the deterministic producer name of k: the same in every
// cluster and for every instance of the function.
func eoName(tenant, namespace, mesh, function string, k eoKey) string {
	sum := sha256.Sum256([]byte(tenant + "/" + namespace + "/" + mesh + "/" + function + "|" + k.partition + "|" + k.producer + "|" + k.topic))
	return "meshfed-" + function + "-" + hex.EncodeToString(sum[:])[:16]
}

func (p *producerSet) eoName(k eoKey) string {
	md := p.inst.asg.GetMetadata()
	return eoName(md.GetTenant(), md.GetNamespace(), p.inst.asg.GetSpec().GetMesh(), p.inst.asg.GetSpec().GetFunction(), k)
}

// eoProducer returns the producer of k, connecting it on first use.
// Called only from the consumer loop, so one key is never connected twice
// at once; mu is not held while connecting.
func (p *producerSet) eoProducer(ctx context.Context, k eoKey) (*eoProducer, error) {
	p.mu.Lock()
	ep := p.eo[k]
	ns := ""
	if t, err := objects.ParseTopic(k.topic); err == nil {
		ns = t.Tenant + "/" + t.Namespace
	}
	needDedup := ns != "" && !p.dedupOn[ns]
	p.mu.Unlock()
	if ep != nil {
		return ep, nil
	}
	cluster := p.inst.outputCluster()
	var dedupErr error
	if needDedup {
		dedupErr = p.inst.a.ensureDedup(ctx, cluster, k.topic)
	}
	name := p.eoName(k)
	// The previous holder of the name (a stopped instance elsewhere) may
	// still be disconnecting: retry briefly, then fail and let the
	// instance restart.
	var pr pulsar.Producer
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		pr, err = p.out.CreateProducer(pulsar.ProducerOptions{Topic: k.topic, Name: name, DisableBatching: true, SendTimeout: -1})
		if err == nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("create producer %s for %s on cluster %s: %w", name, k.topic, cluster, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, onCluster(cluster, fmt.Errorf("create producer %s for %s on cluster %s: %w", name, k.topic, cluster, err))
	}
	if needDedup && dedupErr != nil {
		// A broker that creates a namespace with its first topic (meshfed
		// broker) knew no namespace to turn it on for before the producer
		// existed: try again, before the first write.
		dedupErr = p.inst.a.ensureDedup(ctx, cluster, k.topic)
	}
	ep = &eoProducer{p: pr, name: name, last: pr.LastSequenceID(), used: time.Now()}
	p.mu.Lock()
	p.eo[k] = ep
	if needDedup {
		if dedupErr == nil {
			p.dedupOn[ns] = true
		} else {
			p.inst.logger.Warn("could not enable broker de-duplication; enable it for the output namespace yourself", "namespace", ns, "err", dedupErr)
			p.dedupOn[ns] = true // warned once per namespace and run
		}
	}
	p.mu.Unlock()
	p.inst.logger.Debug("effectively-once producer connected", "producer", name, "topic", k.topic, "partition", k.partition,
		"origin_producer", k.producer, "last_sequence_id", ep.last)
	return ep, nil
}

// sendEO publishes m (its SequenceID set) on k's producer. An output at or
// below the producer's last sequence id is not sent and counted as
// deduplicated, as is one the broker answers as a duplicate (receipt id
// -1:-1). done receives nil in both cases.
func (p *producerSet) sendEO(ctx context.Context, k eoKey, m *pulsar.ProducerMessage, done func(error)) {
	ep, err := p.eoProducer(ctx, k)
	if err != nil {
		done(err)
		p.failure.fail(err)
		return
	}
	seq := *m.SequenceID
	p.mu.Lock()
	if seq <= ep.last {
		p.mu.Unlock()
		p.inst.countDeduplicated("skip")
		done(nil)
		return
	}
	ep.inflight++
	ep.used = time.Now()
	p.mu.Unlock()
	ep.p.SendAsync(ctx, m, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		p.mu.Lock()
		ep.inflight--
		if err == nil && seq > ep.last {
			ep.last = seq
		}
		p.mu.Unlock()
		if err != nil {
			done(fmt.Errorf("send to %s as %s: %w", k.topic, ep.name, err))
			return
		}
		if id != nil && id.LedgerID() == -1 && id.EntryID() == -1 {
			p.inst.countDeduplicated("broker")
		} else {
			p.noteWritten()
		}
		done(nil)
	})
}

// closeIdle closes effectively-once producers without a send for idle.
// Their names are deterministic, so a later input reconnects them and the
// broker hands back their last sequence id.
func (p *producerSet) closeIdle(idle time.Duration) int {
	now := time.Now()
	var closing []pulsar.Producer
	p.mu.Lock()
	for k, ep := range p.eo {
		if ep.inflight == 0 && now.Sub(ep.used) >= idle {
			closing = append(closing, ep.p)
			delete(p.eo, k)
		}
	}
	p.mu.Unlock()
	for _, pr := range closing {
		pr.Close()
	}
	return len(closing)
}

// sendDLQ parks a message that failed every retry on the dead-letter topic
// of the input cluster, with the error in its properties.
func (p *producerSet) sendDLQ(ctx context.Context, topic string, msg pulsar.Message, cause error, done func(error)) {
	p.mu.Lock()
	pr, ok := p.dlq[topic]
	if !ok {
		var err error
		pr, err = p.in.CreateProducer(pulsar.ProducerOptions{Topic: topic})
		if err != nil {
			p.mu.Unlock()
			done(onCluster(p.inst.spec().GetInput().GetCluster(), fmt.Errorf("create dead-letter producer for %s: %w", topic, err)))
			return
		}
		p.dlq[topic] = pr
	}
	p.mu.Unlock()
	props := map[string]string{"meshfed-error": cause.Error(), "meshfed-origin-topic": msg.Topic(), "meshfed-origin-id": msg.ID().String()}
	for k, v := range msg.Properties() {
		props[k] = v
	}
	pr.SendAsync(ctx, &pulsar.ProducerMessage{Key: msg.Key(), Payload: msg.Payload(), Properties: props},
		func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { done(err) })
}

func (p *producerSet) all() []pulsar.Producer {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pulsar.Producer
	for _, m := range []map[string]pulsar.Producer{p.plain, p.dlq} {
		for _, pr := range m {
			out = append(out, pr)
		}
	}
	for _, ep := range p.eo {
		out = append(out, ep.p)
	}
	return out
}

func (p *producerSet) flush() {
	for _, pr := range p.all() {
		_ = pr.FlushWithCtx(context.Background())
	}
}

// closeAll closes every producer; calling it again is harmless.
func (p *producerSet) closeAll() {
	all := p.all()
	p.mu.Lock()
	p.plain, p.eo, p.dlq = map[string]pulsar.Producer{}, map[eoKey]*eoProducer{}, map[string]pulsar.Producer{}
	p.mu.Unlock()
	for _, pr := range all {
		pr.Close()
	}
}
