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
	"github.com/meshfed/meshfed/objects"
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
	// deduplicated counts effectively-once outputs not written because the
	// output topic held them; unproven counts effectively-once inputs
	// processed at-least-once.
	deduplicated, unproven atomic.Uint64
	// restarts counts restarts of the instance after a failed run and of
	// its function after a crash; oomKills the crashes that were kills for
	// exceeding the memory limit.
	restarts atomic.Uint32
	oomKills atomic.Uint64
	// limits is how the current run's function is held to its resources
	// (runtime.Limited); empty before the first start.
	limits atomic.Pointer[string]
	// written and batches count a connector's records made durable at its
	// far end and the batches it wrote (zero for functions).
	written, batches atomic.Uint64
	// attrs label the current run's metrics; nil before the first run.
	attrs atomic.Pointer[metric.MeasurementOption]
	// stats are the instance's Pulsar-compatible metrics (released when
	// run returns).
	stats *functionStats
	// busy is the time spent in the function's Process calls (nanoseconds).
	busy atomic.Int64
	// meter measures the running function's CPU when its runtime can;
	// nil: CPU is estimated from busy.
	meter atomic.Pointer[runtime.CPUMeter]
	// cpu is the CPU use over report intervals (guarded by mu).
	cpu cpuRate

	// mu guards state, since, lastErr and lastErrAt.
	mu        sync.Mutex
	state     string
	since     time.Time
	lastErr   string
	lastErrAt time.Time
}

func startInstance(_ context.Context, a *Agent, key string, asg *meshfedv1.Assignment) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{
		a: a, key: key, asg: asg, epoch: asg.GetSpec().GetEpoch(),
		logger: a.logger.With("instance", key, "epoch", asg.GetSpec().GetEpoch()),
		cancel: cancel, done: make(chan struct{}),
	}
	md, spec := asg.GetMetadata(), asg.GetSpec()
	inst.stats = a.metrics.acquire(functionLabels(md.GetTenant(), md.GetNamespace(), spec.GetMesh(), spec.GetFunction(), int(spec.GetIndex()), a.cfg.Cluster))
	inst.setState(federation.StateStarting, "")
	go inst.run(ctx)
	return inst
}

func (i *instance) setState(state, errMsg string) {
	if state == federation.StateRunning || state == federation.StateStopped {
		// Its brokers accepted its credentials, or it no longer runs.
		i.a.refusals.clearEverywhere(sourceInstance + i.key)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != state {
		i.state, i.since = state, i.a.cfg.Now()
	}
	if errMsg != "" {
		i.lastErr, i.lastErrAt = errMsg, i.a.cfg.Now()
	}
}

func (i *instance) setError(err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.lastErr, i.lastErrAt = err.Error(), i.a.cfg.Now()
}

// status is the instance's report to the control plane.
func (i *instance) status() *meshfedv1.InstanceStatus {
	used := time.Duration(i.busy.Load())
	var src any // nil: Process time
	if m := i.meter.Load(); m != nil {
		if d, ok := (*m).CPUTime(); ok {
			used, src = d, m
		}
	}
	now := time.Now()
	i.mu.Lock()
	defer i.mu.Unlock()
	return &meshfedv1.InstanceStatus{
		Index: i.asg.GetSpec().GetIndex(), Agent: i.a.cfg.Name, Cluster: i.a.cfg.Cluster,
		State: i.state, Since: timestamppb.New(i.since), LastError: i.lastErr,
		Received: i.received.Load(), Processed: i.processed.Load(), Failed: i.failed.Load(),
		Deduplicated: i.deduplicated.Load(), Unproven: i.unproven.Load(),
		Restarts: i.restarts.Load(), OomKills: i.oomKills.Load(), Limits: i.limitsMechanism(),
		Written: i.written.Load(), Batches: i.batches.Load(), LastErrorTime: errTime(i.lastErrAt),
		CpuMillis: i.cpu.millis(src, used, now),
	}
}

func (i *instance) limitsMechanism() string {
	if l := i.limits.Load(); l != nil {
		return *l
	}
	return ""
}

func errTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
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
	defer i.a.metrics.release(i.stats)
	backoff := newRestartBackoff(i.a.cfg.RestartBackoffMin, i.a.cfg.RestartBackoffMax, i.a.cfg.RestartHealthyAfter)
	for {
		started := i.a.cfg.Now()
		err := i.runOnce(ctx)
		if ctx.Err() != nil {
			i.setState(federation.StateStopped, "")
			return
		}
		if err == nil {
			err = errInstanceExited
		}
		i.noteRefusal(err)
		wait := backoff.failed(i.a.cfg.Now().Sub(started))
		i.logger.Warn("instance failed; restarting", "err", err, "backoff", wait, "restarts", i.restarts.Load())
		state := federation.StateFailed
		if errors.Is(err, runtime.ErrOutOfMemory) {
			state = federation.StateOOMKilled
		}
		i.setState(state, err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			i.setState(federation.StateStopped, "")
			return
		case <-t.C:
		}
		i.restarts.Add(1)
		i.setState(federation.StateStarting, "")
	}
}

