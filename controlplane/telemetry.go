package controlplane

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	mftelemetry "github.com/meshfed/meshfed/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
)

// telemetry holds a server's OpenTelemetry meter (exported on /metrics
// through a Prometheus registry of its own, with the Go runtime and
// process collectors, so several servers can run in one process) and its
// tracer.
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

// newTelemetry builds the server's metrics; node is its service.instance.id
// (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the resource).
func newTelemetry(node string) (*telemetry, error) {
	res, err := mftelemetry.Resource(context.Background(), "meshfed-server", node)
	if err != nil {
		return nil, err
	}
	m, err := mftelemetry.NewMetrics(res)
	if err != nil {
		return nil, err
	}
	t := &telemetry{
		registry:      m.Registry,
		meterProvider: m.MeterProvider,
		meter:         m.MeterProvider.Meter("github.com/meshfed/meshfed/controlplane"),
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

// observeRaft registers gauges read at scrape time from Raft (this
// server's view) and from the replicated state (every server reports the
// same federation; alert rules take max over servers).
func (t *telemetry) observeRaft(s *Server) {
	g := func(name, desc string) metric.Int64ObservableGauge {
		v, _ := t.meter.Int64ObservableGauge(name, metric.WithDescription(desc))
		return v
	}
	commit := g("meshfed.raft.commit_index", "Raft commit index.")
	applied := g("meshfed.raft.applied_index", "Raft applied index.")
	lastLog := g("meshfed.raft.last_log_index", "Index of the last entry in this server's Raft log.")
	term := g("meshfed.raft.term", "Current Raft term.")
	leader := g("meshfed.raft.is_leader", "1 when this server is the ready leader.")
	hasLeader := g("meshfed.raft.has_leader", "1 when this server knows a leader (itself or another).")
	raftState := g("meshfed.raft.state", "1 for this server's Raft state (attribute state: Leader, Follower, Candidate, Shutdown).")
	peers := g("meshfed.raft.voters", "Voters in the Raft configuration as this server knows it.")
	revision := g("meshfed.state.revision", "Revision of the local state store.")
	clusterHealth := g("meshfed.cluster.health", "1 for each cluster's current health (attribute health: Healthy, Suspect, Degraded, Down, Cordoned), 0 for the others.")
	readyAgents := g("meshfed.cluster.ready_agents", "Agents of the cluster that are ready.")
	agentUp := g("meshfed.agent.up", "1 while the agent is Ready (heartbeats within its lease), 0 otherwise.")
	instances := g("meshfed.instances", "Assigned function instances by the cluster they run in, the function's home cluster, and failed_over (true when they differ).")
	lastContact, _ := t.meter.Float64ObservableGauge("meshfed.raft.last_contact",
		metric.WithUnit("s"), metric.WithDescription("Time since this follower last heard from the leader (0 on the leader)."))
	_, _ = t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.raft.Stats()
		o.ObserveInt64(commit, int64(s.raft.CommitIndex()))
		o.ObserveInt64(applied, int64(s.raft.AppliedIndex()))
		o.ObserveInt64(lastLog, int64(s.raft.LastIndex()))
		if v, err := strconv.ParseInt(st["term"], 10, 64); err == nil {
			o.ObserveInt64(term, v)
		}
		if v, err := strconv.ParseInt(st["num_peers"], 10, 64); err == nil {
			o.ObserveInt64(peers, v+1)
		}
		o.ObserveInt64(leader, boolInt(s.IsLeader()))
		addr, _ := s.raft.LeaderWithID()
		o.ObserveInt64(hasLeader, boolInt(addr != ""))
		cur := s.raft.State()
		for _, rs := range []raft.RaftState{raft.Leader, raft.Follower, raft.Candidate, raft.Shutdown} {
			o.ObserveInt64(raftState, boolInt(rs == cur), metric.WithAttributes(attribute.String("state", rs.String())))
		}
		if c, ok := parseLastContact(st["last_contact"]); ok {
			o.ObserveFloat64(lastContact, c.Seconds())
		}
		o.ObserveInt64(revision, int64(s.fsm.State().Revision()))
		observeFederation(s.fsm.State(), o, clusterHealth, readyAgents, agentUp, instances)
		return nil
	}, commit, applied, lastLog, term, leader, hasLeader, raftState, peers, lastContact, revision, clusterHealth, readyAgents, agentUp, instances)
}

// parseLastContact reads raft.Stats' last_contact: "0" on the leader, a
// duration on a follower, "never" before any contact (not reported).
func parseLastContact(v string) (time.Duration, bool) {
	if v == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// healthStates are the values meshfed.cluster.health reports for every cluster.
var healthStates = []string{federation.Healthy, federation.Suspect, federation.Degraded, federation.Down, federation.Cordoned}

// observeFederation reports the clusters, agents and instances of the
// local state store.
func observeFederation(st *state.Store, o metric.Observer, health, ready, up, instances metric.Int64ObservableGauge) {
	list := func(kind string) []*meshfedv1.Object {
		objs, _, err := st.List(state.Filter{Kind: kind})
		if err != nil {
			return nil
		}
		return objs
	}
	for _, obj := range list(objects.KindCluster) {
		c := obj.GetCluster()
		name := attribute.String("cluster", c.GetMetadata().GetName())
		h := c.GetStatus().GetHealth()
		for _, s := range healthStates {
			o.ObserveInt64(health, boolInt(s == h), metric.WithAttributes(name, attribute.String("health", s)))
		}
		o.ObserveInt64(ready, int64(c.GetStatus().GetReadyAgents()), metric.WithAttributes(name))
	}
	for _, obj := range list(objects.KindAgent) {
		a := obj.GetAgent()
		o.ObserveInt64(up, boolInt(a.GetStatus().GetState() == agentReady),
			metric.WithAttributes(attribute.String("agent", a.GetMetadata().GetName()), attribute.String("cluster", a.GetSpec().GetCluster())))
	}
	type where struct{ cluster, home string }
	counts := map[where]int64{}
	for _, obj := range list(objects.KindAssignment) {
		spec := obj.GetAssignment().GetSpec()
		if spec.GetCluster() == "" {
			continue
		}
		counts[where{spec.GetCluster(), federation.PlacementCluster(spec.GetFunctionSpec())}]++
	}
	for w, n := range counts {
		o.ObserveInt64(instances, n, metric.WithAttributes(attribute.String("cluster", w.cluster), attribute.String("home_cluster", w.home),
			attribute.Bool("failed_over", w.cluster != w.home)))
	}
}

func (t *telemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

func (t *telemetry) shutdown() { _ = t.meterProvider.Shutdown(context.Background()) }
