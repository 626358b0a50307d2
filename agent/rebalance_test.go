package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane"
	"github.com/meshfed/meshfed/objects"
)

// TestRebalanceStartsTheReplacementBeforeStoppingTheOriginal: when a
// second agent joins the cluster, the scheduler moves one of the first
// agent's two instances to it, and the first agent keeps running it until
// the replacement reports Running (make-before-break).
func TestRebalanceStartsTheReplacementBeforeStoppingTheOriginal(t *testing.T) {
	f := newFederationWith(t, func(c *controlplane.Config) { c.RebalanceMoves = 10 }, "a")
	start := func(name string) *Agent {
		a, _ := runAgent(t, Config{Name: name, Cluster: "a", Servers: []string{f.srv.GRPCAddr()}, DataDir: t.TempDir(),
			ReportInterval: 100 * time.Millisecond, Logger: quiet()})
		return a
	}
	running := func(a *Agent, key string) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		inst := a.running[key]
		return inst != nil && inst.status().GetState() == "Running"
	}
	a1 := start("agent-a1")
	f.apply(t, meshObj("m",
		builtinFn("f", "identity", "a", "persistent://public/default/in", "a", "persistent://public/default/out", "atleast_once"),
		builtinFn("g", "identity", "a", "persistent://public/default/in2", "a", "persistent://public/default/out2", "atleast_once")))
	keys := []string{objects.Key("Assignment", "public", "default", "m.f.0"), objects.Key("Assignment", "public", "default", "m.g.0")}
	controlplane.WaitFor(t, 20*time.Second, func() error {
		for _, k := range keys {
			if !running(a1, k) {
				return fmt.Errorf("%s not running on agent-a1", k)
			}
		}
		return nil
	})
	a2 := start("agent-a2")
	// Poll tightly: the overlap lasts from the replacement running to the
	// original agent seeing its Running report.
	overlap, moved := false, false
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !moved {
		select {
		case <-deadline:
			t.Fatal("no instance moved to agent-a2 within 30s")
		case <-tick.C:
		}
		for _, k := range keys {
			on1, on2 := running(a1, k), running(a2, k)
			overlap = overlap || on1 && on2
			moved = moved || on2 && !on1
		}
	}
	if !overlap {
		t.Fatal("the original stopped before its replacement ran (break before make)")
	}
	asg, _, err := f.srv.State().Get("Assignment", "public", "default", "m.f.0")
	if err != nil {
		t.Fatal(err)
	}
	if sp := asg.GetAssignment().GetSpec(); sp.GetAgent() != "agent-a2" || sp.GetHandover() != "agent-a1" {
		t.Fatalf("moved assignment %v: want m.f.0 (first by name) on agent-a2, handed over from agent-a1", sp)
	}
}