// noteRefusal records a run's failure that a broker's refusal of a
// credential caused, against the cluster of that broker (the input
// cluster when the error does not say).
func (i *instance) noteRefusal(err error) {
	kind, ok := refusalKind(err)
	if !ok {
		return
	}
	cluster, ok := errorCluster(err)
	if !ok {
		cluster = i.spec().GetInput().GetCluster()
	}
	cred := "the agent's credential"
	if creds, _, cerr := i.a.pulsar.credentials(cluster); cerr == nil {
		cred = creds.Describe()
	}
	i.a.refusals.set(cluster, sourceInstance+i.key, describeRefusal(cred, kind, cluster, err))
}

func (i *instance) spec() *meshfedv1.FunctionSpec { return i.asg.GetSpec().GetFunctionSpec() }

// consumerOptions subscribes the instance to its input topics with
// subType and a receive queue of queue messages, from the earliest
// message when the spec asks for it or the instance reads a replicated
// copy (a fallback never starts at latest: that would skip the replicated
// backlog the home instance had not processed), else from the latest.
func (i *instance) consumerOptions(subType pulsar.SubscriptionType, queue int) pulsar.ConsumerOptions {
	pos := pulsar.SubscriptionPositionLatest
	if i.spec().GetInput().GetSubscriptionPosition() == "earliest" || i.readsReplicatedCopy() {
		pos = pulsar.SubscriptionPositionEarliest
	}
	return pulsar.ConsumerOptions{
		Topics:                      i.spec().GetInput().GetTopics(),
		SubscriptionName:            i.subscriptionName(),
		Type:                        subType,
		SubscriptionInitialPosition: pos,
		Name:                        fmt.Sprintf("%s-%d", i.a.cfg.Name, i.asg.GetSpec().GetIndex()),
		NackRedeliveryDelay:         time.Second,
		ReceiverQueueSize:           queue,
	}
}

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
		kind, rs.Command = "exec", r.Exec.GetCommand()
		env, err := execEnv(r.Exec.GetEnv(), spec.GetSecrets())
		if err != nil {
			return nil, err
		}
		rs.Env = env
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
	rs.Resources = functionResources(spec)
	mech := "none"
	// exec holds a process to limits only when it has resources; wasm caps
	// every module's memory.
	if l, ok := rt.(runtime.Limited); ok && (rs.Resources != (runtime.Resources{}) || kind == "wasm") {
		mech = l.LimitsMechanism()
	}
	i.limits.Store(&mech)
	return rt.Start(ctx, rs)
}

// functionResources reads spec.resources (validated at admission; an
// unset or unreadable field is not limited).
func functionResources(spec *meshfedv1.FunctionSpec) runtime.Resources {
	var r runtime.Resources
	if c := spec.GetResources().GetCpu(); c != "" {
		r.CPUMillis, _ = objects.ParseCPU(c)
	}
	if m := spec.GetResources().GetMemory(); m != "" {
		r.MemoryBytes, _ = objects.ParseMemory(m)
	}
	return r
}

