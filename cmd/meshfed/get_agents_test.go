package main

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// TestGetAgentsShowsCapabilities: the agent table shows the CPU, memory,
// runtimes and interpreters an agent advertised, "-" where it did not.
func TestGetAgentsShowsCapabilities(t *testing.T) {
	k, err := objects.LookupKind("agents")
	if err != nil {
		t.Fatal(err)
	}
	row := func(a *meshfedv1.Agent) map[string]string {
		out := map[string]string{}
		for _, c := range tableColumns(k) {
			out[c.name] = c.value(objects.Wrap(a))
		}
		return out
	}
	got := row(&meshfedv1.Agent{Spec: &meshfedv1.AgentSpec{Cluster: "a", CpuMillis: 3500, MemoryBytes: 8 << 30,
		Runtimes: []string{"builtin", "exec"}, Interpreters: []string{"python3"}}})
	if got["CPU"] != "3500m" || got["MEMORY"] != "8Gi" || got["RUNTIMES"] != "builtin,exec,python3" {
		t.Fatalf("agent row %v", got)
	}
	if got := row(&meshfedv1.Agent{Spec: &meshfedv1.AgentSpec{Cluster: "a"}}); got["CPU"] != "-" || got["MEMORY"] != "-" || got["RUNTIMES"] != "-" {
		t.Fatalf("agent that advertised nothing: %v", got)
	}
}
