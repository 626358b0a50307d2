package federation

import (
	"testing"

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
