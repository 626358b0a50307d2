package controlplane

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Agent states.
const (
	agentReady = "Ready"
	agentDown  = "Down"
)

// schedulerCoalesce is the least time between the starts of two passes a
// change triggers. A pass reads every agent, cluster, mesh and assignment,
// so one per write costs O(objects) per write; spaced passes let a burst of
// writes cost one pass. The pass after the burst (its trailing pass) sees
// every write of it, because the change channel is taken before each pass.
// Nothing waits on a pass for correctness: deleting a mesh deletes its
// assignments in the same entry (DeleteCascadeType).
const schedulerCoalesce = 50 * time.Millisecond

// runScheduler is the leader's reconcile loop: it marks agents Ready or
// Down from their heartbeats, places instances and keeps mesh status, each
// written through Raft only when something changed. It runs until stop.
func (s *Server) runScheduler(stop <-chan struct{}) {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.SchedulerInterval)
	defer tick.Stop()
	clusters := &clusterCache{}
	memo := newSchedulerMemo()
	quiet := &quietPass{}
	for {
		st := s.fsm.State()
		changed := st.Changed()
		began := time.Now()
		full, err := s.scheduleOnce(st, clusters, memo, quiet)
		if err != nil {
			s.logger.Warn("scheduler pass failed; retrying", "err", err)
		}
		s.lastPass.Store(int64(time.Since(began)))
		if full {
			s.lastFullPass.Store(int64(time.Since(began)))
		}
		select {
		case <-stop:
			return
		case <-s.shutdownCh:
			return
		case <-changed:
			if !s.waitUntil(stop, began.Add(schedulerCoalesce)) {
				return
			}
		case <-s.heartbeats.changed:
			if !s.waitUntil(stop, began.Add(schedulerCoalesce)) {
				return
			}
		case <-tick.C:
		}
	}
}

// waitUntil waits until t, or reports false when stop or shutdown comes first.
func (s *Server) waitUntil(stop <-chan struct{}, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-stop:
		return false
	case <-s.shutdownCh:
		return false
	case <-timer.C:
		return true
	}
}

// scheduleOnce is one pass: agents' readiness, clusters' health, then a
// placement plan; when the plan changes nothing, meshes' status. It
// reports whether it made the full pass: a pass over the same store
// revision and agents' heartbeats as a full pass that did nothing, with
// nothing waiting on the clock, does nothing again and is skipped (see
// quietPass).
func (s *Server) scheduleOnce(st *state.Store, clusters *clusterCache, memo *schedulerMemo, quiet *quietPass) (full bool, err error) {
	ctx := context.Background()
	now := time.Now()
	rev := st.Revision() // before any read: a later write shows as a change
	agentObjs, _, err := st.List(state.Filter{Kind: objects.KindAgent})
	if err != nil {
		return true, err
	}
	health := s.agentHealth(agentObjs)
	if quiet.unchanged(st, health, now) {
		return false, nil
	}
	waiting := true // settled below once the pass knows
	defer func() { quiet.settle(st, rev, health, now, err != nil || waiting) }()
	agents, err := s.updateAgentStates(ctx, agentObjs, health, now)
	if err != nil {
		return true, err
	}
	views, err := s.updateClusterHealth(ctx, st, clusters, agentObjs, health, now)
	if err != nil {
		return true, err
	}
	meshes, current, err := s.listMeshesAndAssignments(st, memo)
	if err != nil {
		return true, err
	}
	if meshes, err = s.autoscale(ctx, meshes, current, now); err != nil {
		return true, err
	}
	placed, clock, err := s.place(ctx, st, meshes, agents, current, views, now, memo)
	if err != nil || placed {
		return true, err // a plan's write wakes the loop; statuses follow on the next pass
	}
	held, err := s.updateMeshStatus(ctx, meshes, current, now, memo)
	waiting = held || waitsOnClock(meshes, clock)
	return true, err
}