func (i *instance) runOnce(ctx context.Context) error {
	spec := i.spec()
	if c := objects.ConnectorOf(spec); c != nil {
		return i.runConnector(ctx, c)
	}
	fn, err := i.startFunction(ctx)
	if err != nil {
		return fmt.Errorf("start function: %w", err)
	}
	defer fn.Close()
	if m, ok := fn.(runtime.CPUMeter); ok {
		i.meter.Store(&m)
		defer i.meter.Store(nil)
	}
	in, err := i.a.pulsar.get(spec.GetInput().GetCluster())
	if err != nil {
		return err
	}
	out, err := i.a.pulsar.get(i.outputCluster())
	if err != nil {
		return err
	}
	g := i.guarantee()
	subType, mode := pulsar.Shared, ackEach
	switch g {
	case effectivelyOnce:
		subType, mode = pulsar.Failover, ackInOrder
	case atMostOnce:
		mode = ackOnReceipt
	}
	md := i.asg.GetMetadata()
	st := newFnState(i.a, &meshfedv1.StateScope{Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Mesh: i.asg.GetSpec().GetMesh(), Function: i.asg.GetSpec().GetFunction()},
		fmt.Sprintf("%s/%s/%s@%d#%d", md.GetTenant(), md.GetNamespace(), md.GetName(), i.epoch, time.Now().UnixNano()), g == effectivelyOnce)
	if err := st.prefetch(ctx); err != nil {
		i.logger.Warn("could not read the function's state ahead; keys are read one by one as the function asks", "err", err)
	}
	if i.readsReplicatedCopy() {
		if n, err := i.prepareFallbackSubscription(ctx, st); err != nil {
			i.logger.Warn("could not position every fallback subscription at the home instance's watermark; the rest start at the earliest message", "err", err, "created", n)
		}
	}
	copts := i.consumerOptions(subType, 1000)
	var hand *handover
	var handKick <-chan struct{} // nil without a handover: never ready
	if g == effectivelyOnce {
		// Partitions move between replicas as the function scales.
		hand = newHandover()
		handKick = hand.kick
		copts.EventListener, copts.Interceptors = hand, pulsar.ConsumerInterceptors{hand}
	}
	consumer, err := in.Subscribe(copts)
	if err != nil {
		return onCluster(spec.GetInput().GetCluster(), fmt.Errorf("subscribe to %v on cluster %s: %w", spec.GetInput().GetTopics(), spec.GetInput().GetCluster(), err))
	}
	backlogCtx, stopBacklog := context.WithCancel(ctx)
	backlogDone := make(chan struct{})
	go func() {
		defer close(backlogDone)
		i.watchBacklog(backlogCtx, spec.GetInput().GetCluster(), spec.GetInput().GetTopics(), i.subscriptionName())
	}()
	defer func() { stopBacklog(); <-backlogDone }()
	defer consumer.Close()
	if spec.GetInput().GetCluster() == i.a.cfg.Cluster && len(spec.GetInput().GetTopics()) > 0 {
		i.a.probe.useTopic(i.key, spec.GetInput().GetTopics()[0])
		defer i.a.probe.useTopic(i.key, "")
	}
	failure := newRunFailure()
	prods := newProducerSet(i, out, in, failure)
	defer prods.closeAll()
	logger := i.logger
	if lt := spec.GetLogTopic(); lt != "" {
		logger = slog.New(newTopicLogHandler(i.logger.Handler(), prods, lt))
	}
	fctx := &fnContext{fnState: st, tenant: md.GetTenant(), namespace: md.GetNamespace(), mesh: i.asg.GetSpec().GetMesh(),
		function: i.asg.GetSpec().GetFunction(), index: int(i.asg.GetSpec().GetIndex()), config: spec.GetConfig().AsMap(), logger: logger}
	fctx.attrs = otelAttrs(i.stats.labels)
	i.attrs.Store(&fctx.attrs)
	shared := subType == pulsar.Shared
	index := i.asg.GetSpec().GetIndex()
	ack := newAcker(consumer, st, i.logger, mode, func(p string) string { return watermarkKey(p, shared, index) }, failure, i.a.cfg.Now)
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); ack.run() }()
	// Producers close (and deliver their last receipts) before the acker
	// stops, so outputs sent before the stop are acknowledged.
	defer func() { prods.closeAll(); ack.close(ctx.Err() != nil); <-ackDone }()
	var ids *inputIdentities
	if g == effectivelyOnce {
		ids = newInputIdentities(in, ack, i.a.cfg.Now, func() { mLookBacks.Add(context.Background(), 1, fctx.attrs) })
	}

	i.setState(federation.StateRunning, "")
	i.logger.Info("instance running", "subscription", i.subscriptionName(), "type", subType, "guarantee", g, "fallback", i.readsReplicatedCopy())
	if !i.runsInFailoverCluster() && len(spec.GetFailover().GetClusters()) > 0 {
		cctx, cancel := context.WithCancel(ctx)
		cleaned := make(chan struct{})
		go func() { defer close(cleaned); i.removeFallbackSubscriptions(cctx) }()
		defer func() { cancel(); <-cleaned }()
	}
	idle := time.NewTicker(max(i.a.cfg.ProducerIdleTimeout/4, 10*time.Millisecond))
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			prods.flush()
			return nil
		case <-failure.done():
			return failure.error()
		case <-idle.C:
			if n := prods.closeIdle(i.a.cfg.ProducerIdleTimeout); n > 0 {
				i.logger.Debug("closed idle effectively-once producers", "count", n)
			}
		case <-handKick:
			i.releasePartitions(hand, prods, ack, ids)
		case cm, ok := <-consumer.Chan():
			if !ok {
				return errInstanceExited
			}
			if failure.failed() {
				// Nothing after a failed input: it is redelivered first.
				return failure.error()
			}
			if hand != nil {
				i.releasePartitions(hand, prods, ack, ids)
				if hand.stale(cm.Message) {
					continue // received before its partition moved to another replica
				}
				if hand.gapped(cm.Message) && ids != nil {
					// Entries this session never saw were acknowledged by
					// the partition's previous owner: number from a look-back.
					delete(ids.trackers, cm.Message.Topic())
				}
			}
			if err := i.handle(ctx, fn, fctx, consumer, prods, ack, ids, failure, cm.Message); err != nil {
				return err
			}
		}
	}
}

