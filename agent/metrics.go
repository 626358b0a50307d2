package agent

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
)

// The agent's telemetry. Per-instance metrics carry Pulsar Functions'
// labels (see functionLabels); the Pulsar-compatible ones are a native
// Prometheus collector (Agent.Metrics), the meshfed_* ones OpenTelemetry
// instruments.
var (
	meter      = otel.Meter("github.com/meshfed/meshfed/agent")
	tracer     = otel.Tracer("github.com/meshfed/meshfed/agent")
	propagator = propagation.TraceContext{}

	// mDeduplicated counts effectively-once outputs not written because the
	// output topic already held them; attribute "by" is "skip" (at or
	// below the producer's last sequence id, never sent) or "broker" (sent
	// and answered as a duplicate).
	mDeduplicated, _ = meter.Int64Counter("meshfed_function_deduplicated",
		metric.WithDescription("Effectively-once outputs not written because the output topic already held them (by=skip: at or below the producer's last sequence id; by=broker: answered as a duplicate)."))
	// mStateApplied counts effectively-once inputs redelivered after their
	// state changes were committed: the function runs again, its changes
	// are not applied twice.
	mStateApplied, _ = meter.Int64Counter("meshfed_function_state_already_applied",
		metric.WithDescription("Effectively-once inputs redelivered after their state changes were committed (their acknowledgement was lost in a crash): processed again without applying their state changes twice."))
	// mUnproven counts effectively-once inputs processed at-least-once
	// because their identity could not be proven; attribute "reason".
	mUnproven, _ = meter.Int64Counter("meshfed_function_unproven",
		metric.WithDescription("Effectively-once inputs processed at-least-once because their identity could not be established (attribute reason)."))
	// mLookBacks counts readers seeked by time to recover a producer's
	// earlier messages with the same publish time.
	mLookBacks, _ = meter.Int64Counter("meshfed_function_look_backs",
		metric.WithDescription("Look-backs: readers seeked by publish time to recover a producer's earlier messages with the same publish time."))
	// mHandovers counts input partitions an effectively-once instance
	// gave up to another replica of its function (scaling).
	mHandovers, _ = meter.Int64Counter("meshfed_function_partition_handovers",
		metric.WithDescription("Input partitions an effectively-once instance handed over to another replica of its function (its producers for them closed, its unacknowledged inputs redelivered to the new owner)."))
)

// functionLabelNames are Pulsar Functions' instance labels (namespace is
// "tenant/namespace", fqfn "tenant/namespace/name", name the function's
// name) and meshfed's mesh.
var functionLabelNames = []string{"tenant", "namespace", "name", "instance_id", "cluster", "fqfn", "mesh"}

// functionLabels returns the label values of an instance, in
// functionLabelNames' order.
func functionLabels(tenant, namespace, mesh, function string, index int, cluster string) []string {
	ns := tenant + "/" + namespace
	return []string{tenant, ns, function, strconv.Itoa(index), cluster, ns + "/" + function, mesh}
}

// otelAttrs labels an instance's OpenTelemetry measurements with the same
// labels as its Pulsar-compatible metrics.
func otelAttrs(labels []string) metric.MeasurementOption {
	kv := make([]attribute.KeyValue, len(labels))
	for k, v := range labels {
		kv[k] = attribute.String(functionLabelNames[k], v)
	}
	return metric.WithAttributes(kv...)
}

// Pulsar Functions' metric names (an instance's FunctionStatsManager). The
// _1min variants count since the start of the current one-minute window,
// and reset when a new window starts, as Pulsar's do.
const (
	metricReceived       = "pulsar_function_received_total"
	metricProcessed      = "pulsar_function_processed_successfully_total"
	metricSysExceptions  = "pulsar_function_system_exceptions_total"
	metricUserExceptions = "pulsar_function_user_exceptions_total"
	metricLatency        = "pulsar_function_process_latency_ms"
	metricLastInvocation = "pulsar_function_last_invocation"
	suffix1min           = "_1min"
	metricInputLag       = "meshfed_function_input_lag_seconds"
	metricBacklog        = "meshfed_function_backlog_messages"
)

// latencyObjectives are the summary's quantiles and their allowed errors:
// Pulsar's quantiles (0.5, 0.9, 0.99, 0.999), with errors small enough to
// tell 0.99 from 0.999.
var latencyObjectives = map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001, 0.999: 0.0001}

