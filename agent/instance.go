package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Processing guarantees.
const (
	atMostOnce      = "atmost_once"
	atLeastOnce     = "atleast_once"
	effectivelyOnce = "effectively_once"
)

// instance is one running function instance: consumer → function → producers.
type instance struct {
	a      *Agent
	key    string
	asg    *meshfedv1.Assignment
	epoch  uint64
	logger *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	received, processed, failed atomic.Uint64

	// mu guards state, since and lastErr.
	mu      sync.Mutex
	state   string
	since   time.Time
	lastErr string
}

func startInstance(_ context.Context, a *Agent, key string, asg *meshfedv1.Assignment) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{
		a: a, key: key, asg: asg, epoch: asg.GetSpec().GetEpoch(),
		logger: a.logger.With("instance", key, "epoch", asg.GetSpec().GetEpoch()),
		cancel: cancel, done: make(chan struct{}),
	}
	inst.setState(federation.StateStarting, "")
	go inst.run(ctx)
	return inst
}

func (i *instance) setState(state, errMsg string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != state {
		i.state, i.since = state, i.a.cfg.Now()
	}
	if errMsg != "" {
		i.lastErr = errMsg
	}
}

func (i *instance) setError(err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.lastErr = err.Error()
}

// status is the instance's report to the control plane.
func (i *instance) status() *meshfedv1.InstanceStatus {
	i.mu.Lock()
	defer i.mu.Unlock()
	return &meshfedv1.InstanceStatus{
		Index: i.asg.GetSpec().GetIndex(), Agent: i.a.cfg.Name, Cluster: i.a.cfg.Cluster,
		State: i.state, Since: timestamppb.New(i.since), LastError: i.lastErr,
		Received: i.received.Load(), Processed: i.processed.Load(), Failed: i.failed.Load(),
	}
}

// stop cancels the instance and waits until its consumer and producers are closed.
func (i *instance) stop(reason string) {
	i.cancel()
	<-i.done
	i.logger.Info("instance stopped", "reason", reason)
}

