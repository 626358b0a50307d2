package controlplane

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
)

// telemetry holds a server's OpenTelemetry meter (exported on /metrics
// through a Prometheus registry of its own, so several servers can run in
// one process) and its tracer.
type telemetry struct {
	registry      *prometheus.Registry
	meterProvider *sdkmetric.MeterProvider
	meter         metric.Meter
	tracer        trace.Tracer

	applyLatency       metric.Float64Histogram
	leaderChanges      metric.Int64Counter
	clusterTransitions metric.Int64Counter
	auditDropped       metric.Int64Counter
}

func newTelemetry() (*telemetry, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t := &telemetry{
		registry:      reg,
		meterProvider: mp,
		meter:         mp.Meter("github.com/meshfed/meshfed/controlplane"),
		tracer:        otel.Tracer("github.com/meshfed/meshfed/controlplane"),
	}
	if t.applyLatency, err = t.meter.Float64Histogram("meshfed.raft.apply.duration",
		metric.WithDescription("Time from proposing a Raft entry to its application by the FSM."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	if t.leaderChanges, err = t.meter.Int64Counter("meshfed.raft.leader.established",
		metric.WithDescription("Times this server established leadership.")); err != nil {
		return nil, err
	}
	if t.clusterTransitions, err = t.meter.Int64Counter("meshfed.cluster.health.transitions",
		metric.WithDescription("Cluster health changes the scheduler recorded.")); err != nil {
		return nil, err
	}
	if t.auditDropped, err = t.meter.Int64Counter("meshfed.audit.dropped",
		metric.WithDescription("Audit records of refused requests dropped because the queue to the log was full (they remain in the structured log).")); err != nil {
		return nil, err
	}
	return t, nil
}

// observeRaft registers gauges read from Raft at scrape time.
func (t *telemetry) observeRaft(s *Server) {
	commit, _ := t.meter.Int64ObservableGauge("meshfed.raft.commit_index", metric.WithDescription("Raft commit index."))
	applied, _ := t.meter.Int64ObservableGauge("meshfed.raft.applied_index", metric.WithDescription("Raft applied index."))
	leader, _ := t.meter.Int64ObservableGauge("meshfed.raft.is_leader", metric.WithDescription("1 when this server is the ready leader."))
	revision, _ := t.meter.Int64ObservableGauge("meshfed.state.revision", metric.WithDescription("Revision of the local state store."))
	_, _ = t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(commit, int64(s.raft.CommitIndex()))
		o.ObserveInt64(applied, int64(s.raft.AppliedIndex()))
		isLeader := int64(0)
		if s.IsLeader() {
			isLeader = 1
		}
		o.ObserveInt64(leader, isLeader)
		o.ObserveInt64(revision, int64(s.fsm.State().Revision()))
		return nil
	}, commit, applied, leader, revision)
}

func (t *telemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

func (t *telemetry) shutdown() { _ = t.meterProvider.Shutdown(context.Background()) }