var (
	descReceived       = newFnDesc(metricReceived, "Total number of messages received from the input.")
	descProcessed      = newFnDesc(metricProcessed, "Total number of messages processed successfully.")
	descSysExceptions  = newFnDesc(metricSysExceptions, "Total number of system exceptions (sends, state, acknowledgements).")
	descUserExceptions = newFnDesc(metricUserExceptions, "Total number of user exceptions (the function returned an error).")
	descReceived1      = newFnDesc(metricReceived+suffix1min, "Messages received in the current one-minute window.")
	descProcessed1     = newFnDesc(metricProcessed+suffix1min, "Messages processed successfully in the current one-minute window.")
	descSysExc1        = newFnDesc(metricSysExceptions+suffix1min, "System exceptions in the current one-minute window.")
	descUserExc1       = newFnDesc(metricUserExceptions+suffix1min, "User exceptions in the current one-minute window.")
	descLastInvocation = newFnDesc(metricLastInvocation, "The time of the last invocation of the function, in milliseconds since the Unix epoch.")
	descInputLag       = newFnDesc(metricInputLag, "Age of the last input received (receive time minus publish time), in seconds.")
	descBacklog        = newFnDesc(metricBacklog, "Messages of the input subscription not yet acknowledged, as the input cluster's brokers report them (shared by the function's instances on one subscription).")
)

func newFnDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, functionLabelNames, nil)
}

// window is a count since the start of the current one-minute window.
type window struct {
	// start is the window's start; count the events since (both guarded
	// by functionStats.mu).
	start time.Time
	count uint64
}

func (w *window) add(now time.Time) {
	w.roll(now)
	w.count++
}

// roll starts a new window when the current one is a minute old.
func (w *window) roll(now time.Time) {
	if now.Sub(w.start) >= time.Minute {
		w.start, w.count = now, 0
	}
}

// functionStats is one instance's Pulsar-compatible metrics.
type functionStats struct {
	labels []string
	// received, processed, sysExc, userExc are the totals.
	received, processed, sysExc, userExc atomic.Uint64
	// lastInvocation is the time of the last call (Unix milliseconds; 0: none).
	lastInvocation atomic.Int64
	// lagNanos is the age of the last input when it was received.
	lagNanos atomic.Int64
	// backlog is the input subscription's backlog last read; negative:
	// unknown (not read yet, or the last read failed), not exported.
	backlog atomic.Int64

	// mu guards the one-minute windows.
	mu                                       sync.Mutex
	received1, processed1, sysExc1, userExc1 window

	// latency is the process latency over 10 minutes (the summary's
	// default age, as in Pulsar), latency1 over the last minute.
	latency, latency1 prometheus.Summary
	// now is the clock of the one-minute windows.
	now func() time.Time
}

func newFunctionStats(labels []string, now func() time.Time) *functionStats {
	constLabels := prometheus.Labels{}
	for k, v := range labels {
		constLabels[functionLabelNames[k]] = v
	}
	t := now()
	s := &functionStats{
		labels: labels, now: now,
		received1: window{start: t}, processed1: window{start: t}, sysExc1: window{start: t}, userExc1: window{start: t},
		latency: prometheus.NewSummary(prometheus.SummaryOpts{Name: metricLatency, Help: "Process latency in milliseconds.",
			Objectives: latencyObjectives, ConstLabels: constLabels}),
		latency1: prometheus.NewSummary(prometheus.SummaryOpts{Name: metricLatency + suffix1min, Help: "Process latency in milliseconds over the last minute.",
			Objectives: latencyObjectives, ConstLabels: constLabels, MaxAge: time.Minute, AgeBuckets: 2}),
	}
	s.backlog.Store(-1)
	return s
}

func (s *functionStats) setBacklog(n int64) { s.backlog.Store(max(n, 0)) }
func (s *functionStats) backlogUnknown()    { s.backlog.Store(-1) }

func (s *functionStats) count(total *atomic.Uint64, w *window) {
	total.Add(1)
	now := s.now()
	s.mu.Lock()
	w.add(now)
	s.mu.Unlock()
}

