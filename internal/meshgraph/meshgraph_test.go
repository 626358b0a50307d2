package meshgraph

import (
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func TestBuildAndDot(t *testing.T) {
	o := &meshfedv1.Object{Kind: &meshfedv1.Object_FunctionMesh{FunctionMesh: &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: `fl"x`, Tenant: "acme", Namespace: "ml"},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{
			{Name: "train", Replicas: 2, Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"grads"}},
				Output: &meshfedv1.FunctionOutput{Cluster: "b", Topic: "updates"}},
			{Name: "merge", Input: &meshfedv1.FunctionInput{Cluster: "b", Topics: []string{"updates"}},
				Placement: &meshfedv1.Placement{Cluster: "c"}},
		}},
		Status: &meshfedv1.FunctionMeshStatus{Functions: []*meshfedv1.FunctionStatus{{Name: "train", Instances: []*meshfedv1.InstanceStatus{
			{Index: 1, Agent: "a2", Cluster: "a", State: "Running"}, {Index: 0, Agent: "a1", Cluster: "a", State: "Failed"}}}}},
	}}}
	g, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range g.Clusters {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("clusters %v", names)
	}
	train := g.Clusters[0].Functions[0]
	if train.Running != 1 || train.Replicas != 2 || train.Instances[0].Index != 0 {
		t.Fatalf("train: %+v", train)
	}
	// The topic updates of cluster b is one node, written by train and read by merge.
	if len(g.Clusters[1].Topics) != 1 || len(g.Edges) != 3 {
		t.Fatalf("topics of b %v, edges %v", g.Clusters[1].Topics, g.Edges)
	}
	var b strings.Builder
	if err := WriteDot(&b, g); err != nil {
		t.Fatal(err)
	}
	dot := b.String()
	for _, want := range []string{`digraph "acme/ml/fl\"x"`, `"function:train" [shape=box, color=orange, label="train\n1/2 running\n#0 Failed on a1\n#1 Running on a2"]`,
		`"topic:b:updates" -> "function:merge"`} {
		if !strings.Contains(dot, want) {
			t.Errorf("dot lacks %s:\n%s", want, dot)
		}
	}
	if _, err := Build(&meshfedv1.Object{Kind: &meshfedv1.Object_Cluster{Cluster: &meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}}}}); err == nil {
		t.Fatal("a cluster is not a mesh")
	}
}
