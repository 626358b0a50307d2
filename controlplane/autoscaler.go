package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// autoscalerTick is how often the autoscaler looks for functions whose
// measurement interval has passed.
const autoscalerTick = 500 * time.Millisecond

// autoscaler measures autoscaled functions' load and remembers their
// recommendations, in the leader's memory only: built in
// establishLeadership, dropped in revokeLeadership, so a new leader starts
// with no history (and waits a full window before scaling down). Its
// measuring goroutine does the I/O (admin API reads); the scheduler pass
// turns new samples into decisions and writes them (scale), so mesh status
// has one writer.
type autoscaler struct {
	logger *slog.Logger

	// mu guards samples and histories.
	mu sync.Mutex
	// samples holds each function's newest measurement not yet decided on.
	samples map[string]measured
	// measuredAt is when each function was last measured.
	measuredAt map[string]time.Time
	// histories are the recommendations per function.
	histories map[string]*federation.ScaleHistory

	// admins caches pulsaradmin clients by cluster admin URL and auth
	// (measuring goroutine only).
	admins map[string]adminClient
}

// adminClient is what the autoscaler uses of pulsaradmin.
type adminClient interface {
	Topics() admin.Topics
}

type measured struct {
	at      time.Time
	backlog int64
	parts   int
	err     error
}

func newAutoscaler(logger *slog.Logger) *autoscaler {
	return &autoscaler{logger: logger, samples: map[string]measured{}, measuredAt: map[string]time.Time{},
		histories: map[string]*federation.ScaleHistory{}, admins: map[string]adminClient{}}
}

// fnKey names a function: tenant/namespace/mesh/function.
func fnKey(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec) string {
	return objects.RefTo(objects.KindFunctionMesh, m.GetMetadata()).String() + "/" + f.GetName()
}

// runAutoscaler measures, until stop, the input backlog of every
// autoscaled function each time its interval passes.
func (s *Server) runAutoscaler(stop <-chan struct{}, as *autoscaler) {
	defer s.wg.Done()
	t := time.NewTicker(autoscalerTick)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-s.shutdownCh:
		case <-ctx.Done():
		}
		cancel()
	}()
	for {
		st := s.fsm.State()
		meshObjs, _, err := st.List(state.Filter{Kind: objects.KindFunctionMesh})
		if err == nil {
			as.measureDue(ctx, st, meshObjs, time.Now())
		}
		if !s.waitTick(stop, t.C) {
			return
		}
	}
}

// measureDue reads the backlog of every autoscaled function whose interval passed.
func (as *autoscaler) measureDue(ctx context.Context, st *state.Store, meshObjs []*meshfedv1.Object, now time.Time) {
	for _, o := range meshObjs {
		m := o.GetFunctionMesh()
		for _, f := range m.GetSpec().GetFunctions() {
			if f.GetAutoscaling() == nil {
				continue
			}
			k := fnKey(m, f)
			p := federation.PolicyOf(f)
			as.mu.Lock()
			last := as.measuredAt[k]
			as.mu.Unlock()
			if now.Sub(last) < p.Interval {
				continue
			}
			ms := measured{at: now, backlog: -1}
			if p.BacklogPerReplica > 0 {
				rctx, cancel := context.WithTimeout(ctx, max(p.Interval, time.Second))
				n, parts, err := as.readBacklog(rctx, st, f.GetInput().GetCluster(), f.GetInput().GetTopics(), subscriptionOf(m, f))
				cancel()
				if err != nil {
					ms.err = err
					as.logger.Warn("autoscaler could not read the input backlog; scaling on what else is known", "function", k, "err", err)
				} else {
					ms.backlog, ms.parts = n, parts
				}
			}
			as.mu.Lock()
			as.measuredAt[k] = now
			as.samples[k] = ms
			as.mu.Unlock()
		}
	}
}

