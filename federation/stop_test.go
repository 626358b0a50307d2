package federation

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func epochs(as []*meshfedv1.Assignment) map[int32]uint64 {
	e := map[int32]uint64{}
	for _, a := range as {
		e[a.GetSpec().GetIndex()] = a.GetSpec().GetEpoch()
	}
	return e
}

// Stopped instances are not placed (a running one is deleted) and come
// back when started; a restart request moves only its instance's epoch.
func TestStoppedInstancesAndRestarts(t *testing.T) {
	f := fn("f", "a", "a", 3)
	in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", f)},
		Agents: []Agent{{Name: "a1", Cluster: "a", Capacity: 9, Ready: true}}, Clusters: healthy("a"), Now: t0}
	in.Assignments = settle(t, in)
	if len(in.Assignments) != 3 {
		t.Fatalf("placed %d instances, want 3", len(in.Assignments))
	}
	before := epochs(in.Assignments)

	f.StoppedInstances = []int32{1}
	in.Assignments = settle(t, in)
	if e := epochs(in.Assignments); len(e) != 2 || e[0] != before[0] || e[2] != before[2] {
		t.Fatalf("after stopping instance 1: %v, want 0 and 2 untouched", e)
	}
	st := MeshStatus(in.Meshes[0], in.Assignments, nil, t0)
	if cond(st, ConditionReady) != "True" {
		t.Errorf("a mesh with a stopped instance and the others running: Ready %s, want True (%v)", cond(st, ConditionReady), st.GetConditions())
	}

	f.StoppedInstances = nil
	in.Assignments = settle(t, in)
	if e := epochs(in.Assignments); len(e) != 3 || e[0] != before[0] {
		t.Fatalf("after starting: %v, want 3 instances and 0 untouched", e)
	}
	before = epochs(in.Assignments)

	f.InstanceRestarts = map[int32]uint64{2: 1}
	in.Assignments = settle(t, in)
	e := epochs(in.Assignments)
	if e[2] != before[2]+1 || e[0] != before[0] || e[1] != before[1] {
		t.Fatalf("restart of instance 2: epochs %v (were %v), want only 2 moved by one", e, before)
	}
	in.Assignments = settle(t, in)
	if e2 := epochs(in.Assignments); e2[2] != e[2] {
		t.Fatalf("a restart request applied twice: epoch %d then %d", e[2], e2[2])
	}
}
