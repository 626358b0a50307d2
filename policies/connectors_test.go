package policies

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

// Sources and sinks are admitted as functions are, with their own paths.
func TestAdmitConnectors(t *testing.T) {
	m := func() *meshfedv1.FunctionMesh {
		mesh := testkit.MeshOf("acme", "dev", "iot")
		mesh.Spec.Sources = []*meshfedv1.ConnectorSpec{{Name: "devices", Type: "mqtt", Placement: &meshfedv1.Placement{Cluster: "c"},
			Output: &meshfedv1.FunctionOutput{Cluster: "a", Topic: "persistent://acme/dev/readings"}}}
		mesh.Spec.Sinks = []*meshfedv1.ConnectorSpec{{Name: "rows", Type: "http",
			Input: &meshfedv1.FunctionInput{Cluster: "us-east", Topics: []string{"persistent://lab-b/models/updates"}}}}
		return mesh
	}
	runAdmitCases(t, []admitCase{
		{name: "flows, grants and runtimes", objs: []*meshfedv1.Object{testkit.Namespace("acme", "dev", &meshfedv1.NamespaceSpec{
			AllowedRuntimes: []string{"builtin"}, Flows: []*meshfedv1.FlowRule{{From: "a", To: "b"}}})}, mesh: m(), want: []string{
			`spec.sources[0].runtime connector is not allowed in namespace acme/dev, which allows builtin (namespace.allowedRuntimes)`,
			`spec.sources[0].output.cluster "a" receives data from placement cluster "c", and no flow rule of namespace acme/dev allows c -> a (namespace.flows)`,
			`spec.sinks[0].runtime connector is not allowed in namespace acme/dev, which allows builtin (namespace.allowedRuntimes)`,
			`spec.sinks[0].input.topics[0] "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets acme/dev consume (grant.consume)`,
		}},
		{name: "allowed", objs: []*meshfedv1.Object{testkit.Namespace("acme", "dev", &meshfedv1.NamespaceSpec{AllowedRuntimes: []string{"connector"}}),
			grantObj("lab-b", "models", "g", "acme", "dev", "consume")}, mesh: m()},
	})
}
