package controlplane

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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
	mustApply(t, objs, decodeAll(t, `
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a}
spec: {serviceURL: "pulsar://127.0.0.1:6650"}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: t}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: ns, tenant: t}
`)...)
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	agents := meshfedv1.NewAgentServiceClient(conn)
	ctx := testCtx(t)
	regs := []*meshfedv1.RegisterRequest{
		{Name: "plain", Cluster: "a", Capacity: 10, Runtimes: []string{"builtin", "exec"}, CpuMillis: 2000, MemoryBytes: 1 << 30, Labels: map[string]string{"zone": "x"}},
		{Name: "py", Cluster: "a", Capacity: 10, Runtimes: []string{"builtin", "exec"}, Interpreters: []string{"python3"}, CpuMillis: 2000, MemoryBytes: 2 << 30, Labels: map[string]string{"zone": "y"}},
	}
	for _, r := range regs {
		if _, err := agents.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
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
