package federation

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// TestMemoSeesChanges: with a memo, a changed function spec (a new mesh
// object, as a write stores) and a cluster whose usability changes still
// update assignments, exactly as without one.
func TestMemoSeesChanges(t *testing.T) {
	for _, memo := range []*Memo{nil, NewMemo()} {
		in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", fn("f", "a", "b", 1, "c"))}, Agents: []Agent{ag("a1"), ag("c1", func(a *Agent) { a.Cluster = "c" })},
			Clusters: healthy("a", "b", "c"), Now: t0, Memo: memo}
		in.Assignments = settle(t, in)
		if p := PlanAssignments(in); !p.Empty() {
			t.Fatalf("steady pass planned %v", p.Puts)
		}
		changed := proto.CloneOf(in.Meshes[0])
		changed.Spec.Functions[0].Timeout = "5s"
		in.Meshes = []*meshfedv1.FunctionMesh{changed}
		p := PlanAssignments(in)
		if len(p.Puts) != 1 || p.Puts[0].GetSpec().GetFunctionSpec().GetTimeout() != "5s" {
			t.Fatalf("memo %v: changed spec planned %v", memo != nil, p.Puts)
		}
		in.Clusters["a"] = ClusterView{Health: Down}
		in.Assignments = settle(t, in)
		in.Clusters["b"] = ClusterView{Health: Down}
		p = PlanAssignments(in)
		if len(p.Puts) != 1 || p.Puts[0].GetSpec().GetFunctionSpec().GetOutput().GetCluster() != "c" {
			t.Fatalf("memo %v: output cluster down planned %v", memo != nil, p.Puts)
		}
	}
}

// TestMemoPlansAsWithout is the memo's property: over random federations
// and random changes between passes (a mesh rewritten, stopped or
// scaled, an agent leaving, coming back or changing, a cluster going
// Down or recovering, a mesh blocked by policy, an instance restarting or
// reporting), a pass with the memo carried from the passes before plans
// exactly what a pass without any memo plans.
func TestMemoPlansAsWithout(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		in := randomInput(r)
		in.Clusters["c"] = ClusterView{Health: Healthy, Since: t0.Add(-time.Hour)}
		for _, m := range in.Meshes {
			for _, f := range m.GetSpec().GetFunctions() {
				if r.IntN(2) == 0 {
					f.Failover = &meshfedv1.Failover{Clusters: []string{"c", "b"}[r.IntN(2):]}
				}
			}
		}
		in.Agents = append(in.Agents, ag("c1", func(a *Agent) { a.Cluster = "c" }))
		in.HoldDown, in.MoveAfterRestarts, in.RebalanceMoves = time.Minute, 3, r.IntN(3)
		in.Memo = NewMemo()
		var history []string
		for step := range 30 {
			with := PlanAssignments(in)
			bare := in
			bare.Memo = nil
			without := PlanAssignments(bare)
			if err := samePlan(with, without); err != nil {
				t.Fatalf("seed %d, step %d after %v: with the memo %v", seed, step, history, err)
			}
			in.Assignments = applyPlan(r, in.Assignments, with)
			history = append(history, mutate(r, &in))
			in.Now = in.Now.Add(time.Duration(r.IntN(40)) * time.Second)
		}
	}
}

// samePlan reports how plan a differs from plan b.
func samePlan(a, b Plan) error {
	if a.WaitsOnClock != b.WaitsOnClock {
		return fmt.Errorf("waits on the clock %v, without %v", a.WaitsOnClock, b.WaitsOnClock)
	}
	for _, l := range []struct {
		what string
		a, b []*meshfedv1.Assignment
	}{{"puts", a.Puts, b.Puts}, {"deletes", a.Deletes, b.Deletes}} {
		if len(l.a) != len(l.b) {
			return fmt.Errorf("plans %d %s, without %d: %v / %v", len(l.a), l.what, len(l.b), names(l.a), names(l.b))
		}
		for i := range l.a {
			if !proto.Equal(l.a[i], l.b[i]) {
				return fmt.Errorf("%s %d is %v, without %v", l.what, i, l.a[i], l.b[i])
			}
		}
	}
	return nil
}

func names(as []*meshfedv1.Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.GetMetadata().GetName()+"@"+a.GetSpec().GetAgent())
	}
	return out
}

