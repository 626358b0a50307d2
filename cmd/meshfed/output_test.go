package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestListingOutputFormats runs every listing command in every -o format
// against a server holding two clusters and a mesh.
func TestListingOutputFormats(t *testing.T) {
	addr := testServer(t)
	if _, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, "", append([]string{"--server", addr}, args...)...)
		if code != 0 {
			t.Fatalf("meshfed %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	// A JSON list is one array, even of one object; one object is itself.
	var list []map[string]any
	if err := json.Unmarshal([]byte(run("get", "clusters", "-o", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("get clusters -o json: %v, %d items", err, len(list))
	}
	if err := json.Unmarshal([]byte(run("get", "meshes", "-o", "json")), &list); err != nil || len(list) != 1 || list[0]["kind"] != "FunctionMesh" {
		t.Fatalf("get meshes -o json: %v, %v", err, list)
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(run("get", "mesh", "wc", "-o", "json")), &one); err != nil || one["kind"] != "FunctionMesh" {
		t.Fatalf("get mesh wc -o json: %v, %v", err, one)
	}
	// YAML of a list is one document per object, so it can be applied again.
	if out := run("get", "clusters", "-o", "yaml"); strings.Count(out, "---\n") != 2 || !strings.Contains(out, "kind: Cluster") {
		t.Fatalf("get clusters -o yaml:\n%s", out)
	}
	if out := run("get", "clusters", "-o", "name"); out != "cluster/a\ncluster/b\n" {
		t.Fatalf("get clusters -o name: %q", out)
	}
	if out := run("get", "meshes", "-o", "wide"); !strings.Contains(out, "CLUSTERS") || !strings.Contains(out, "a,b") || !strings.Contains(out, "0/1") {
		t.Fatalf("get meshes -o wide lacks the clusters and instances:\n%s", out)
	}

	// describe: the object in JSON/YAML, the mesh as a graph.
	if err := yaml.Unmarshal([]byte(run("describe", "mesh", "wc", "-o", "yaml")), &one); err != nil || one["kind"] != "FunctionMesh" {
		t.Fatalf("describe -o yaml: %v %v", err, one)
	}
	dot := run("describe", "mesh", "wc", "-o", "dot")
	for _, want := range []string{`digraph "public/default/wc"`, `label="cluster a"`, `label="cluster b"`,
		`"topic:a:persistent://public/default/in" -> "function:split"`, `"function:split" -> "topic:b:persistent://public/default/out"`} {
		if !strings.Contains(dot, want) {
			t.Errorf("describe -o dot lacks %s:\n%s", want, dot)
		}
	}
	if _, errOut, code := cli(t, "", "--server", addr, "describe", "cluster", "a", "-o", "dot"); code != 2 || !strings.Contains(errOut, "only a mesh") {
		t.Errorf("describe cluster -o dot: exit %d %s", code, errOut)
	}

	// The Raft peers and the status screen.
	var peers []struct {
		ID     string `json:"id"`
		Leader bool   `json:"leader"`
	}
	if err := json.Unmarshal([]byte(run("operator", "raft", "list-peers", "-o", "json")), &peers); err != nil || len(peers) != 1 || !peers[0].Leader {
		t.Fatalf("list-peers -o json: %v %+v", err, peers)
	}
	if out := run("operator", "raft", "list-peers", "-o", "name"); out != "peer/"+peers[0].ID+"\n" {
		t.Fatalf("list-peers -o name: %q", out)
	}
	var st struct {
		Servers  []map[string]any `json:"servers"`
		Clusters []map[string]any `json:"clusters"`
		Meshes   []map[string]any `json:"meshes"`
	}
	if err := json.Unmarshal([]byte(run("status", "-o", "json")), &st); err != nil || len(st.Servers) != 1 || len(st.Clusters) != 2 || len(st.Meshes) != 1 {
		t.Fatalf("status -o json: %v %+v", err, st)
	}
	if out := run("status", "-o", "name"); !strings.Contains(out, "cluster/a\n") || !strings.Contains(out, "functionmesh/public/default/wc\n") {
		t.Fatalf("status -o name:\n%s", out)
	}
	if out := run("status", "-o", "wide"); !strings.Contains(out, "RUNNING") {
		t.Fatalf("status -o wide:\n%s", out)
	}

	// Formats a command does not offer are usage errors naming the choices.
	for _, args := range [][]string{{"get", "clusters", "-o", "xml"}, {"status", "-o", "dot"}, {"operator", "raft", "list-peers", "-o", "csv"}} {
		if _, errOut, code := cli(t, "", append([]string{"--server", addr}, args...)...); code != 2 || !strings.Contains(errOut, "table, wide, json, yaml or name") {
			t.Errorf("meshfed %v: exit %d %q", args, code, errOut)
		}
	}
}

// TestDrillListOutputFormats: drill reports in each format, --json kept as
// a deprecated spelling of -o json.
func TestDrillListOutputFormats(t *testing.T) {
	dir := t.TempDir()
	savedReport(t, dir, "20261126t120000-aaaa", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), 900*time.Millisecond, 0)
	out, _, code := cli(t, "", "drill", "list", "-o", "name", "--reports-dir", dir)
	if code != 0 || out != "drill/20261126t120000-aaaa\n" {
		t.Fatalf("drill list -o name: %d %q", code, out)
	}
	for _, args := range [][]string{{"-o", "json"}, {"--json"}} {
		out, _, code := cli(t, "", append([]string{"drill", "list", "--reports-dir", dir}, args...)...)
		var reps []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &reps) != nil || len(reps) == 0 {
			t.Fatalf("drill list %v: %d %q", args, code, out)
		}
	}
	if out, _, code := cli(t, "", "drill", "list", "-o", "yaml", "--reports-dir", dir); code != 0 || !strings.HasPrefix(out, "- ") {
		t.Fatalf("drill list -o yaml: %d %q", code, out)
	}
}

// TestCompletion completes kinds, then names read from the server.
func TestCompletion(t *testing.T) {
	addr := testServer(t)
	if _, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	out, _, code := cli(t, "", "__complete", "get", "me")
	if code != 0 || !strings.Contains(out, "mesh\n") || !strings.Contains(out, "meshes\n") {
		t.Fatalf("complete a kind: exit %d %q", code, out)
	}
	if out, _, _ := cli(t, "", "__complete", "delete", "ag"); strings.Contains(out, "agents") {
		t.Fatalf("delete completes agents, which users do not write: %q", out)
	}
	out, _, code = cli(t, "", "--server", addr, "__complete", "describe", "mesh", "")
	if code != 0 || !strings.Contains(out, "public/default/wc\n") {
		t.Fatalf("complete a mesh name: exit %d %q", code, out)
	}
	out, _, _ = cli(t, "", "--server", addr, "__complete", "get", "clusters", "-o", "")
	if !strings.Contains(out, "wide\n") || !strings.Contains(out, "name\n") {
		t.Fatalf("complete -o: %q", out)
	}
}
