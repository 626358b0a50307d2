package federation

import (
	"fmt"
	"sort"

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
)

// Agent is what placement knows of one agent.
type Agent struct {
	Name    string
	Cluster string
	// Capacity is the number of instance slots; zero or less means one.
	Capacity int
	// Ready agents get new work; others lose theirs.
	Ready bool
}

// Plan is the set of assignment writes that brings the state to the desired one.
type Plan struct {
	// Puts are assignments to create or replace (spec and a reset status).
	Puts []*meshfedv1.Assignment
	// Deletes are assignments to remove.
	Deletes []*meshfedv1.Assignment
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

// PlanAssignments computes the assignment changes for the given meshes,
// agents and current assignments. It is deterministic and stable: an
// instance stays on its agent while that agent is ready and in the right
// cluster; it moves (with a new epoch) only when it must. A changed function
// spec rolls one instance at a time: the next instance is updated only when
// every instance of the function runs.
func PlanAssignments(meshes []*meshfedv1.FunctionMesh, agents []Agent, current []*meshfedv1.Assignment) Plan {
	byName := map[string]Agent{}
	load := map[string]int{}
	for _, a := range agents {
		byName[a.Name] = a
	}
	cur := map[key]*meshfedv1.Assignment{}
	for _, a := range current {
		cur[keyOf(a)] = a
		if ag, ok := byName[a.GetSpec().GetAgent()]; ok && ag.Ready {
			load[ag.Name]++
		}
	}
	wanted := map[key]bool{}
	var plan Plan
	meshes = append([]*meshfedv1.FunctionMesh(nil), meshes...)
	sort.Slice(meshes, func(i, j int) bool { return meshKey(meshes[i]) < meshKey(meshes[j]) })
	for _, m := range meshes {
		md := m.GetMetadata()
		for _, f := range m.GetSpec().GetFunctions() {
			cluster := PlacementCluster(f)
			var needUpdate []*meshfedv1.Assignment
			rolling := false
			for i := 0; i < Replicas(f); i++ {
				k := key{md.GetTenant(), md.GetNamespace(), AssignmentName(md.GetName(), f.GetName(), i)}
				wanted[k] = true
				a := cur[k]
				ag, ok := byName[a.GetSpec().GetAgent()]
				placed := a != nil && ok && ag.Ready && ag.Cluster == cluster
				if placed {
					if !proto.Equal(a.GetSpec().GetFunctionSpec(), f) {
						needUpdate = append(needUpdate, a)
					} else if a.GetStatus().GetState() != StateRunning {
						rolling = true
					}
					continue
				}
				// Move (or first place) the instance.
				target := pickAgent(agents, load, cluster)
				if a != nil && target == "" && a.GetSpec().GetAgent() == "" && proto.Equal(a.GetSpec().GetFunctionSpec(), f) {
					continue // still pending, nothing better to do
				}
				if a != nil {
					if prev, ok := byName[a.GetSpec().GetAgent()]; ok && prev.Ready {
						load[prev.Name]--
					}
				}
				if target != "" {
					load[target]++
				}
				plan.Puts = append(plan.Puts, newAssignment(m, f, i, target, cluster, a))
			}
			// Roll spec changes one instance at a time.
			if len(needUpdate) > 0 && !rolling {
				a := needUpdate[0]
				plan.Puts = append(plan.Puts, newAssignment(m, f, int(a.GetSpec().GetIndex()), a.GetSpec().GetAgent(), cluster, a))
			}
		}
	}
	for _, a := range current {
		if !wanted[keyOf(a)] {
			plan.Deletes = append(plan.Deletes, a)
		}
	}
	sort.Slice(plan.Deletes, func(i, j int) bool { return plan.Deletes[i].GetMetadata().GetName() < plan.Deletes[j].GetMetadata().GetName() })
	return plan
}

func meshKey(m *meshfedv1.FunctionMesh) string {
	md := m.GetMetadata()
	return md.GetTenant() + "/" + md.GetNamespace() + "/" + md.GetName()
}

// pickAgent returns the ready agent of cluster with the lowest load relative
// to its capacity that still has a free slot ("" when none).
func pickAgent(agents []Agent, load map[string]int, cluster string) string {
	best, bestScore := "", 0.0
	for _, a := range agents {
		if !a.Ready || a.Cluster != cluster {
			continue
		}
		c := a.Capacity
		if c <= 0 {
			c = 1
		}
		if load[a.Name] >= c {
			continue
		}
		score := float64(load[a.Name]+1) / float64(c)
		if best == "" || score < bestScore || score == bestScore && a.Name < best {
			best, bestScore = a.Name, score
		}
	}
	return best
}

// newAssignment builds the assignment of instance i of f on agent, with the
// epoch after prev's (1 for a new one) and a Pending status.
func newAssignment(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec, i int, agent, cluster string, prev *meshfedv1.Assignment) *meshfedv1.Assignment {
	md := m.GetMetadata()
	return &meshfedv1.Assignment{
		ApiVersion: objects.APIVersion,
		Kind:       "Assignment",
		Metadata: &meshfedv1.ObjectMeta{
			Name: AssignmentName(md.GetName(), f.GetName(), i), Tenant: md.GetTenant(), Namespace: md.GetNamespace(),
			Labels: map[string]string{"meshfed.io/mesh": md.GetName(), "meshfed.io/function": f.GetName()},
		},
		Spec: &meshfedv1.AssignmentSpec{
			Mesh: md.GetName(), Function: f.GetName(), Index: int32(i), Agent: agent, Cluster: cluster,
			Epoch: prev.GetSpec().GetEpoch() + 1, FunctionSpec: proto.Clone(f).(*meshfedv1.FunctionSpec),
		},
		Status: &meshfedv1.InstanceStatus{Index: int32(i), Agent: agent, Cluster: cluster, State: StatePending},
	}
}
