package federation

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// Instance states reported by agents.
const (
	StatePending  = "Pending"
	StateStarting = "Starting"
	StateRunning  = "Running"
	StateFailed   = "Failed"
	StateStopped  = "Stopped"
	// StateOOMKilled: the instance's function was killed for exceeding its
	// memory limit; it restarts with backoff (docs/limits.md).
	StateOOMKilled = "OOMKilled"
)

// Agent is what placement knows of one agent.
type Agent struct {
	Name    string
	Cluster string
	// Capacity is the number of instance slots; zero or less means one.
	Capacity int
	// Ready agents get new work; others lose theirs.
	Ready bool
	// Runtimes the agent runs ("builtin", "exec", "wasm"). Empty: not
	// advertised; any function fits.
	Runtimes []string
	// Interpreters on the agent's PATH for exec functions ("python3", ...).
	Interpreters []string
	// CPUMillis and MemoryBytes are what the agent offers to instances.
	// Zero: not advertised; requests are not counted against it.
	CPUMillis, MemoryBytes int64
	// Labels are matched by placement.nodeSelector.
	Labels map[string]string
}

// Plan is the set of assignment writes that brings the state to the desired one.
type Plan struct {
	// Puts are assignments to create or replace (spec and a reset status).
	Puts []*meshfedv1.Assignment
	// Deletes are assignments to remove.
	Deletes []*meshfedv1.Assignment
	// WaitsOnClock: a function stays in a fallback cluster while its
	// recovered home cluster is within the failback hold-down, so a later
	// pass over the same input may plan differently.
	WaitsOnClock bool
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Puts) == 0 && len(p.Deletes) == 0 }

// AssignmentName is the name of the assignment of one instance.
func AssignmentName(mesh, function string, index int) string {
	return fmt.Sprintf("%s.%s.%d", mesh, function, index)
}

// Replicas returns the number of instances a function runs.
func Replicas(f *meshfedv1.FunctionSpec) int {
	if f.GetReplicas() <= 0 {
		return 1
	}
	return int(f.GetReplicas())
}

// PlacementCluster is the cluster that runs a function: placement.cluster,
// else its input cluster.
func PlacementCluster(f *meshfedv1.FunctionSpec) string {
	if c := f.GetPlacement().GetCluster(); c != "" {
		return c
	}
	return f.GetInput().GetCluster()
}

type key struct{ tenant, namespace, name string }

func keyOf(a *meshfedv1.Assignment) key {
	md := a.GetMetadata()
	return key{md.GetTenant(), md.GetNamespace(), md.GetName()}
}

// FailbackLabel on a FunctionMesh requests a manual failback: its value is
// a Unix time in seconds (label values cannot hold RFC 3339's colons), and
// instances return to their home cluster if that time is after the cluster
// last went down (meshfed failback MESH sets it).
const FailbackLabel = "meshfed.io/failback-requested"

// Input is everything placement decides from.
type Input struct {
	Meshes      []*meshfedv1.FunctionMesh
	Agents      []Agent
	Assignments []*meshfedv1.Assignment
	// Clusters by name. A cluster missing here is treated as Down.
	Clusters map[string]ClusterView
	// HoldDown is how long a recovered cluster must stay Healthy before
	// instances fail back to it automatically.
	HoldDown time.Duration
	Now      time.Time
	// Blocked meshes (by "tenant/namespace/name") break a policy: their
	// instances are not placed, with the value as the reason.
	Blocked map[string]string
	// Allow, when set, vets a fallback cluster for function fn of m given
	// the clusters it would read from and write to there (policies);
	// clusters it refuses are skipped.
	Allow func(m *meshfedv1.FunctionMesh, fn int, run, in, out string, clusters map[string]ClusterView) error
	// MoveAfterRestarts moves an instance to another agent once its agent
	// has restarted it this many times. Zero or less: never.
	MoveAfterRestarts int
	// RebalanceMoves bounds the instances one pass moves to even out the
	// agents of a cluster. Zero or less: no rebalancing.
	RebalanceMoves int
	// Memo, when set, carries spec comparisons from the last pass to this
	// one (which updates it). Nil: every spec is compared.
	Memo *Memo
}