// received counts an input; publish is its publish time.
func (s *functionStats) receivedInput(publish time.Time) {
	s.count(&s.received, &s.received1)
	if !publish.IsZero() {
		s.lagNanos.Store(int64(time.Since(publish)))
	}
}
func (s *functionStats) processedOK()   { s.count(&s.processed, &s.processed1) }
func (s *functionStats) systemFailure() { s.count(&s.sysExc, &s.sysExc1) }
func (s *functionStats) userFailure()   { s.count(&s.userExc, &s.userExc1) }

// invoked records one call of the function that started at start.
func (s *functionStats) invoked(start time.Time) {
	s.lastInvocation.Store(start.UnixMilli())
	ms := float64(time.Since(start).Microseconds()) / 1000
	s.latency.Observe(ms)
	s.latency1.Observe(ms)
}

func (s *functionStats) collect(ch chan<- prometheus.Metric) {
	c := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(d, t, v, s.labels...)
	}
	c(descReceived, prometheus.CounterValue, float64(s.received.Load()))
	c(descProcessed, prometheus.CounterValue, float64(s.processed.Load()))
	c(descSysExceptions, prometheus.CounterValue, float64(s.sysExc.Load()))
	c(descUserExceptions, prometheus.CounterValue, float64(s.userExc.Load()))
	now := s.now()
	s.mu.Lock()
	for _, w := range []*window{&s.received1, &s.processed1, &s.sysExc1, &s.userExc1} {
		w.roll(now)
	}
	r1, p1, s1, u1 := s.received1.count, s.processed1.count, s.sysExc1.count, s.userExc1.count
	s.mu.Unlock()
	c(descReceived1, prometheus.CounterValue, float64(r1))
	c(descProcessed1, prometheus.CounterValue, float64(p1))
	c(descSysExc1, prometheus.CounterValue, float64(s1))
	c(descUserExc1, prometheus.CounterValue, float64(u1))
	c(descLastInvocation, prometheus.GaugeValue, float64(s.lastInvocation.Load()))
	c(descInputLag, prometheus.GaugeValue, time.Duration(s.lagNanos.Load()).Seconds())
	if b := s.backlog.Load(); b >= 0 {
		c(descBacklog, prometheus.GaugeValue, float64(b))
	}
	s.latency.Collect(ch)
	s.latency1.Collect(ch)
}

// functionMetrics is an agent's instances' Pulsar-compatible metrics, a
// Prometheus collector (unchecked: the summaries carry their labels as
// constant labels). Instances with the same labels (an instance replaced
// by one of a new epoch) share one functionStats, so each series is
// exposed once and its counters continue.
type functionMetrics struct {
	// now is the clock new functionStats' windows use.
	now func() time.Time
	// mu guards byLabels.
	mu       sync.Mutex
	byLabels map[string]*sharedStats
}

// sharedStats is a functionStats and the number of instances using it.
type sharedStats struct {
	stats *functionStats
	refs  int
}

func newFunctionMetrics(now func() time.Time) *functionMetrics {
	return &functionMetrics{now: now, byLabels: map[string]*sharedStats{}}
}

// acquire returns the stats of an instance with these labels; release
// them when the instance stops.
func (m *functionMetrics) acquire(labels []string) *functionStats {
	key := strings.Join(labels, "\x00")
	m.mu.Lock()
	defer m.mu.Unlock()
	sh := m.byLabels[key]
	if sh == nil {
		sh = &sharedStats{stats: newFunctionStats(labels, m.now)}
		m.byLabels[key] = sh
	}
	sh.refs++
	return sh.stats
}

// release drops a stopped instance's series once no instance uses them.
func (m *functionMetrics) release(s *functionStats) {
	key := strings.Join(s.labels, "\x00")
	m.mu.Lock()
	defer m.mu.Unlock()
	if sh := m.byLabels[key]; sh != nil && sh.stats == s {
		if sh.refs--; sh.refs <= 0 {
			delete(m.byLabels, key)
		}
	}
}

// Describe sends nothing: the collector is unchecked.
func (m *functionMetrics) Describe(chan<- *prometheus.Desc) {}

func (m *functionMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	all := make([]*functionStats, 0, len(m.byLabels))
	for _, sh := range m.byLabels {
		all = append(all, sh.stats)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.collect(ch)
	}
}

// Metrics returns the collector of the agent's function metrics, with
// Pulsar Functions' names and labels, for the registry its /metrics serves.
func (a *Agent) Metrics() prometheus.Collector { return a.metrics }