// applyPlan writes p over as, as the store would (new objects for what it
// puts), with some placed instances then reported Running. Assignments
// keep the order of their keys, as a store lists them.
func applyPlan(r *rand.Rand, as []*meshfedv1.Assignment, p Plan) []*meshfedv1.Assignment {
	byKey := map[key]*meshfedv1.Assignment{}
	for _, a := range as {
		byKey[keyOf(a)] = a
	}
	for _, a := range p.Deletes {
		delete(byKey, keyOf(a))
	}
	for _, a := range p.Puts {
		a = proto.CloneOf(a)
		if a.GetSpec().GetAgent() != "" && r.IntN(4) > 0 {
			a.Status.State = StateRunning
		}
		byKey[keyOf(a)] = a
	}
	out := make([]*meshfedv1.Assignment, 0, len(byKey))
	for _, a := range byKey {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetMetadata().GetName() < out[j].GetMetadata().GetName() })
	return out
}

// mutate makes one random change to in between passes and says which.
func mutate(r *rand.Rand, in *Input) string {
	switch r.IntN(12) {
	case 0: // a mesh rewritten: a new object, maybe with a changed spec
		i := r.IntN(len(in.Meshes))
		m := proto.CloneOf(in.Meshes[i])
		fns := m.GetSpec().GetFunctions()
		f := fns[r.IntN(len(fns))]
		switch r.IntN(4) {
		case 0:
			f.Timeout = fmt.Sprintf("%ds", 1+r.IntN(5))
		case 1:
			f.Replicas = int32(1 + r.IntN(4))
		case 2:
			f.StoppedInstances = []int32{int32(r.IntN(3))}
		}
		in.Meshes = slices.Clone(in.Meshes)
		in.Meshes[i] = m
		return "mesh " + m.GetMetadata().GetName() + " rewritten"
	case 1, 2: // an agent leaves or comes back
		in.Agents = slices.Clone(in.Agents)
		i := r.IntN(len(in.Agents))
		in.Agents[i].Ready = !in.Agents[i].Ready
		return fmt.Sprintf("agent %s ready %v", in.Agents[i].Name, in.Agents[i].Ready)
	case 3: // an agent is removed, or one joins
		if r.IntN(2) == 0 && len(in.Agents) > 1 {
			i := r.IntN(len(in.Agents))
			name := in.Agents[i].Name
			in.Agents = slices.Delete(slices.Clone(in.Agents), i, i+1)
			return "agent " + name + " removed"
		}
		name := fmt.Sprintf("new%d", r.IntN(1000))
		in.Agents = append(slices.Clone(in.Agents), ag(name, func(a *Agent) { a.Cluster = []string{"a", "b", "c"}[r.IntN(3)] }))
		return "agent " + name + " joined"
	case 4: // an agent's capabilities change
		in.Agents = slices.Clone(in.Agents)
		i := r.IntN(len(in.Agents))
		in.Agents[i].Runtimes = []string{[]string{"builtin", "exec", "wasm"}[r.IntN(3)]}
		in.Agents[i].Labels = map[string]string{"zone": []string{"x", "y"}[r.IntN(2)]}
		return "agent " + in.Agents[i].Name + " changed"
	case 5: // a cluster goes Down or recovers
		c := []string{"a", "b", "c"}[r.IntN(3)]
		in.Clusters = maps.Clone(in.Clusters)
		if in.Clusters[c].Usable() {
			in.Clusters[c] = ClusterView{Health: Down, Since: in.Now, LastDown: in.Now}
		} else {
			in.Clusters[c] = ClusterView{Health: Healthy, Since: in.Now, LastDown: in.Clusters[c].LastDown}
		}
		return "cluster " + c + " " + in.Clusters[c].Health
	case 6: // a mesh blocked by policy, or unblocked
		m := in.Meshes[r.IntN(len(in.Meshes))]
		k := meshKey(m)
		in.Blocked = maps.Clone(in.Blocked)
		if in.Blocked == nil {
			in.Blocked = map[string]string{}
		}
		if _, ok := in.Blocked[k]; ok {
			delete(in.Blocked, k)
			return k + " unblocked"
		}
		in.Blocked[k] = "policy: no"
		return k + " blocked"
	case 7, 8: // an instance restarts, fails or reports Running
		if len(in.Assignments) == 0 {
			return "nothing"
		}
		in.Assignments = slices.Clone(in.Assignments)
		i := r.IntN(len(in.Assignments))
		a := proto.CloneOf(in.Assignments[i])
		if a.Status == nil {
			a.Status = &meshfedv1.InstanceStatus{}
		}
		a.Status.State = []string{StateRunning, StateFailed, StateStarting}[r.IntN(3)]
		a.Status.Restarts += uint32(r.IntN(3))
		in.Assignments[i] = a
		return "instance " + a.GetMetadata().GetName() + " " + a.Status.State
	default:
		return "nothing"
	}
}