// PlanAssignments computes the assignment changes for the input. It is
// deterministic and stable: an instance stays on its agent while that agent
// is ready and in the cluster the function should run in; it moves (with a
// new epoch) only when it must. A function whose home cluster (placement,
// else input) is Down or Cordoned runs in the first usable cluster of
// failover.clusters, reading the same topics there and writing to its
// output cluster (or to the fallback if that is down too); it returns home
// when the home cluster has been Healthy for the hold-down (failback auto)
// or when asked (failback manual). With no usable cluster its instances stay
// unassigned (the mesh reports Degraded) — nothing is deleted. A changed
// function spec rolls one instance at a time.
func PlanAssignments(in Input) Plan {
	fl := newFleet(in.Agents, in.Assignments)
	meshes, memos := in.Memo.sortedMeshes(in.Meshes)
	// wanted marks, by index in in.Assignments, the instances some mesh
	// wants; the others are deleted.
	wanted := make([]bool, len(in.Assignments))
	skip := in.Memo.skipSettled(in, memos, wanted)
	left := len(in.Assignments)
	for _, w := range wanted {
		if w {
			left--
		}
	}
	cur := make(map[key]int, left) // the instances of the meshes not skipped
	for i, a := range in.Assignments {
		if !wanted[i] {
			cur[keyOf(a)] = i
		}
	}
	var plan Plan
	var keys []key // of the instances of the function at hand
	for mi, m := range meshes {
		if skip != nil && skip[mi] {
			continue
		}
		md := m.GetMetadata()
		blockedWhy, blocked := "", false
		if len(in.Blocked) > 0 {
			k := ""
			if memos != nil {
				k = memos[mi].key
			} else {
				k = meshKey(m)
			}
			blockedWhy, blocked = in.Blocked[k]
		}
		settled := !blocked              // see settledMesh
		var mine []*meshfedv1.Assignment // the instances it wants, placed
		var mineAt []int                 // and their indexes
		puts := len(plan.Puts)
		for fi, f := range objects.MeshFunctions(m.GetSpec()) {
			var existing []*meshfedv1.Assignment
			keys = keys[:0]
			replicas := DesiredReplicas(m, f)
			for i := 0; i < replicas; i++ {
				k := key{md.GetTenant(), md.GetNamespace(), md.GetName() + "." + f.GetName() + "." + strconv.Itoa(i)}
				keys = append(keys, k)
				if j, ok := cur[k]; ok {
					existing = append(existing, in.Assignments[j])
				}
			}
			run, why := "", blockedWhy
			if !blocked {
				var waits bool
				run, why, waits = runCluster(m, fi, f, existing, in)
				plan.WaitsOnClock = plan.WaitsOnClock || waits
			}
			if run != PlacementCluster(f) {
				settled = false
			}
			var eff *meshfedv1.FunctionSpec // built when first needed
			spec := func(i int) *meshfedv1.FunctionSpec {
				if eff == nil {
					eff = EffectiveSpec(f, run, in.Clusters)
				}
				return instanceSpec(eff, f, i)
			}
			d := fl.q.demandOf(f)
			var onAgent map[string]int // instances per agent, built when first needed
			spread := func() map[string]int {
				if onAgent == nil {
					onAgent = map[string]int{}
					for _, a := range existing {
						if a.GetSpec().GetCluster() == run && fl.ready(a.GetSpec().GetAgent()) != nil {
							onAgent[a.GetSpec().GetAgent()]++
						}
					}
				}
				return onAgent
			}
			var needUpdate []*meshfedv1.Assignment
			rolling := false
			for i := 0; i < replicas; i++ {
				if slices.Contains(f.GetStoppedInstances(), int32(i)) {
					continue // stopped: not wanted, so a running one is deleted
				}
				var a *meshfedv1.Assignment
				j, ok := cur[keys[i]]
				if ok {
					a = in.Assignments[j]
					wanted[j] = true
				}
				ag := fl.ready(a.GetSpec().GetAgent())
				placed := a != nil && run != "" && ag != nil && ag.Cluster == run && a.GetSpec().GetCluster() == run && ag.capable(d) == nil
				if placed {
					if in.MoveAfterRestarts > 0 && int(a.GetStatus().GetRestarts()) >= in.MoveAfterRestarts {
						settled = false // whether it moves depends on other agents' loads
					}
					if na := restartMove(in, fl, m, spec, i, a, d, spread); na != nil {
						plan.Puts = append(plan.Puts, na)
						continue
					}
					if !in.Memo.same(a.GetSpec().GetFunctionSpec(), f, i, run, in.Clusters, func() *meshfedv1.FunctionSpec { return spec(i) }) {
						needUpdate = append(needUpdate, a)
						settled = false
					} else if a.GetStatus().GetState() != StateRunning {
						rolling = true
					}
					mine, mineAt = append(mine, a), append(mineAt, j)
					continue
				}
				settled = false
				target, whyNot := "", why
				if run != "" {
					target, whyNot = fl.pick(run, d, spread(), a.GetSpec().GetAvoidAgents())
				}
				if a != nil && target == "" && a.GetSpec().GetAgent() == "" && a.GetStatus().GetLastError() == whyNot {
					continue // still unplaceable for the same reason
				}
				if a != nil {
					fl.count(a, -1)
					if ag != nil && spread()[ag.Name] > 0 && a.GetSpec().GetCluster() == run {
						onAgent[ag.Name]--
					}
				}
				if target != "" {
					fl.byName[target].add(d, 1)
					spread()[target]++
				}
				cluster := run
				if cluster == "" {
					cluster = PlacementCluster(f)
				}
				na := newAssignment(m, spec(i), i, target, cluster, a)
				na.Spec.AvoidAgents = a.GetSpec().GetAvoidAgents()
				if target == "" {
					na.Status.LastError, na.Status.PendingReason = whyNot, whyNot
				}
				plan.Puts = append(plan.Puts, na)
			}
			if len(needUpdate) > 0 && !rolling {
				a := needUpdate[0]
				i := int(a.GetSpec().GetIndex())
				plan.Puts = append(plan.Puts, newAssignment(m, spec(i), i, a.GetSpec().GetAgent(), run, a))
			}
		}
		if memos != nil && settled && len(plan.Puts) == puts {
			in.Memo.settle(memos[mi], m, mine, mineAt)
		}
	}
	for i, a := range in.Assignments {
		if !wanted[i] {
			plan.Deletes = append(plan.Deletes, a)
		}
	}
	if plan.Empty() {
		plan.Puts = rebalance(in, fl)
	}
	in.Memo.endPass()
	sort.Slice(plan.Deletes, func(i, j int) bool {
		return plan.Deletes[i].GetMetadata().GetName() < plan.Deletes[j].GetMetadata().GetName()
	})
	return plan
}