// updateAgentStates marks agents Ready or Down from their heartbeats,
// writing the agents whose state changed, and returns them as placement
// sees them.
func (s *Server) updateAgentStates(ctx context.Context, agentObjs []*meshfedv1.Object, health []federation.AgentHealth, now time.Time) ([]federation.Agent, error) {
	agents := make([]federation.Agent, 0, len(agentObjs))
	var agentUpdates []*meshfedv1.Object
	for i, o := range agentObjs {
		a := o.GetAgent()
		name := a.GetMetadata().GetName()
		ready := health[i].Ready
		want := agentDown
		if ready {
			want = agentReady
		}
		if a.GetStatus().GetState() != want {
			up := proto.Clone(a).(*meshfedv1.Agent)
			if up.Status == nil {
				up.Status = &meshfedv1.AgentStatus{}
			}
			up.Status.State = want
			up.Status.LastHeartbeat = timestamppb.New(now)
			agentUpdates = append(agentUpdates, objects.Wrap(up))
			s.logger.Info("agent state changed", "agent", name, "state", want)
		}
		agents = append(agents, agentView(a, ready))
	}
	if len(agentUpdates) > 0 {
		if _, err := s.applySystem(ctx, UpdateStatusType, &raftlogv1.UpdateStatus{Objects: agentUpdates, Now: timestamppb.New(now)}); err != nil {
			return nil, err
		}
	}
	return agents, nil
}

// agentView is what placement knows of a stored agent.
func agentView(a *meshfedv1.Agent, ready bool) federation.Agent {
	sp := a.GetSpec()
	labels := sp.GetLabels()
	if labels == nil {
		labels = a.GetMetadata().GetLabels() // registered before spec.labels existed
	}
	return federation.Agent{Name: a.GetMetadata().GetName(), Cluster: sp.GetCluster(), Capacity: int(sp.GetCapacity()), Ready: ready,
		Runtimes: sp.GetRuntimes(), Interpreters: sp.GetInterpreters(), CPUMillis: sp.GetCpuMillis(), MemoryBytes: sp.GetMemoryBytes(),
		Labels: labels}
}

// listMeshesAndAssignments reads every mesh and assignment (a kind with
// no write since the last pass as the last pass listed it), and forgets
// the held counters of assignments that no longer exist.
func (s *Server) listMeshesAndAssignments(st *state.Store, memo *schedulerMemo) ([]*meshfedv1.FunctionMesh, []*meshfedv1.Assignment, error) {
	meshesSame, currentSame := memo.lists.unchanged(st)
	meshes, current := memo.lists.meshes, memo.lists.assignments
	if !meshesSame {
		meshObjs, _, err := st.List(state.Filter{Kind: objects.KindFunctionMesh})
		if err != nil {
			memo.lists.store = nil
			return nil, nil, err
		}
		meshes = make([]*meshfedv1.FunctionMesh, 0, len(meshObjs))
		for _, o := range meshObjs {
			meshes = append(meshes, o.GetFunctionMesh())
		}
	}
	if !currentSame {
		asgObjs, _, err := st.List(state.Filter{Kind: objects.KindAssignment})
		if err != nil {
			memo.lists.store = nil
			return nil, nil, err
		}
		current = make([]*meshfedv1.Assignment, 0, len(asgObjs))
		for _, o := range asgObjs {
			current = append(current, o.GetAssignment())
		}
	}
	memo.lists.meshes, memo.lists.assignments = meshes, current
	if s.live.held() == 0 {
		return meshes, current, nil // nothing to forget: skip keying every assignment
	}
	exists := make(map[string]bool, len(current))
	for _, a := range current {
		md := a.GetMetadata()
		exists[objects.Key(objects.KindAssignment, md.GetTenant(), md.GetNamespace(), md.GetName())] = true
	}
	s.live.forget(func(key string) bool { return exists[key] })
	return meshes, current, nil
}

// place plans assignments under the policies and writes the plan; it
// reports whether there was one, and whether placement's decision waits
// on the clock (federation.Plan.WaitsOnClock).
func (s *Server) place(ctx context.Context, st *state.Store, meshes []*meshfedv1.FunctionMesh, agents []federation.Agent,
	current []*meshfedv1.Assignment, views map[string]federation.ClusterView, now time.Time, memo *schedulerMemo) (placed, clock bool, err error) {
	admitted := memo.admittedMeshes(st) // read before the view: a later change shows next pass
	stillAdmitted := make(map[*meshfedv1.FunctionMesh]bool, len(meshes))
	pview := st.PolicyView()
	blocked := map[string]string{}
	for _, m := range meshes {
		if admitted[m] {
			stillAdmitted[m] = true
			continue
		}
		// A policy change (a revoked grant, a tightened namespace) can
		// break a stored mesh: it stays defined, reports Degraded and its
		// instances stop until the policy allows it again.
		if err := policies.Recheck(m, pview); err != nil {
			md := m.GetMetadata()
			blocked[objects.RefTo(objects.KindFunctionMesh, md).String()] = "policy: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		} else {
			stillAdmitted[m] = true
		}
	}
	memo.admitted = stillAdmitted // only meshes that still exist
	plan := federation.PlanAssignments(federation.Input{Meshes: meshes, Agents: agents, Assignments: current,
		Clusters: views, HoldDown: s.cfg.FailbackHoldDown, Now: now, Blocked: blocked,
		MoveAfterRestarts: s.cfg.MoveAfterRestarts, RebalanceMoves: s.cfg.RebalanceMoves, Memo: memo.plan,
		Allow: func(m *meshfedv1.FunctionMesh, fn int, run, in, out string, _ map[string]federation.ClusterView) error {
			return policies.AdmitPlacement(m, fn, run, in, out, pview)
		}})
	if plan.Empty() {
		return false, plan.WaitsOnClock, nil
	}
	entry := &raftlogv1.ApplyPlan{Now: timestamppb.New(now), Puts: plan.Puts}
	for _, a := range plan.Deletes {
		md := a.GetMetadata()
		entry.Deletes = append(entry.Deletes, &raftlogv1.DeleteObject{Kind: objects.KindAssignment, Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName()})
	}
	if _, err := s.applySystem(ctx, ApplyPlanType, entry); err != nil {
		return false, plan.WaitsOnClock, err
	}
	s.logger.Info("scheduled", "puts", len(plan.Puts), "deletes", len(plan.Deletes))
	return true, plan.WaitsOnClock, nil
}