// subscriptionOf is the input subscription of f's instances (as the agent names it).
func subscriptionOf(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec) string {
	if s := f.GetInput().GetSubscription(); s != "" {
		return s
	}
	md := m.GetMetadata()
	return fmt.Sprintf("meshfed-%s-%s-%s-%s", md.GetTenant(), md.GetNamespace(), md.GetName(), f.GetName())
}

// readBacklog returns the messages of topics (every partition) not yet
// acknowledged on subscription, read from cluster's admin API with the
// cluster's credentials, and the number of partitions read. A partition
// without the subscription (the function has not subscribed there yet)
// counts zero.
func (as *autoscaler) readBacklog(ctx context.Context, st *state.Store, cluster string, topics []string, subscription string) (int64, int, error) {
	adm, err := as.admin(st, cluster)
	if err != nil {
		return 0, 0, err
	}
	var total int64
	parts := 0
	for _, topic := range topics {
		tn, err := utils.GetTopicName(topic)
		if err != nil {
			return 0, 0, fmt.Errorf("topic %q: %w", topic, err)
		}
		md, err := adm.Topics().GetMetadataWithContext(ctx, *tn)
		if err != nil {
			return 0, 0, fmt.Errorf("partitions of %s: %w", tn, err)
		}
		names := []*utils.TopicName{tn}
		if md.Partitions > 0 {
			names = names[:0]
			for p := 0; p < md.Partitions; p++ {
				pt, err := tn.GetPartition(p)
				if err != nil {
					return 0, 0, err
				}
				names = append(names, pt)
			}
		}
		for _, p := range names {
			stats, err := adm.Topics().GetStatsWithContext(ctx, *p)
			if err != nil {
				return 0, 0, fmt.Errorf("stats of %s: %w", p, err)
			}
			parts++
			if sub, ok := stats.Subscriptions[subscription]; ok {
				total += sub.MsgBacklog
			}
		}
	}
	return total, parts, nil
}

// admin returns a pulsaradmin client for cluster's adminURL and auth.
func (as *autoscaler) admin(st *state.Store, cluster string) (adminClient, error) {
	o, _, err := st.Get(objects.KindCluster, "", "", cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cluster, err)
	}
	spec := o.GetCluster().GetSpec()
	if spec.GetAdminUrl() == "" {
		return nil, fmt.Errorf("cluster %q has no adminURL", cluster)
	}
	authKey, _ := protojson.Marshal(spec.GetAuth())
	key := spec.GetAdminUrl() + " " + string(authKey)
	if c, ok := as.admins[key]; ok {
		return c, nil
	}
	auth, err := objects.ParseClusterAuth(spec.GetAuth(), objects.AuthInObject)
	if err != nil {
		return nil, fmt.Errorf("cluster %q spec.auth: %w", cluster, err)
	}
	c, err := pulsarauth.New(auth).AdminClient(spec.GetAdminUrl())
	if err != nil {
		return nil, fmt.Errorf("pulsar admin client for cluster %q: %w", cluster, err)
	}
	as.admins[key] = c
	return c, nil
}

