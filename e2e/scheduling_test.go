//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/internal/testkit"
)

// TestSchedulingByCapabilities: two `meshfed agent` processes of one
// cluster, one started without python3 on its PATH and offering 1Gi, the
// other with python3 and 2Gi. A python exec function's instances run only
// on the second; a function requesting 4Gi stays Pending, and `meshfed
// describe mesh` names both agents' refusals.
func TestSchedulingByCapabilities(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	script, err := filepath.Abs("../examples/exec/identity.py")
	if err != nil {
		t.Fatal(err)
	}
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a"}, noAgents: true})
	addAgent := func(name, memory string) {
		t.Helper()
		dir := filepath.Join(f.dir, name)
		d := &daemon{t: t, name: name, logPath: dir + ".log",
			args: append([]string{"agent", "--cluster", "a", "--name", name, "--server", f.srv(), "--data-dir", dir,
				"--runtimes", "builtin,exec", "--memory", memory}, agentTLSFlags(t, "a", name)...)}
		f.agents[name] = d
		f.order = append(f.order, d)
		d.start()
		f.waitAgentReady(name)
	}
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir()) // the agent finds no interpreter
	addAgent("agent-nopy", "1Gi")
	t.Setenv("PATH", path)
	addAgent("agent-py", "2Gi")

	f.apply(fmt.Sprintf(`apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: caps, tenant: public, namespace: default}
spec:
  functions:
    - name: py
      replicas: 2
      runtime: {exec: {command: [python3, %q]}}
      input: {cluster: a, topics: ["persistent://public/default/caps-in"]}
      output: {cluster: a, topic: "persistent://public/default/caps-out"}
    - name: big
      runtime: {builtin: identity}
      resources: {memory: 4Gi}
      input: {cluster: a, topics: ["persistent://public/default/caps-in2"]}
      output: {cluster: a, topic: "persistent://public/default/caps-out2"}
`, script))
	testkit.Eventually(t, readyTimeout, "py to run twice on agent-py", func() (bool, string) {
		as, err := f.assignments("caps")
		if err != nil {
			return false, err.Error()
		}
		for _, name := range []string{"py#0", "py#1"} {
			a := as[name]
			if a.GetSpec().GetAgent() != "agent-py" || a.GetStatus().GetState() != "Running" {
				return false, describeAssignments(as)
			}
		}
		return true, ""
	})
	want := "big#0  pending: no agent of cluster \"a\" can run it: 2 agents have at most 2Gi memory free < 4Gi requested (agent-nopy, agent-py)"
	testkit.Eventually(t, readyTimeout, "describe mesh to show why big is Pending", func() (bool, string) {
		out := mustCLI(t, f.srv(), "describe", "mesh", "caps")
		return strings.Contains(out, want), out
	})
}