// updateMeshStatus writes the meshes whose status changed; changes of
// instance counters alone reach a mesh at a bounded rate. It reports
// whether it held back such a change for its rate.
func (s *Server) updateMeshStatus(ctx context.Context, meshes []*meshfedv1.FunctionMesh, current []*meshfedv1.Assignment, now time.Time, memo *schedulerMemo) (held bool, err error) {
	sameAssignments := memo.beginStatus(current)
	defer memo.endStatus()
	type meshKey struct{ tenant, namespace, name string }
	var byMesh map[meshKey][]*meshfedv1.Assignment // built when first needed
	var statusUpdates []*meshfedv1.Object
	slim := s.membersApply(UpdateStatusType) // they read only the names and status of an UpdateStatus
	for _, m := range meshes {
		if memo.unchangedSince(m, sameAssignments) {
			continue
		}
		if byMesh == nil {
			byMesh = make(map[meshKey][]*meshfedv1.Assignment, len(meshes))
			for _, a := range current {
				md := a.GetMetadata()
				k := meshKey{md.GetTenant(), md.GetNamespace(), a.GetSpec().GetMesh()}
				byMesh[k] = append(byMesh[k], a)
			}
		}
		md := m.GetMetadata()
		as := byMesh[meshKey{md.GetTenant(), md.GetNamespace(), md.GetName()}]
		if memo.statusUnchanged(m, as) {
			continue
		}
		next := federation.MeshStatus(m, as, m.GetStatus(), now)
		if proto.Equal(next, m.GetStatus()) {
			memo.nextStatus[m] = as
			continue
		}
		if !sameMeshButCounters(next, m.GetStatus()) || s.live.meshDue(objects.KeyOf(objects.Wrap(m)), now) {
			// The entry is only encoded: it may share the stored mesh's
			// metadata and spec, and needs no spec where no member reads it.
			up := &meshfedv1.FunctionMesh{ApiVersion: m.GetApiVersion(), Kind: m.GetKind(), Metadata: m.GetMetadata(), Status: next}
			if !slim {
				up.Spec = m.GetSpec()
			}
			statusUpdates = append(statusUpdates, objects.Wrap(up))
		} else {
			held = true
		}
	}
	if len(statusUpdates) == 0 {
		return held, nil
	}
	_, err = s.applySystem(ctx, UpdateStatusType, &raftlogv1.UpdateStatus{Objects: statusUpdates, Now: timestamppb.New(now)})
	return held, err
}

// clusterCache is what the scheduler knows of clusters between passes, so
// that a pass judges only the clusters whose health may have changed: those
// written since the last pass, those with agents (their heartbeats move
// without writes) and those that had agents at the last pass. Every other
// cluster's health depends on its stored spec and status alone, which did
// not change. Used by the scheduler goroutine only.
type clusterCache struct {
	// store is the store the views were read from; nil: none yet (the
	// next pass reads every cluster, as after a snapshot restore).
	store *state.Store
	// rev is the store revision whose cluster events the views include.
	rev uint64
	// views holds every cluster's view by name.
	views map[string]federation.ClusterView
	// withAgents names the clusters that had agents at the last pass.
	withAgents map[string]bool
}