// decide turns the new samples into replica decisions for the scheduler
// pass: it returns the meshes with their status.scale and scale events
// updated (nil when nothing changed). cpu gives the CPU reports of a
// function's running instances.
func (as *autoscaler) decide(meshes []*meshfedv1.FunctionMesh, cpu func(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec) (int64, int), now time.Time) []*meshfedv1.FunctionMesh {
	as.mu.Lock()
	defer as.mu.Unlock()
	var changed []*meshfedv1.FunctionMesh
	live := map[string]bool{}
	for _, m := range meshes {
		var up *meshfedv1.FunctionMesh
		for _, f := range m.GetSpec().GetFunctions() {
			if f.GetAutoscaling() == nil {
				continue
			}
			k := fnKey(m, f)
			live[k] = true
			ms, ok := as.samples[k]
			if !ok {
				continue
			}
			delete(as.samples, k)
			p := federation.PolicyOf(f)
			sample := federation.ScaleSample{Backlog: ms.backlog, Partitions: ms.parts, CPUMillis: -1}
			if f.GetProcessingGuarantee() == "effectively_once" {
				sample.PartitionsLimit = ms.parts
			}
			if p.CPUUtilization > 0 {
				sample.CPUMillis, sample.Reporting = cpu(m, f)
			}
			current := federation.DesiredReplicas(m, f)
			h := as.histories[k]
			if h == nil {
				h = &federation.ScaleHistory{}
				as.histories[k] = h
			}
			rec := federation.Recommend(p, sample, current, ms.at)
			next, why := federation.Decide(p, h, rec, current)
			_, recorded := m.GetStatus().GetScale()[f.GetName()]
			if next == current && recorded {
				continue
			}
			if up == nil {
				up = proto.CloneOf(m)
				if up.Status == nil {
					up.Status = &meshfedv1.FunctionMeshStatus{}
				}
				up.Status.Scale = maps32(up.Status.GetScale())
			}
			up.Status.Scale[f.GetName()] = int32(next)
			if next != current {
				ev := &meshfedv1.ScaleEvent{Time: timestamppb.New(now), Function: f.GetName(), From: int32(current), To: int32(next),
					Reason: why, Backlog: sample.Backlog, CpuMillis: sample.CPUMillis}
				up.Status.ScaleEvents = append(up.Status.ScaleEvents, ev)
				if n := len(up.Status.ScaleEvents); n > federation.MaxScaleEvents {
					up.Status.ScaleEvents = up.Status.ScaleEvents[n-federation.MaxScaleEvents:]
				}
				as.logger.Info("autoscaled", "function", k, "from", current, "to", next, "reason", why)
			}
		}
		if up != nil {
			changed = append(changed, up)
		}
	}
	for k := range as.histories {
		if !live[k] {
			delete(as.histories, k)
			delete(as.measuredAt, k)
		}
	}
	return changed
}

func maps32(m map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// autoscale is the scheduler pass's autoscaling step: it decides on new
// samples, writes the meshes whose scale changed, and returns the meshes
// as placement should see them.
func (s *Server) autoscale(ctx context.Context, meshes []*meshfedv1.FunctionMesh, current []*meshfedv1.Assignment, now time.Time) ([]*meshfedv1.FunctionMesh, error) {
	as := s.scaler.Load()
	if as == nil {
		return meshes, nil
	}
	var byFn map[string][]*meshfedv1.Assignment // built when an autoscaled function first asks
	cpu := func(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec) (int64, int) {
		if byFn == nil {
			byFn = map[string][]*meshfedv1.Assignment{}
			for _, a := range current {
				md := a.GetMetadata()
				k := objects.MeshRef(md.GetTenant(), md.GetNamespace(), a.GetSpec().GetMesh()).String() + "/" + a.GetSpec().GetFunction()
				byFn[k] = append(byFn[k], a)
			}
		}
		var total int64
		n := 0
		for _, a := range byFn[fnKey(m, f)] {
			st := s.live.overlay(objects.Wrap(a)).GetAssignment().GetStatus()
			if st.GetState() == federation.StateRunning {
				total += st.GetCpuMillis()
				n++
			}
		}
		return total, n
	}
	changed := as.decide(meshes, cpu, now)
	if len(changed) == 0 {
		return meshes, nil
	}
	updates := make([]*meshfedv1.Object, len(changed))
	byKey := map[string]*meshfedv1.FunctionMesh{}
	for i, m := range changed {
		updates[i] = objects.Wrap(m)
		byKey[objects.KeyOf(updates[i])] = m
	}
	if _, err := s.applySystem(ctx, UpdateStatusType, &raftlogv1.UpdateStatus{Objects: updates, Now: timestamppb.New(now)}); err != nil {
		return meshes, fmt.Errorf("write scale decisions: %w", err)
	}
	out := make([]*meshfedv1.FunctionMesh, len(meshes))
	for i, m := range meshes {
		out[i] = m
		if up, ok := byKey[objects.KeyOf(objects.Wrap(m))]; ok {
			out[i] = up
		}
	}
	return out, nil
}