// countDeduplicated counts an output not written because the output topic
// already held it.
func (i *instance) countDeduplicated(by string) {
	i.deduplicated.Add(1)
	if attrs := i.attrs.Load(); attrs != nil {
		mDeduplicated.Add(context.Background(), 1, *attrs, metric.WithAttributes(attribute.String("by", by)))
	}
}

// countUnproven counts an input processed at-least-once under
// effectively_once.
func (i *instance) countUnproven(why string, msg pulsar.Message) {
	i.unproven.Add(1)
	if attrs := i.attrs.Load(); attrs != nil {
		mUnproven.Add(context.Background(), 1, *attrs, metric.WithAttributes(attribute.String("reason", why)))
	}
	i.logger.Debug("input processed at-least-once: identity unproven", "reason", why, "topic", msg.Topic(), "id", msg.ID().String(),
		"producer", msg.ProducerName(), "publish_time", msg.PublishTime())
}

// clusterProperty names the cluster an output was produced in.
const clusterProperty = "meshfed-cluster"

// handle processes one input message under the instance's guarantee. An
// error stops the run (the instance restarts).
func (i *instance) handle(ctx context.Context, fn runtime.Function, fctx *fnContext, consumer pulsar.Consumer, prods *producerSet, ack *acker,
	ids *inputIdentities, failure *runFailure, msg pulsar.Message) error {
	attrs := fctx.attrs
	i.received.Add(1)
	i.stats.receivedInput(msg.PublishTime())
	g := i.guarantee()
	tk := ack.track(msg)
	if g == atMostOnce {
		_ = consumer.Ack(msg)
	}
	var id identity
	if ids != nil {
		var err error
		if id, err = ids.identify(ctx, msg); err != nil {
			return err
		}
	}
	if ids != nil && id.verdict == proven {
		// An input whose state changes were committed before a crash
		// (its acknowledgement was lost) runs again, but changes nothing.
		tk.appliedKey, tk.seq = appliedKey(msg.Topic(), msg.ProducerName()), sequenceID(msg.PublishTime().UnixMilli(), id.ordinal, 0)
		applied, err := fctx.applied(ctx, tk.appliedKey, tk.seq)
		if err != nil {
			i.stats.systemFailure()
			i.setError(err)
			failure.fail(err)
			return nil
		}
		if tk.applied = applied; applied {
			mStateApplied.Add(ctx, 1, attrs)
		}
	}
	mctx := propagator.Extract(ctx, propagation.MapCarrier(msg.Properties()))
	mctx, span := tracer.Start(mctx, "meshfed.process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.source", msg.Topic()), attribute.String("meshfed.function", fctx.function)))
	defer span.End()

	// fail ends an input that could not be completed: under
	// effectively_once the instance restarts (a negative acknowledgement
	// would let later inputs overtake it); otherwise it is redelivered.
	fail := func(err error) {
		if g == effectivelyOnce {
			failure.fail(err)
			return
		}
		ack.nack(tk)
	}
	in := &runtime.Message{Topic: msg.Topic(), Key: msg.Key(), Payload: msg.Payload(), Properties: msg.Properties(),
		EventTime: msg.EventTime(), PublishTime: msg.PublishTime(), ProducerName: msg.ProducerName()}
	fctx.setInput(tk)
	outs, err := i.process(mctx, fn, fctx, in, attrs)
	fctx.setInput(nil)
	if errors.Is(err, errStateUnavailable) {
		// Not the function's failure: the input goes again (under
		// effectively_once after a restart, so nothing overtakes it).
		i.stats.systemFailure()
		i.setError(err)
		span.RecordError(err)
		if g == atMostOnce {
			ack.done(tk)
		} else {
			fail(err)
		}
		return nil
	}
	if ids != nil && id.verdict == proven && len(outs) > maxOutputsPerInput {
		id = identity{verdict: unproven, why: unprovenOutputs}
	}
	if ids != nil && id.verdict == unproven {
		i.countUnproven(id.why, msg)
	}
	if err != nil {
		i.failed.Add(1)
		i.stats.userFailure()
		i.setError(err)
		span.RecordError(err)
		i.logger.DebugContext(mctx, "function failed on an input", "err", err, "topic", msg.Topic(), "id", msg.ID().String())
		if dlq := i.spec().GetDeadLetterTopic(); dlq != "" && g != atMostOnce {
			prods.sendDLQ(mctx, dlq, msg, err, func(sendErr error) {
				if sendErr != nil {
					i.setError(sendErr)
					fail(sendErr)
					return
				}
				ack.done(tk)
			})
			return nil
		}
		// Retries are exhausted and there is nowhere to park the message:
		// count it failed and move on.
		ack.done(tk)
		return nil
	}
	if len(outs) == 0 {
		i.processed.Add(1)
		i.stats.processedOK()
		ack.done(tk)
		return nil
	}
	props := func(o runtime.Output) map[string]string {
		p := make(map[string]string, len(o.Properties)+3)
		for k, v := range o.Properties {
			p[k] = v
		}
		propagator.Inject(mctx, propagation.MapCarrier(p))
		p[clusterProperty] = i.a.cfg.Cluster
		return p
	}
	remaining := atomic.Int32{}
	remaining.Store(int32(len(outs)))
	// firstErr keeps the first failed send's error.
	var firstErr atomic.Pointer[error]
	finish := func(err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
			i.setError(err)
		}
		if remaining.Add(-1) != 0 {
			return
		}
		if e := firstErr.Load(); e != nil {
			i.stats.systemFailure()
			if g != atMostOnce {
				fail(*e)
			}
			return
		}
		i.processed.Add(1)
		i.stats.processedOK()
		ack.done(tk)
	}
	for k, o := range outs {
		topic := o.Topic
		if topic == "" {
			topic = i.spec().GetOutput().GetTopic()
		}
		if topic == "" {
			finish(errors.New("function returned an output but spec.output.topic is not set and the output names no topic"))
			continue
		}
		pm := &pulsar.ProducerMessage{Key: o.Key, Payload: o.Payload, Properties: props(o), EventTime: msg.EventTime()}
		if ids != nil && id.verdict == proven {
			seq := sequenceID(msg.PublishTime().UnixMilli(), id.ordinal, k)
			pm.SequenceID = &seq
			prods.sendEO(mctx, eoKey{partition: msg.Topic(), producer: msg.ProducerName(), topic: topic}, pm, finish)
			continue
		}
		prods.send(mctx, topic, pm, finish)
	}
	return nil
}