// toJudge returns the clusters a pass must judge (after a restore, a
// leadership change or a compacted event history: all of them) and
// advances the cache to the store's current events.
func (cc *clusterCache) toJudge(st *state.Store, byCluster map[string][]federation.AgentHealth) ([]*meshfedv1.Cluster, error) {
	if cc.store == st {
		evs, rev, _, err := st.EventsAfter(cc.rev, state.Filter{Kind: objects.KindCluster})
		if err == nil {
			names := map[string]bool{}
			for _, ev := range evs {
				names[ev.GetObject().GetCluster().GetMetadata().GetName()] = true
			}
			for name := range byCluster {
				names[name] = true
			}
			for name := range cc.withAgents {
				names[name] = true
			}
			out := make([]*meshfedv1.Cluster, 0, len(names))
			for _, name := range slices.Sorted(maps.Keys(names)) {
				o, _, err := st.Get(objects.KindCluster, "", "", name)
				switch {
				case errors.Is(err, state.ErrNotFound):
					delete(cc.views, name)
				case err != nil:
					return nil, err
				default:
					out = append(out, o.GetCluster())
				}
			}
			cc.rev = rev
			return out, nil
		}
		if !errors.Is(err, state.ErrCompacted) {
			return nil, err
		}
	}
	rev := st.Revision()
	objs, _, err := st.List(state.Filter{Kind: objects.KindCluster})
	if err != nil {
		return nil, err
	}
	out := make([]*meshfedv1.Cluster, len(objs))
	for i, o := range objs {
		out[i] = o.GetCluster()
	}
	cc.store, cc.rev, cc.views = st, rev, make(map[string]federation.ClusterView, len(objs))
	return out, nil
}

// updateClusterHealth derives clusters' health from their agents (of the
// clusters that may have changed, see clusterCache), writes the clusters
// whose health changed (and only those) through Raft, and returns every
// cluster's view, as placement uses them.
func (s *Server) updateClusterHealth(ctx context.Context, st *state.Store, cc *clusterCache, agentObjs []*meshfedv1.Object, health []federation.AgentHealth,
	now time.Time) (_ map[string]federation.ClusterView, err error) {
	defer func() {
		if err != nil {
			cc.store = nil // a status not written is judged again: the next pass reads every cluster
		}
	}()
	byCluster := map[string][]federation.AgentHealth{}
	for i, o := range agentObjs {
		c := o.GetAgent().GetSpec().GetCluster()
		byCluster[c] = append(byCluster[c], health[i])
	}
	clusters, err := cc.toJudge(st, byCluster)
	if err != nil {
		return nil, err
	}
	cc.withAgents = make(map[string]bool, len(byCluster))
	for name := range byCluster {
		cc.withAgents[name] = true
	}
	views := cc.views
	var updates []*meshfedv1.Object
	for _, c := range clusters {
		name := c.GetMetadata().GetName()
		health, reason := federation.ClusterHealth(c.GetSpec().GetCordoned(), byCluster[name])
		readyAgents := int32(0)
		for _, a := range byCluster[name] {
			if a.Ready {
				readyAgents++
			}
		}
		old := c.GetStatus()
		v := federation.ClusterView{Health: health, Since: old.GetSince().AsTime(), LastDown: old.GetLastDown().AsTime(), NoAgents: len(byCluster[name]) == 0}
		// A Degraded cluster's reason names the refused credential: a
		// new refusal is written too.
		if old.GetHealth() != health || old.GetReadyAgents() != readyAgents || (health == federation.Degraded && old.GetReason() != reason) {
			next := &meshfedv1.ClusterStatus{Health: health, Reason: reason, Since: old.GetSince(), ReadyAgents: readyAgents, LastDown: old.GetLastDown()}
			if old.GetHealth() != health {
				next.Since = timestamppb.New(now)
				v.Since = now
				if health == federation.Down || health == federation.Cordoned {
					next.LastDown = timestamppb.New(now)
					v.LastDown = now
				}
				s.logger.Info("cluster health changed", "cluster", name, "from", old.GetHealth(), "to", health, "reason", reason)
				s.telemetry.clusterTransitions.Add(ctx, 1)
			}
			up := proto.Clone(c).(*meshfedv1.Cluster)
			up.Status = next
			updates = append(updates, objects.Wrap(up))
		}
		views[name] = v
	}
	if len(updates) > 0 {
		if _, err := s.applySystem(ctx, UpdateStatusType, &raftlogv1.UpdateStatus{Objects: updates, Now: timestamppb.New(now)}); err != nil {
			return nil, err
		}
	}
	return views, nil
}