// run keeps the instance running, restarting it with backoff after failures.
func (i *instance) run(ctx context.Context) {
	defer close(i.done)
	backoff := 200 * time.Millisecond
	for {
		started := time.Now()
		err := i.runOnce(ctx)
		if ctx.Err() != nil {
			i.setState(federation.StateStopped, "")
			return
		}
		if err == nil {
			err = errors.New("instance exited unexpectedly")
		}
		i.logger.Warn("instance failed; restarting", "err", err, "backoff", backoff)
		i.setState(federation.StateFailed, err.Error())
		if time.Since(started) > 30*time.Second {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			i.setState(federation.StateStopped, "")
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
		i.setState(federation.StateStarting, "")
	}
}

func (i *instance) spec() *meshfedv1.FunctionSpec { return i.asg.GetSpec().GetFunctionSpec() }

func (i *instance) guarantee() string {
	if g := i.spec().GetProcessingGuarantee(); g != "" {
		return g
	}
	return atLeastOnce
}

// subscriptionName is the input subscription shared by every instance of the function.
func (i *instance) subscriptionName() string {
	if s := i.spec().GetInput().GetSubscription(); s != "" {
		return s
	}
	md := i.asg.GetMetadata()
	return fmt.Sprintf("meshfed-%s-%s-%s-%s", md.GetTenant(), md.GetNamespace(), i.asg.GetSpec().GetMesh(), i.asg.GetSpec().GetFunction())
}

func (i *instance) outputCluster() string {
	if c := i.spec().GetOutput().GetCluster(); c != "" {
		return c
	}
	return federation.PlacementCluster(i.spec())
}

// startFunction starts the function in its runtime.
func (i *instance) startFunction(ctx context.Context) (runtime.Function, error) {
	spec := i.spec()
	rs := runtime.Spec{Config: spec.GetConfig().AsMap()}
	var kind string
	switch r := spec.GetRuntime().GetKind().(type) {
	case *meshfedv1.Runtime_Builtin:
		kind, rs.Builtin = "builtin", r.Builtin
	case *meshfedv1.Runtime_Exec:
		kind, rs.Command, rs.Env = "exec", r.Exec.GetCommand(), r.Exec.GetEnv()
		if pkg := r.Exec.GetPackage(); pkg != "" {
			dir, err := i.a.pkgs.unpack(ctx, pkg)
			if err != nil {
				return nil, err
			}
			rs.Dir = dir
		}
	case *meshfedv1.Runtime_Wasm:
		kind = "wasm"
		mod, err := i.a.pkgs.get(ctx, r.Wasm.GetPackage())
		if err != nil {
			return nil, err
		}
		rs.Module = mod
	default:
		return nil, errors.New("spec.runtime: no runtime set")
	}
	rt, ok := i.a.cfg.Runtimes[kind]
	if !ok {
		return nil, fmt.Errorf("runtime %q is not enabled on agent %s", kind, i.a.cfg.Name)
	}
	return rt.Start(ctx, rs)
}

func (i *instance) runOnce(ctx context.Context) error {
	spec := i.spec()
	fn, err := i.startFunction(ctx)
	if err != nil {
		return fmt.Errorf("start function: %w", err)
	}
	defer fn.Close()
	in, err := i.a.pulsar.get(spec.GetInput().GetCluster())
	if err != nil {
		return err
	}
	out, err := i.a.pulsar.get(i.outputCluster())
	if err != nil {
		return err
	}
	subType := pulsar.Shared
	if i.guarantee() == effectivelyOnce {
		subType = pulsar.Failover
	}
	pos := pulsar.SubscriptionPositionLatest
	if spec.GetInput().GetSubscriptionPosition() == "earliest" {
		pos = pulsar.SubscriptionPositionEarliest
	}
	consumer, err := in.Subscribe(pulsar.ConsumerOptions{
		Topics:                      spec.GetInput().GetTopics(),
		SubscriptionName:            i.subscriptionName(),
		Type:                        subType,
		SubscriptionInitialPosition: pos,
		Name:                        fmt.Sprintf("%s-%d", i.a.cfg.Name, i.asg.GetSpec().GetIndex()),
		NackRedeliveryDelay:         time.Second,
		ReceiverQueueSize:           1000,
	})
	if err != nil {
		return fmt.Errorf("subscribe to %v on cluster %s: %w", spec.GetInput().GetTopics(), spec.GetInput().GetCluster(), err)
	}
	defer consumer.Close()
	md := i.asg.GetMetadata()
	st := newFnState(i.a, &meshfedv1.StateScope{Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Mesh: i.asg.GetSpec().GetMesh(), Function: i.asg.GetSpec().GetFunction()},
		fmt.Sprintf("%s/%s/%s@%d#%d", md.GetTenant(), md.GetNamespace(), md.GetName(), i.epoch, time.Now().UnixNano()))
	prods := newProducerSet(i, out, in)
	defer prods.closeAll()
	logger := i.logger
	if lt := spec.GetLogTopic(); lt != "" {
		logger = slog.New(newTopicLogHandler(i.logger.Handler(), prods, lt))
	}
	fctx := &fnContext{fnState: st, tenant: md.GetTenant(), namespace: md.GetNamespace(), mesh: i.asg.GetSpec().GetMesh(),
		function: i.asg.GetSpec().GetFunction(), index: int(i.asg.GetSpec().GetIndex()), config: spec.GetConfig().AsMap(), logger: logger}
	fctx.attrs = metric.WithAttributes(attribute.String("tenant", fctx.tenant), attribute.String("namespace", fctx.namespace),
		attribute.String("mesh", fctx.mesh), attribute.String("function", fctx.function), attribute.Int("instance", fctx.index))
	ack := newAcker(consumer, st, i.logger)
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); ack.run() }()
	// Producers close (and deliver their last receipts) before the acker
	// stops, so outputs sent before the stop are acknowledged.
	defer func() { prods.closeAll(); ack.close(); <-ackDone }()

	i.setState(federation.StateRunning, "")
	i.logger.Info("instance running", "subscription", i.subscriptionName(), "type", subType, "guarantee", i.guarantee())
	for {
		select {
		case <-ctx.Done():
			prods.flush()
			return nil
		case err := <-prods.fatal:
			return err
		case cm, ok := <-consumer.Chan():
			if !ok {
				return errors.New("consumer closed")
			}
			i.handle(ctx, fn, fctx, consumer, prods, ack, cm.Message)
		}
	}
}

var (
	meter      = otel.Meter("github.com/meshfed/meshfed/agent")
	tracer     = otel.Tracer("github.com/meshfed/meshfed/agent")
	propagator = propagation.TraceContext{}

	mReceived, _  = meter.Int64Counter("pulsar_function_received", metric.WithDescription("Messages received by function instances."))
	mProcessed, _ = meter.Int64Counter("pulsar_function_processed_successfully", metric.WithDescription("Messages processed successfully."))
	mUserExc, _   = meter.Int64Counter("pulsar_function_user_exceptions", metric.WithDescription("Messages the function failed on."))
	mSystemExc, _ = meter.Int64Counter("pulsar_function_system_exceptions", metric.WithDescription("Messages that failed outside the function (sends, state)."))
	mLatency, _   = meter.Float64Histogram("pulsar_function_process_latency_ms", metric.WithDescription("Time the function took per message."),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000))
)

