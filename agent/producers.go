package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// producerSet holds an instance's producers: one per output topic, and,
// under effectively_once, one per (input partition, output topic) with a
// deterministic name so a restarted or moved instance reconnects as the same
// producer and the broker's de-duplication drops what was already written.
type producerSet struct {
	inst    *instance
	out, in pulsar.Client

	// mu guards the maps.
	mu sync.Mutex
	// plain producers by output topic.
	plain map[string]pulsar.Producer
	// eo producers by input partition + "|" + output topic, with the last
	// sequence id the broker had when the producer connected.
	eo     map[string]pulsar.Producer
	eoLast map[string]int64
	dlq    map[string]pulsar.Producer

	// fatal carries errors that need the instance to restart (a producer
	// that cannot be created).
	fatal chan error
}

func newProducerSet(inst *instance, out, in pulsar.Client) *producerSet {
	return &producerSet{inst: inst, out: out, in: in, plain: map[string]pulsar.Producer{}, eo: map[string]pulsar.Producer{},
		eoLast: map[string]int64{}, dlq: map[string]pulsar.Producer{}, fatal: make(chan error, 1)}
}

func (p *producerSet) fail(err error) {
	select {
	case p.fatal <- err:
	default:
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
			err = fmt.Errorf("create producer for %s on cluster %s: %w", topic, p.inst.outputCluster(), err)
			done(err)
			p.fail(err)
			return
		}
		p.plain[topic] = pr
	}
	p.mu.Unlock()
	pr.SendAsync(ctx, m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { done(err) })
}

// eoName is the deterministic producer name for one input partition and output topic.
func (p *producerSet) eoName(inTopic, outTopic string) string {
	md := p.inst.asg.GetMetadata()
	sum := sha256.Sum256([]byte(md.GetTenant() + "/" + md.GetNamespace() + "/" + p.inst.asg.GetSpec().GetMesh() + "/" +
		p.inst.asg.GetSpec().GetFunction() + "|" + inTopic + "|" + outTopic))
	return "meshfed-" + p.inst.asg.GetSpec().GetFunction() + "-" + hex.EncodeToString(sum[:8])
}

// sendEO publishes with an explicit sequence id; a sequence id the broker
// already has is skipped here (and would be dropped by its de-duplication).
func (p *producerSet) sendEO(ctx context.Context, inTopic, outTopic string, m *pulsar.ProducerMessage, done func(error)) {
	k := inTopic + "|" + outTopic
	p.mu.Lock()
	pr, ok := p.eo[k]
	if !ok {
		dedupErr := p.inst.a.ensureDedup(ctx, p.inst.outputCluster(), outTopic)
		name := p.eoName(inTopic, outTopic)
		var err error
		// The previous holder of the name (a stopped instance elsewhere)
		// may still be disconnecting: retry briefly on ProducerBusy.
		deadline := time.Now().Add(10 * time.Second)
		for {
			pr, err = p.out.CreateProducer(pulsar.ProducerOptions{Topic: outTopic, Name: name, DisableBatching: true, SendTimeout: -1})
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			p.mu.Unlock()
			err = fmt.Errorf("create producer %s for %s on cluster %s: %w", name, outTopic, p.inst.outputCluster(), err)
			done(err)
			p.fail(err)
			return
		}
		if dedupErr != nil {
			// A broker that creates a namespace with its first topic
			// (meshfed broker) knew no namespace to turn it on for before
			// the producer existed: try again, before the first write.
			dedupErr = p.inst.a.ensureDedup(ctx, p.inst.outputCluster(), outTopic)
		}
		if dedupErr != nil {
			p.inst.logger.Warn("could not enable broker de-duplication", "topic", outTopic, "err", dedupErr)
		}
		p.eo[k] = pr
		p.eoLast[k] = pr.LastSequenceID()
		p.inst.logger.Info("effectively-once producer connected", "producer", name, "topic", outTopic, "last_sequence_id", pr.LastSequenceID())
	}
	last := p.eoLast[k]
	p.mu.Unlock()
	if *m.SequenceID <= last {
		done(nil) // written before a restart or move
		return
	}
	pr.SendAsync(ctx, m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { done(err) })
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
			done(fmt.Errorf("create dead-letter producer for %s: %w", topic, err))
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
	for _, m := range []map[string]pulsar.Producer{p.plain, p.eo, p.dlq} {
		for _, pr := range m {
			out = append(out, pr)
		}
	}
	return out
}

func (p *producerSet) flush() {
	for _, pr := range p.all() {
		_ = pr.Flush()
	}
}

// closeAll closes every producer; calling it again is harmless.
func (p *producerSet) closeAll() {
	p.mu.Lock()
	all := []map[string]pulsar.Producer{p.plain, p.eo, p.dlq}
	p.plain, p.eo, p.dlq = map[string]pulsar.Producer{}, map[string]pulsar.Producer{}, map[string]pulsar.Producer{}
	p.mu.Unlock()
	for _, m := range all {
		for _, pr := range m {
			pr.Close()
		}
	}
}
