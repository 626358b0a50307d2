package agent

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Sink batching: a batch is written when it holds sinkMaxBatch records or
// sinkLinger has passed since its first record arrived.
const (
	sinkMaxBatch = 1000
	sinkLinger   = 20 * time.Millisecond
)

// runConnector runs a source or sink instance (a mesh's spec.sources or
// spec.sinks entry) until ctx ends (nil) or it fails (the instance
// restarts it with backoff, as a function).
func (i *instance) runConnector(ctx context.Context, c *meshfedv1.ConnectorRuntime) error {
	values, err := connector.ResolveSecrets(c.GetConfig().AsMap(), nil, nil)
	if err != nil {
		return fmt.Errorf("resolve the secrets of %s %s: %w", c.GetKind(), i.asg.GetSpec().GetFunction(), err)
	}
	md, spec := i.asg.GetMetadata(), i.asg.GetSpec()
	cfg := connector.Config{
		Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Mesh: spec.GetMesh(), Name: spec.GetFunction(),
		Instance: int(spec.GetIndex()),
		Type:     c.GetType(), Values: values, EffectivelyOnce: i.guarantee() == effectivelyOnce,
		Logger: i.logger.With("connector", c.GetType()),
	}
	switch c.GetKind() {
	case objects.ConnectorSource:
		return i.runSource(ctx, cfg)
	case objects.ConnectorSink:
		return i.runSink(ctx, cfg)
	}
	return fmt.Errorf("connector kind %q is not source or sink", c.GetKind())
}

// runSource reads the outside system and writes each batch to the output
// topic; a batch is committed to the source only after every one of its
// records was confirmed by the broker, so a crash reads it again
// (at-least-once: what is read again is written again as new messages).
func (i *instance) runSource(ctx context.Context, cfg connector.Config) error {
	f, err := connector.LookupSource(cfg.Type)
	if err != nil {
		return err
	}
	cluster, topic := i.outputCluster(), i.spec().GetOutput().GetTopic()
	out, err := i.a.pulsar.get(cluster)
	if err != nil {
		return err
	}
	prod, err := out.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: 2 * time.Millisecond, BatchingMaxMessages: 1000,
		MaxPendingMessages: sourcePipelineDepth * 1000})
	if err != nil {
		return onCluster(cluster, fmt.Errorf("create producer for %s on cluster %s: %w", topic, cluster, err))
	}
	defer prod.Close()
	src, err := f.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open source %s: %w", cfg.Type, err)
	}
	defer src.Close()
	i.setState(federation.StateRunning, "")
	i.logger.Info("source running", "type", cfg.Type, "topic", topic, "cluster", cluster)
	depth := 1
	if cc, ok := src.(connector.ConcurrentCommitter); ok && cc.CommitsConcurrently() {
		depth = sourcePipelineDepth
	}
	// Batches go to the committer in read order; it waits for each one's
	// confirmations and commits it, so a commit never covers a record
	// that is not durable. After a failure it commits nothing more and
	// interrupts Read; the instance restarts and reads the rest again.
	rctx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	c := &committer{i: i, src: src, cancelRead: cancelRead}
	sent := make(chan *sentBatch, depth-1)
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx, sent) }()
	finish := func(err error) error {
		close(sent)
		<-done
		if ctx.Err() != nil {
			return nil
		}
		if ferr := c.failure(); ferr != nil {
			return onCluster(cluster, fmt.Errorf("write to %s on cluster %s: %w", topic, cluster, ferr))
		}
		return err
	}
	for {
		recs, err := src.Read(rctx)
		switch {
		case ctx.Err() != nil || c.failure() != nil:
			return finish(nil)
		case err != nil:
			return finish(fmt.Errorf("source %s: read: %w", cfg.Type, err))
		case len(recs) == 0:
			continue
		}
		i.received.Add(uint64(len(recs)))
		b := i.produceAll(ctx, prod, recs)
		sent <- b
		if depth == 1 {
			<-b.committed // stop-and-wait: committed before the next Read
		}
	}
}

// sourcePipelineDepth bounds the batches a pipelining source has written
// and not yet committed.
const sourcePipelineDepth = 8

// sentBatch is a batch of source records being written to the output topic.
type sentBatch struct {
	n   int
	pos string // the last position in the batch; "": nothing to commit
	wg  sync.WaitGroup
	// mu guards err, the first send error.
	mu  sync.Mutex
	err error
	// committed is closed once the committer is done with the batch.
	committed chan struct{}
}

func (b *sentBatch) wait() error {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// committer commits a source's batches in order once durable.
type committer struct {
	i          *instance
	src        connector.Source
	cancelRead context.CancelFunc
	// mu guards err, the first failure.
	mu  sync.Mutex
	err error
}

func (c *committer) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *committer) run(ctx context.Context, sent <-chan *sentBatch) {
	for b := range sent {
		err := b.wait()
		if c.failure() != nil {
			close(b.committed) // nothing after a failure is committed
			continue
		}
		if err == nil && b.pos != "" {
			if cerr := c.src.Commit(ctx, b.pos); cerr != nil {
				err = fmt.Errorf("commit: %w", cerr)
			}
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			c.cancelRead()
			c.i.failed.Add(uint64(b.n))
			c.i.setError(err)
		} else {
			c.i.processed.Add(uint64(b.n))
			c.i.batches.Add(1)
		}
		close(b.committed)
	}
}

