package controlplane

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

// TestPlacementHonoursCapabilities: agents register their runtimes,
// interpreters, CPU, memory and labels; the scheduler stores them on the
// Agent object, places a python function only on the agent with python3,
// honours a nodeSelector, and leaves a function asking for more memory
// than any agent offers Pending with every agent's refusal in the reason.
func TestPlacementHonoursCapabilities(t *testing.T) {
	srv := TestServer(t, func(c *Config) { c.AgentLease, c.AgentTTL = time.Hour, 2*time.Hour })
	WaitForLeader(t, srv)
	objs, _ := TestClient(t, srv.GRPCAddr())
	mustApply(t, objs, testkit.Federation("a", "t", "ns")...)
	TestAgents(t, srv.GRPCAddr(),
		&meshfedv1.RegisterRequest{Name: "plain", Cluster: "a", Capacity: 10, Runtimes: []string{"builtin", "exec"}, CpuMillis: 2000, MemoryBytes: 1 << 30, Labels: map[string]string{"zone": "x"}},
		&meshfedv1.RegisterRequest{Name: "py", Cluster: "a", Capacity: 10, Runtimes: []string{"builtin", "exec"}, Interpreters: []string{"python3"}, CpuMillis: 2000, MemoryBytes: 2 << 30, Labels: map[string]string{"zone": "y"}})
	o, _, err := srv.State().Get("Agent", "", "", "py")
	if err != nil {
		t.Fatal(err)
	}
	if sp := o.GetAgent().GetSpec(); !slices.Equal(sp.GetInterpreters(), []string{"python3"}) || sp.GetMemoryBytes() != 2<<30 || sp.GetCpuMillis() != 2000 || sp.GetLabels()["zone"] != "y" {
		t.Fatalf("stored agent spec %v lacks the registered capabilities", sp)
	}
	mustApply(t, objs, decodeAll(t, `
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: m, tenant: t, namespace: ns}
spec:
  functions:
    - name: py
      replicas: 2
      runtime: {exec: {command: [python3, f.py]}}
      input: {cluster: a, topics: ["persistent://t/ns/in"]}
    - name: zoned
      runtime: {builtin: identity}
      placement: {nodeSelector: {zone: x}}
      input: {cluster: a, topics: ["persistent://t/ns/in"]}
    - name: big
      runtime: {builtin: identity}
      resources: {memory: 4Gi}
      input: {cluster: a, topics: ["persistent://t/ns/in"]}
`)...)
	WaitFor(t, 10*time.Second, func() error {
		got := map[string]*meshfedv1.Assignment{}
		as, _, err := srv.State().List(stateFilter("Assignment"))
		if err != nil {
			return err
		}
		for _, o := range as {
			got[o.GetAssignment().GetMetadata().GetName()] = o.GetAssignment()
		}
		for name, want := range map[string]string{"m.py.0": "py", "m.py.1": "py", "m.zoned.0": "plain", "m.big.0": ""} {
			if a := got[name]; a == nil || a.GetSpec().GetAgent() != want {
				return fmt.Errorf("%s on %q, want %q", name, a.GetSpec().GetAgent(), want)
			}
		}
		why := got["m.big.0"].GetStatus().GetPendingReason()
		if !strings.Contains(why, "2 agents have at most 2Gi memory free < 4Gi requested (plain, py)") {
			return fmt.Errorf("pending reason %q does not name the refusals", why)
		}
		m, _, err := srv.State().Get("FunctionMesh", "t", "ns", "m")
		if err != nil {
			return err
		}
		for _, c := range m.GetFunctionMesh().GetStatus().GetConditions() {
			if c.GetType() == federation.ConditionDegraded && !strings.Contains(c.GetMessage(), "4Gi requested") {
				return fmt.Errorf("mesh Degraded message %q lacks the reason", c.GetMessage())
			}
		}
		return nil
	})
}

// TestSchedulerMovesAnInstanceThatKeepsRestarting: an agent's report of
// restarts past --move-after-restarts moves the instance to the other
// agent, with the first one avoided and the reason on the assignment.
func TestSchedulerMovesAnInstanceThatKeepsRestarting(t *testing.T) {
	srv := TestServer(t, func(c *Config) { c.AgentLease, c.AgentTTL, c.MoveAfterRestarts = time.Hour, 2*time.Hour, 3 })
	WaitForLeader(t, srv)
	objs, _ := TestClient(t, srv.GRPCAddr())
	mustApply(t, objs, identityMesh(0, false)...)
	agents := TestAgents(t, srv.GRPCAddr(), &meshfedv1.RegisterRequest{Name: "a1", Cluster: "a", Capacity: 10})
	ctx := testCtx(t)
	asg := func() *meshfedv1.Assignment {
		o, _, err := srv.State().Get("Assignment", "t", "ns", "m.f.0")
		if err != nil {
			return nil
		}
		return o.GetAssignment()
	}
	WaitFor(t, 10*time.Second, func() error {
		if a := asg(); a.GetSpec().GetAgent() != "a1" {
			return fmt.Errorf("m.f.0 on %q, want a1", a.GetSpec().GetAgent())
		}
		return nil
	})
	if _, err := agents.Register(ctx, &meshfedv1.RegisterRequest{Name: "a2", Cluster: "a", Capacity: 10}); err != nil {
		t.Fatal(err)
	}
	first := asg()
	report := func(restarts uint32) {
		t.Helper()
		if _, err := agents.ReportStatus(ctx, &meshfedv1.ReportStatusRequest{Agent: "a1", Instances: []*meshfedv1.InstanceReport{{
			Tenant: "t", Namespace: "ns", Name: "m.f.0", Epoch: first.GetSpec().GetEpoch(),
			Status: &meshfedv1.InstanceStatus{State: federation.StateStarting, Restarts: restarts, LastError: "exit status 1"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	report(2)
	WaitFor(t, 10*time.Second, func() error {
		if got := asg().GetStatus().GetRestarts(); got != 2 {
			return fmt.Errorf("stored restarts %d, want 2", got)
		}
		return nil
	})
	if a := asg(); a.GetSpec().GetAgent() != "a1" {
		t.Fatalf("moved below the threshold: %v", a.GetSpec())
	}
	report(3)
	WaitFor(t, 10*time.Second, func() error {
		a := asg()
		if a.GetSpec().GetAgent() != "a2" || !slices.Equal(a.GetSpec().GetAvoidAgents(), []string{"a1"}) ||
			a.GetSpec().GetMovedReason() != "restarted 3 times on agent a1 (threshold 3)" {
			return fmt.Errorf("assignment spec %v: want it on a2, avoiding a1, with the reason", a.GetSpec())
		}
		return nil
	})
}
