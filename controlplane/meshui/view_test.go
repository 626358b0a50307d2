package meshui

import (
	"testing"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

func cluster(name, health string) *meshfedv1.Cluster {
	return &meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: name}, Status: &meshfedv1.ClusterStatus{Health: health}}
}

func cond(typ string, ok bool, msg string) *meshfedv1.Condition {
	s := "False"
	if ok {
		s = "True"
	}
	return &meshfedv1.Condition{Type: typ, Status: s, Message: msg}
}

func TestBuildFollowsInstancesAndFailover(t *testing.T) {
	split := testkit.Builtin("split", "word-split", "a", "in", "b", "words")
	split.Replicas = 2
	split.Failover = &meshfedv1.Failover{Clusters: []string{"c"}}
	count := testkit.Builtin("count", "word-count", "b", "words", "", "counts")
	m := testkit.MeshOf("public", "default", "wc", split, count)
	m.Status = &meshfedv1.FunctionMeshStatus{
		Conditions: []*meshfedv1.Condition{
			cond(federation.ConditionReady, false, ""),
			cond(federation.ConditionProgressing, true, "count (1 not yet assigned)"),
			cond(federation.ConditionDegraded, false, ""),
			cond(federation.ConditionFailedOver, true, "split"),
		},
		Functions: []*meshfedv1.FunctionStatus{{
			Name: "split", ReadyReplicas: 2,
			Instances: []*meshfedv1.InstanceStatus{
				{Index: 1, Agent: "agent-c", Cluster: "c", State: federation.StateRunning, Received: 5, Processed: 4},
				{Index: 0, Agent: "agent-c", Cluster: "c", State: federation.StateRunning, Received: 7, Processed: 7, Failed: 1},
			},
		}},
	}
	now := time.Unix(1700000000, 0)
	v := Build(now, []*meshfedv1.Cluster{cluster("c", federation.Healthy), cluster("a", federation.Down), cluster("b", federation.Healthy)},
		[]*meshfedv1.Agent{{Metadata: &meshfedv1.ObjectMeta{Name: "agent-c"}, Spec: &meshfedv1.AgentSpec{Cluster: "c"}, Status: &meshfedv1.AgentStatus{State: "Ready"}}},
		[]*meshfedv1.FunctionMesh{m})

	if got := [3]string{v.Clusters[0].Name, v.Clusters[1].Name, v.Clusters[2].Name}; got != [3]string{"a", "b", "c"} {
		t.Errorf("clusters %v, want sorted a b c", got)
	}
	if len(v.Meshes) != 1 {
		t.Fatalf("meshes: %+v", v.Meshes)
	}
	mv := v.Meshes[0]
	if mv.Health != "Progressing" || mv.Message != "count (1 not yet assigned)" || !mv.FailedOver {
		t.Errorf("mesh health %q message %q failedOver %v", mv.Health, mv.Message, mv.FailedOver)
	}
	s := mv.Functions[0]
	if s.Home != "a" || s.RunsIn != "c" || s.InputCluster != "c" || s.OutputCluster != "b" {
		t.Errorf("split home %s runs in %s reads %s writes %s; want a, c, c, b", s.Home, s.RunsIn, s.InputCluster, s.OutputCluster)
	}
	if s.Received != 12 || s.Processed != 11 || s.Failed != 1 || s.Replicas != 2 || s.Runtime != "builtin:word-split" || s.Guarantee != "atleast_once" {
		t.Errorf("split %+v", s)
	}
	if s.Instances[0].Index != 0 || s.Instances[1].Index != 1 {
		t.Errorf("instances not sorted by index: %+v", s.Instances)
	}
	c := mv.Functions[1]
	if c.RunsIn != "b" || c.OutputCluster != "b" || c.Output != "counts" || len(c.Instances) != 0 {
		t.Errorf("count %+v", c)
	}
}

func TestBuildMeshHealth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conds []*meshfedv1.Condition
		want  string
	}{
		{"no status yet", nil, "Unknown"},
		{"ready", []*meshfedv1.Condition{cond(federation.ConditionReady, true, "")}, "Ready"},
		{"degraded wins", []*meshfedv1.Condition{cond(federation.ConditionProgressing, true, "x"), cond(federation.ConditionDegraded, true, "failed: split")}, "Degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testkit.MeshOf("t", "n", "m", testkit.Builtin("f", "identity", "a", "in", "", ""))
			m.Status = &meshfedv1.FunctionMeshStatus{Conditions: tc.conds}
			v := Build(time.Now(), nil, nil, []*meshfedv1.FunctionMesh{m})
			if got := v.Meshes[0].Health; got != tc.want {
				t.Errorf("health %q, want %q", got, tc.want)
			}
			if f := v.Meshes[0].Functions[0]; f.RunsIn != "a" || f.OutputCluster != "a" || f.Output != "" {
				t.Errorf("function %+v", f)
			}
		})
	}
}
