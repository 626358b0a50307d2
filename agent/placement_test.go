package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/builtin"
	execrt "github.com/meshfed/meshfed/agent/runtime/exec"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// TestPythonFunctionLandsOnlyOnAgentsWithPython: two real agents of one
// cluster, one started without python3 on its PATH; a python function's
// instances run only on the other, and a function requesting more memory
// than either offers stays Pending with both agents' refusals.
func TestPythonFunctionLandsOnlyOnAgentsWithPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	script, err := filepath.Abs("../examples/exec/identity.py")
	if err != nil {
		t.Fatal(err)
	}
	f := newFederation(t, "a")
	rts := func() map[string]runtime.Runtime {
		return map[string]runtime.Runtime{"builtin": builtin.Runtime{}, "exec": execrt.New(quiet(), execrt.Options{})}
	}
	registered := func(name string) {
		t.Helper()
		controlplane.WaitFor(t, 10*time.Second, func() error {
			_, _, err := f.srv.State().Get("Agent", "", "", name)
			return err
		})
	}
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir()) // no interpreter found while it registers
	f.startAgentWith(t, "agent-nopy", "a", t.TempDir(), func(c *Config) { c.Runtimes, c.MemoryBytes = rts(), 1<<30 })
	registered("agent-nopy")
	t.Setenv("PATH", path)
	f.startAgentWith(t, "agent-py", "a", t.TempDir(), func(c *Config) { c.Runtimes, c.MemoryBytes = rts(), 2<<30 })
	registered("agent-py")

	py := builtinFn("py", "", "a", "persistent://public/default/in", "a", "persistent://public/default/out", "atleast_once")
	py.Replicas = 2
	py.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"python3", script}}}}
	big := builtinFn("big", "identity", "a", "persistent://public/default/in2", "a", "persistent://public/default/out2", "atleast_once")
	big.Resources = &meshfedv1.Resources{Memory: "4Gi"}
	f.apply(t, meshObj("m", py, big))
	controlplane.WaitFor(t, 30*time.Second, func() error {
		for _, name := range []string{"m.py.0", "m.py.1"} {
			o, _, err := f.srv.State().Get("Assignment", "public", "default", name)
			if err != nil {
				return err
			}
			a := o.GetAssignment()
			if a.GetSpec().GetAgent() != "agent-py" || a.GetStatus().GetState() != "Running" {
				return fmt.Errorf("%s on %q, %s: want Running on agent-py", name, a.GetSpec().GetAgent(), a.GetStatus().GetState())
			}
		}
		o, _, err := f.srv.State().Get("Assignment", "public", "default", "m.big.0")
		if err != nil {
			return err
		}
		why := o.GetAssignment().GetStatus().GetPendingReason()
		if o.GetAssignment().GetSpec().GetAgent() != "" || !strings.Contains(why, "2 agents have at most 2Gi memory free < 4Gi requested (agent-nopy, agent-py)") {
			return fmt.Errorf("m.big.0 on %q, pending reason %q", o.GetAssignment().GetSpec().GetAgent(), why)
		}
		return nil
	})
	o, _, err := f.srv.State().Get("Agent", "", "", "agent-nopy")
	if err != nil {
		t.Fatal(err)
	}
	if sp := o.GetAgent().GetSpec(); len(sp.GetInterpreters()) != 0 || sp.GetMemoryBytes() != 1<<30 {
		t.Fatalf("agent-nopy advertised %v", sp)
	}
}
