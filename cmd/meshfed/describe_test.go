package main

import (
	"bytes"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
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