// process runs the function with the spec's timeout, retrying up to
// maxMessageRetry times. A call during which a state read failed returns
// that read's error (errStateUnavailable), whatever the function made of
// it, and is not retried here.
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
		_ = fctx.takeFailure()
		outs, err = fn.Process(pctx, fctx, msg)
		cancel()
		i.busy.Add(int64(time.Since(start)))
		i.stats.invoked(start)
		i.noteOutcome(err)
		if serr := fctx.takeFailure(); serr != nil {
			return nil, serr
		}
		if err == nil {
			return outs, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

// noteOutcome follows the function's health through its Process calls: a
// crash restarts its process with the next call (counted as a restart), a
// kill for exceeding its memory limit makes the instance OOMKilled until a
// call succeeds again.
func (i *instance) noteOutcome(err error) {
	switch {
	case err == nil:
		if i.currentState() == federation.StateOOMKilled {
			i.setState(federation.StateRunning, "")
		}
	case errors.Is(err, runtime.ErrOutOfMemory):
		i.oomKills.Add(1)
		i.restarts.Add(1)
		i.setState(federation.StateOOMKilled, err.Error())
		i.logger.Warn("function killed for exceeding its memory limit; it restarts with the next message", "err", err,
			"memory", i.spec().GetResources().GetMemory(), "limits", i.limitsMechanism())
	case errors.Is(err, runtime.ErrFunctionCrashed):
		i.restarts.Add(1)
	}
}

func (i *instance) currentState() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.state
}

// defaultProcessTimeout bounds one Process call when spec.timeout is unset,
// so a function that never answers cannot stall its instance forever.
const defaultProcessTimeout = time.Minute
