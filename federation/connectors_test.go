package federation

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Sources and sinks are placed and failed over as functions are: a source
// runs in its output cluster, a sink in its input cluster, and both move to
// their fallback when that cluster goes down.
func TestConnectorsPlacedAndFailedOverAsFunctions(t *testing.T) {
	m := mesh("iot")
	m.Spec.Sources = []*meshfedv1.ConnectorSpec{{Name: "devices", Type: "mqtt",
		Output: &meshfedv1.FunctionOutput{Cluster: "a", Topic: "readings"}, Failover: &meshfedv1.Failover{Clusters: []string{"b"}}}}
	m.Spec.Sinks = []*meshfedv1.ConnectorSpec{{Name: "rows", Type: "http", Replicas: 2,
		Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"readings"}}, Failover: &meshfedv1.Failover{Clusters: []string{"b"}}}}
	agents := []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}, {Name: "b1", Cluster: "b", Capacity: 10, Ready: true}}
	in := Input{Meshes: []*meshfedv1.FunctionMesh{m}, Agents: agents, Clusters: healthy("a", "b"), Now: t0}
	in.Assignments = settle(t, in)
	if len(in.Assignments) != 3 {
		t.Fatalf("assignments %v: want the source's one and the sink's two", where(in.Assignments))
	}
	for _, a := range in.Assignments {
		if a.GetSpec().GetCluster() != "a" || a.GetSpec().GetFunctionSpec().GetRuntime().GetConnector() == nil {
			t.Fatalf("before failover: %v", a.GetSpec())
		}
	}
	st := MeshStatus(m, in.Assignments, nil, t0)
	if len(st.GetFunctions()) != 2 || st.GetFunctions()[0].GetName() != "devices" || st.GetFunctions()[1].GetReadyReplicas() != 2 {
		t.Fatalf("status %v", st.GetFunctions())
	}
	in.Clusters["a"] = ClusterView{Health: Down, Since: t0, LastDown: t0}
	in.Agents = []Agent{{Name: "a1", Cluster: "a", Capacity: 10}, agents[1]}
	in.Assignments = settle(t, in)
	for _, a := range in.Assignments {
		fs := a.GetSpec().GetFunctionSpec()
		if a.GetSpec().GetCluster() != "b" || fs.GetOutput() != nil && fs.GetOutput().GetCluster() != "b" || fs.GetInput() != nil && fs.GetInput().GetCluster() != "b" {
			t.Fatalf("after failover: %v", a.GetSpec())
		}
	}
}
