package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestDescribeMeshShowsDeduplicatedAndUnproven(t *testing.T) {
	fm := &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: "m", Tenant: "public", Namespace: "default"},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{Name: "split"}, {Name: "count"}}},
		Status: &meshfedv1.FunctionMeshStatus{Functions: []*meshfedv1.FunctionStatus{{Name: "split", Instances: []*meshfedv1.InstanceStatus{{
			Index: 0, Agent: "agent-c", Cluster: "c", State: "Running", Received: 7, Processed: 6, Failed: 1, Deduplicated: 42, Unproven: 3,
			Restarts: 5, OomKills: 2, Limits: "cgroup1",
		}}}}},
	}
	var buf bytes.Buffer
	describeMesh(&buf, fm)
	lines := strings.Split(buf.String(), "\n")
	var header, split, count []string
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "FUNCTION":
			header = f
		case len(f) > 0 && f[0] == "split":
			split = f
		case len(f) > 0 && f[0] == "count":
			count = f
		}
	}
	col := func(row []string, name string) string {
		for i, h := range header {
			if h == name && i < len(row) {
				return row[i]
			}
		}
		t.Fatalf("no column %s in %v / %v", name, header, row)
		return ""
	}
	if got := col(split, "DEDUPLICATED"); got != "42" {
		t.Fatalf("DEDUPLICATED = %q, want 42\n%s", got, buf.String())
	}
	if got := col(split, "UNPROVEN"); got != "3" {
		t.Fatalf("UNPROVEN = %q, want 3\n%s", got, buf.String())
	}
	for name, want := range map[string]string{"RESTARTS": "5", "OOMKILLS": "2", "LIMITS": "cgroup1"} {
		if got := col(split, name); got != want {
			t.Fatalf("%s = %q, want %s\n%s", name, got, want, buf.String())
		}
	}
	if got := col(count, "LIMITS"); got != "-" {
		t.Fatalf("a pending function's LIMITS = %q, want -\n%s", got, buf.String())
	}
	if got := col(count, "UNPROVEN"); got != "-" {
		t.Fatalf("a pending function's UNPROVEN = %q, want -\n%s", got, buf.String())
	}
}

func TestDescribeMeshShowsPlacementNotes(t *testing.T) {
	fm := &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: "m", Tenant: "public", Namespace: "default"},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{Name: "big"}, {Name: "flaky"}}},
		Status: &meshfedv1.FunctionMeshStatus{Functions: []*meshfedv1.FunctionStatus{
			{Name: "big", Instances: []*meshfedv1.InstanceStatus{{State: "Pending", PendingReason: `no agent of cluster "a" can run it: 2 agents have at most 2Gi memory free < 4Gi requested (a1, a2)`}}},
			{Name: "flaky", Instances: []*meshfedv1.InstanceStatus{{Agent: "a2", State: "Running", Restarts: 1, MovedReason: "restarted 5 times on agent a1 (threshold 5)"}}},
		}},
	}
	var buf bytes.Buffer
	describeMesh(&buf, fm)
	for _, want := range []string{
		`big#0  pending: no agent of cluster "a" can run it: 2 agents have at most 2Gi memory free < 4Gi requested (a1, a2)`,
		"flaky#0  restarts: 1; moved: restarted 5 times on agent a1 (threshold 5)",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("describe mesh lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestDescribeScalingShowsEvents(t *testing.T) {
	fm := &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: "m", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{Name: "split", MinReplicas: 1, MaxReplicas: 4,
			Autoscaling: &meshfedv1.Autoscaling{BacklogPerReplica: 1000, CpuUtilization: 70}}, {Name: "count"}}},
		Status: &meshfedv1.FunctionMeshStatus{
			Scale: map[string]int32{"split": 4},
			Functions: []*meshfedv1.FunctionStatus{{Name: "split", Instances: []*meshfedv1.InstanceStatus{
				{Index: 0, State: "Running", CpuMillis: 80}, {Index: 1, State: "Running", CpuMillis: 40}, {Index: 2, State: "Starting"}}}},
			ScaleEvents: []*meshfedv1.ScaleEvent{{Time: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), Function: "split", From: 1, To: 4,
				Reason: "backlog 41200 over 4 partitions at 1000 per replica wants 42; within 1..4: 4", Backlog: 41200, CpuMillis: -1}},
		},
	}
	var buf bytes.Buffer
	describeScaling(&buf, fm)
	out := buf.String()
	for _, want := range []string{
		"split     4         1    4    1000             70%         120m over 2 running",
		"2026-01-02T03:04:05Z  split  1 -> 4  backlog 41200 over 4 partitions",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "count") {
		t.Errorf("a function without autoscaling is listed:\n%s", out)
	}
	buf.Reset()
	describeScaling(&buf, &meshfedv1.FunctionMesh{Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{Name: "f"}}}})
	if buf.Len() != 0 {
		t.Errorf("a mesh without autoscaling printed %q", buf.String())
	}
}