// runCluster decides where a function runs now, and why not when nowhere;
// waits reports that it keeps the function in a fallback cluster while its
// recovered home cluster is within the failback hold-down, a decision the
// clock alone changes.
func runCluster(m *meshfedv1.FunctionMesh, fi int, f *meshfedv1.FunctionSpec, existing []*meshfedv1.Assignment, in Input) (run, why string, waits bool) {
	home := PlacementCluster(f)
	view := func(c string) ClusterView { return in.Clusters[c] }
	current := ""
	for _, a := range existing {
		if a.GetSpec().GetAgent() != "" {
			current = a.GetSpec().GetCluster()
			break
		}
	}
	if view(home).Usable() {
		if current == "" || current == home || !view(current).Usable() {
			return home, "", false
		}
		// Running in a fallback: return only when allowed.
		waits = view(home).Health == Healthy && in.Now.Sub(view(home).Since) < in.HoldDown
		if f.GetFailover().GetFailback() == "manual" {
			secs, err := strconv.ParseInt(m.GetMetadata().GetLabels()[FailbackLabel], 10, 64)
			if err == nil && time.Unix(secs, 0).After(view(home).LastDown) && view(home).Health == Healthy {
				return home, "", waits
			}
			return current, "", waits
		}
		if view(home).stableFor(in.HoldDown, in.Now) {
			return home, "", false
		}
		return current, "", waits
	}
	if view(home).NoAgents && view(home).Health != Cordoned && current == "" {
		return "", fmt.Sprintf("waiting for an agent of cluster %q to register", home), false
	}
	var refused []string
	for _, c := range f.GetFailover().GetClusters() {
		if !view(c).Usable() {
			continue
		}
		if in.Allow != nil {
			eff := EffectiveSpec(f, c, in.Clusters)
			out := eff.GetOutput().GetCluster()
			if out == "" {
				out = c
			}
			if err := in.Allow(m, fi, c, eff.GetInput().GetCluster(), out, in.Clusters); err != nil {
				refused = append(refused, fmt.Sprintf("%s refused by policy: %v", c, err))
				continue
			}
		}
		return c, "", false
	}
	why = fmt.Sprintf("home cluster %q is %s", home, orUnknown(view(home).Health))
	if len(refused) > 0 {
		return "", why + "; fallback " + strings.Join(refused, "; "), false
	}
	if len(f.GetFailover().GetClusters()) == 0 {
		return "", why + " and the function has no failover clusters", false
	}
	return "", why + " and no failover cluster is usable", false
}