// handle processes one input message under the instance's guarantee.
func (i *instance) handle(ctx context.Context, fn runtime.Function, fctx *fnContext, consumer pulsar.Consumer, prods *producerSet, ack *acker, msg pulsar.Message) {
	attrs := fctx.attrs
	i.received.Add(1)
	mReceived.Add(ctx, 1, attrs)
	g := i.guarantee()
	if g == atMostOnce {
		_ = consumer.Ack(msg)
	}
	mctx := propagator.Extract(ctx, propagation.MapCarrier(msg.Properties()))
	mctx, span := tracer.Start(mctx, "meshfed.process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.source", msg.Topic()), attribute.String("meshfed.function", fctx.function)))
	defer span.End()

	in := &runtime.Message{Topic: msg.Topic(), Key: msg.Key(), Payload: msg.Payload(), Properties: msg.Properties(),
		EventTime: msg.EventTime(), PublishTime: msg.PublishTime(), ProducerName: msg.ProducerName()}
	outs, err := i.process(mctx, fn, fctx, in, attrs)
	if err != nil {
		i.failed.Add(1)
		mUserExc.Add(ctx, 1, attrs)
		i.setError(err)
		span.RecordError(err)
		if dlq := i.spec().GetDeadLetterTopic(); dlq != "" && g != atMostOnce {
			prods.sendDLQ(mctx, dlq, msg, err, func(sendErr error) {
				if sendErr != nil {
					consumer.Nack(msg)
					return
				}
				ack.done(msg)
			})
			return
		}
		if g != atMostOnce {
			// Retries are exhausted and there is nowhere to park the
			// message: count it failed and move on.
			ack.done(msg)
		}
		return
	}
	if len(outs) == 0 {
		i.processed.Add(1)
		mProcessed.Add(ctx, 1, attrs)
		if g != atMostOnce {
			ack.done(msg)
		}
		return
	}
	props := func(o runtime.Output) map[string]string {
		p := make(map[string]string, len(o.Properties)+2)
		for k, v := range o.Properties {
			p[k] = v
		}
		propagator.Inject(mctx, propagation.MapCarrier(p))
		return p
	}
	remaining := atomic.Int32{}
	remaining.Store(int32(len(outs)))
	failedSend := atomic.Bool{}
	finish := func(err error) {
		if err != nil {
			failedSend.Store(true)
			i.setError(err)
		}
		if remaining.Add(-1) != 0 {
			return
		}
		if failedSend.Load() {
			mSystemExc.Add(context.Background(), 1, attrs)
			if g != atMostOnce {
				consumer.Nack(msg)
			}
			return
		}
		i.processed.Add(1)
		mProcessed.Add(context.Background(), 1, attrs)
		if g != atMostOnce {
			ack.done(msg)
		}
	}
	var base int64 = -1
	if g == effectivelyOnce {
		p, err := inputPosition(msg)
		if err != nil {
			i.setError(err)
			consumer.Nack(msg)
			return
		}
		base = p
	}
	for k, o := range outs {
		topic := o.Topic
		if topic == "" {
			topic = i.spec().GetOutput().GetTopic()
		}
		if topic == "" {
			finish(fmt.Errorf("function returned an output but spec.output.topic is not set and the output names no topic"))
			continue
		}
		pm := &pulsar.ProducerMessage{Key: o.Key, Payload: o.Payload, Properties: props(o), EventTime: msg.EventTime()}
		if base >= 0 {
			if k >= maxOutputsPerInput {
				finish(fmt.Errorf("effectively_once allows at most %d outputs per input message", maxOutputsPerInput))
				continue
			}
			seq := base*maxOutputsPerInput + int64(k)
			pm.SequenceID = &seq
			prods.sendEO(mctx, msg.Topic(), topic, pm, finish)
			continue
		}
		prods.send(mctx, topic, pm, finish)
	}
}

// process runs the function with the spec's timeout, retrying up to maxMessageRetry times.
func (i *instance) process(ctx context.Context, fn runtime.Function, fctx *fnContext, msg *runtime.Message, attrs metric.MeasurementOption) ([]runtime.Output, error) {
	timeout, _ := time.ParseDuration(i.spec().GetTimeout())
	if timeout <= 0 {
		timeout = defaultProcessTimeout
	}
	var err error
	for attempt := 0; attempt <= int(i.spec().GetMaxMessageRetry()); attempt++ {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, timeout)
		}
		start := time.Now()
		var outs []runtime.Output
		outs, err = fn.Process(pctx, fctx, msg)
		cancel()
		mLatency.Record(ctx, float64(time.Since(start).Microseconds())/1000, attrs)
		if err == nil {
			return outs, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

// defaultProcessTimeout bounds one Process call when spec.timeout is unset,
// so a function that never answers cannot stall its instance forever.
const defaultProcessTimeout = time.Minute

// inputPosition maps a message to a number that grows with its position in
// its partition and is the same every time the message is redelivered:
// the broker-assigned index when the broker adds index metadata (Pulsar's
// AppendIndexMetadataInterceptor), else the message id packed into bits.
func inputPosition(msg pulsar.Message) (int64, error) {
	if idx := msg.Index(); idx != nil {
		if *idx >= 1<<52 {
			return 0, fmt.Errorf("effectively_once: broker index %d too large", *idx)
		}
		return int64(*idx), nil
	}
	id := msg.ID()
	ledger, entry, batch := id.LedgerID(), id.EntryID(), int64(id.BatchIdx())
	if batch < 0 {
		batch = 0
	}
	if ledger < 0 || ledger >= 1<<19 || entry < 0 || entry >= 1<<22 || batch >= 1<<12 {
		return 0, fmt.Errorf("effectively_once: message id %d:%d:%d does not fit the packed sequence space; enable broker index metadata (AppendIndexMetadataInterceptor)", ledger, entry, batch)
	}
	return ledger<<34 | entry<<12 | batch, nil
}