// produceAll sends recs; the returned batch tracks their confirmations.
func (i *instance) produceAll(ctx context.Context, prod pulsar.Producer, recs []connector.SourceRecord) *sentBatch {
	b := &sentBatch{n: len(recs), committed: make(chan struct{})}
	for _, r := range recs {
		if r.Position != "" {
			b.pos = r.Position
		}
		props := make(map[string]string, len(r.Properties)+1)
		maps.Copy(props, r.Properties)
		props[clusterProperty] = i.a.cfg.Cluster
		b.wg.Add(1)
		prod.SendAsync(ctx, &pulsar.ProducerMessage{Key: r.Key, Payload: r.Value, Properties: props, EventTime: r.EventTime},
			func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				defer b.wg.Done()
				if err != nil {
					b.mu.Lock()
					if b.err == nil {
						b.err = err
					}
					b.mu.Unlock()
					return
				}
				i.written.Add(1)
			})
	}
	return b
}

// runSink consumes the input topics in batches, writes each batch to the
// outside system and acknowledges its inputs only after the write returned.
// Under effectively_once each record carries its identity (Stream,
// Sequence) built from what geo-replication keeps of the input (its
// partition, original producer name, publish time and place among that
// producer's same-time messages, identity.go), so a sink that stores the
// last Sequence per Stream with its write skips what it already wrote, also
// after a restart, a move, or a failover to a replicated copy.
func (i *instance) runSink(ctx context.Context, cfg connector.Config) error {
	f, err := connector.LookupSink(cfg.Type)
	if err != nil {
		return err
	}
	spec := i.spec()
	cluster := spec.GetInput().GetCluster()
	in, err := i.a.pulsar.get(cluster)
	if err != nil {
		return err
	}
	g := i.guarantee()
	subType := pulsar.Shared
	if g == effectivelyOnce {
		subType = pulsar.Failover
	}
	consumer, err := in.Subscribe(i.consumerOptions(subType, sinkMaxBatch))
	if err != nil {
		return onCluster(cluster, fmt.Errorf("subscribe to %v on cluster %s: %w", spec.GetInput().GetTopics(), cluster, err))
	}
	defer consumer.Close()
	sink, err := f.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open sink %s: %w", cfg.Type, err)
	}
	defer sink.Close()
	var ids *inputIdentities
	if g == effectivelyOnce {
		ids = newInputIdentities(in, nil, i.a.cfg.Now, func() {})
	}
	i.setState(federation.StateRunning, "")
	i.logger.Info("sink running", "type", cfg.Type, "subscription", i.subscriptionName(), "guarantee", g)
	var msgs []pulsar.Message
	for {
		msgs = msgs[:0]
		select {
		case <-ctx.Done():
			return nil
		case cm, ok := <-consumer.Chan():
			if !ok {
				return errInstanceExited
			}
			msgs = append(msgs, cm.Message)
		}
		linger := time.NewTimer(sinkLinger)
	fill:
		for len(msgs) < sinkMaxBatch {
			select {
			case cm, ok := <-consumer.Chan():
				if !ok {
					break fill
				}
				msgs = append(msgs, cm.Message)
			case <-linger.C:
				break fill
			case <-ctx.Done():
				linger.Stop()
				return nil
			}
		}
		linger.Stop()
		i.received.Add(uint64(len(msgs)))
		if g == atMostOnce {
			for _, m := range msgs {
				_ = consumer.Ack(m)
			}
		}
		batch := make([]connector.SinkRecord, len(msgs))
		for k, m := range msgs {
			batch[k] = connector.SinkRecord{Record: connector.Record{Key: m.Key(), Value: m.Payload(), Properties: m.Properties(), EventTime: m.EventTime()}, Topic: m.Topic()}
			if ids == nil {
				continue
			}
			id, err := ids.identify(ctx, m)
			if err != nil {
				return err
			}
			if id.verdict != proven {
				i.countUnproven(id.why, m)
				continue
			}
			batch[k].Stream = m.Topic() + "|" + m.ProducerName()
			batch[k].Sequence = uint64(sequenceID(m.PublishTime().UnixMilli(), id.ordinal, 0))
		}
		if err := i.writeWithRetry(ctx, sink, batch); err != nil {
			return nil // ctx ended: the inputs are delivered again
		}
		i.written.Add(uint64(len(batch)))
		i.processed.Add(uint64(len(batch)))
		i.batches.Add(1)
		if g != atMostOnce {
			for _, m := range msgs {
				if err := consumer.Ack(m); err != nil {
					return onCluster(cluster, fmt.Errorf("acknowledge on cluster %s: %w", cluster, err))
				}
			}
		}
		if ids != nil {
			ids.pruneTo(msgs)
		}
	}
}

// writeWithRetry writes batch until the sink takes it, backing off between
// attempts; it fails only when ctx ends.
func (i *instance) writeWithRetry(ctx context.Context, sink connector.Sink, batch []connector.SinkRecord) error {
	backoff := 100 * time.Millisecond
	for {
		err := sink.Write(ctx, batch)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		i.failed.Add(uint64(len(batch)))
		i.setError(fmt.Errorf("sink write: %w", err))
		i.logger.Warn("sink write failed; retrying", "err", err, "records", len(batch), "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// pruneTo drops what the trackers keep of entries up to the acknowledged
// messages, partition by partition.
func (ids *inputIdentities) pruneTo(acked []pulsar.Message) {
	last := map[string]entryPos{}
	for _, m := range acked {
		id := m.ID()
		p := entryPos{id.LedgerID(), id.EntryID()}
		if q, ok := last[m.Topic()]; !ok || q.cmp(p) < 0 {
			last[m.Topic()] = p
		}
	}
	for partition, p := range last {
		if tr := ids.trackers[partition]; tr != nil {
			tr.prune(p)
		}
	}
}