func orUnknown(h string) string {
	if h == "" {
		return "unknown"
	}
	return h
}

// EffectiveSpec is the function spec an instance running in cluster run
// uses. Replica counts and autoscaling are left out (they do not change what an instance
// does, so scaling never restarts running instances). When run is not the
// home cluster, the instance reads its input from run (the same topic
// names, geo-replicated) if the input cluster is the home cluster or is not
// usable, and writes to run if its output cluster is not usable.
func EffectiveSpec(f *meshfedv1.FunctionSpec, run string, clusters map[string]ClusterView) *meshfedv1.FunctionSpec {
	eff := proto.Clone(f).(*meshfedv1.FunctionSpec)
	eff.Replicas, eff.MinReplicas, eff.MaxReplicas, eff.Autoscaling = 0, 0, 0, nil
	eff.StoppedInstances, eff.InstanceRestarts = nil, nil
	home := PlacementCluster(f)
	if run == "" || run == home {
		return eff
	}
	if eff.Placement == nil {
		eff.Placement = &meshfedv1.Placement{}
	}
	eff.Placement.Cluster = run
	if in := eff.GetInput(); in != nil && (in.GetCluster() == home || !clusters[in.GetCluster()].Usable()) {
		in.Cluster = run
	}
	if out := eff.GetOutput(); out != nil && out.GetCluster() != "" && !clusters[out.GetCluster()].Usable() {
		out.Cluster = run
	}
	return eff
}

// instanceSpec is the spec instance i runs: eff, with the instance's
// restart request when it has one, so a restart of one instance changes
// only that instance's assignment (a new epoch restarts it).
func instanceSpec(eff, f *meshfedv1.FunctionSpec, i int) *meshfedv1.FunctionSpec {
	r, ok := f.GetInstanceRestarts()[int32(i)]
	if !ok {
		return eff
	}
	one := proto.Clone(eff).(*meshfedv1.FunctionSpec)
	one.InstanceRestarts = map[int32]uint64{int32(i): r}
	return one
}

func meshKey(m *meshfedv1.FunctionMesh) string {
	return objects.RefTo(objects.KindFunctionMesh, m.GetMetadata()).String()
}

// newAssignment builds the assignment of instance i of f on agent, with the
// epoch after prev's (1 for a new one) and a Pending status. f becomes its
// function spec without a copy: it is a spec this pass built (see
// EffectiveSpec), which the instances of one function may share; plans
// are written, never changed.
func newAssignment(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec, i int, agent, cluster string, prev *meshfedv1.Assignment) *meshfedv1.Assignment {
	md := m.GetMetadata()
	return &meshfedv1.Assignment{
		ApiVersion: objects.APIVersion,
		Kind:       objects.KindAssignment,
		Metadata: &meshfedv1.ObjectMeta{
			Name: AssignmentName(md.GetName(), f.GetName(), i), Tenant: md.GetTenant(), Namespace: md.GetNamespace(),
			Labels: map[string]string{"meshfed.io/mesh": md.GetName(), "meshfed.io/function": f.GetName()},
		},
		Spec: &meshfedv1.AssignmentSpec{
			Mesh: md.GetName(), Function: f.GetName(), Index: int32(i), Agent: agent, Cluster: cluster,
			Epoch: prev.GetSpec().GetEpoch() + 1, FunctionSpec: f,
		},
		Status: &meshfedv1.InstanceStatus{Index: int32(i), Agent: agent, Cluster: cluster, State: StatePending},
	}
}
