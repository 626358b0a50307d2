package federation

import (
	"fmt"
	"google.golang.org/protobuf/types/known/structpb"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func execFn(name string, replicas int32, command ...string) *meshfedv1.FunctionSpec {
	f := fn(name, "a", "a", replicas)
	f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: command}}}
	return f
}

func execConnector(name string, command ...any) *meshfedv1.FunctionSpec {
	f := fn(name, "a", "a", 1)
	cfg, err := structpb.NewStruct(map[string]any{"command": command})
	if err != nil {
		panic(err)
	}
	f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Connector{Connector: &meshfedv1.ConnectorRuntime{Kind: "source", Type: "exec", Config: cfg}}}
	return f
}

func wasmFn(name string, replicas int32) *meshfedv1.FunctionSpec {
	f := fn(name, "a", "a", replicas)
	f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: "sha256:00"}}}
	return f
}

func withResources(f *meshfedv1.FunctionSpec, cpu, memory string) *meshfedv1.FunctionSpec {
	f.Resources = &meshfedv1.Resources{Cpu: cpu, Memory: memory}
	return f
}

func withPlacement(f *meshfedv1.FunctionSpec, spread string, selector ...string) *meshfedv1.FunctionSpec {
	f.Placement = &meshfedv1.Placement{Spread: spread, NodeSelector: map[string]string{}}
	for i := 0; i+1 < len(selector); i += 2 {
		f.Placement.NodeSelector[selector[i]] = selector[i+1]
	}
	return f
}

// ag is a ready agent of cluster a with 10 slots, 4 CPUs, 4Gi and every
// runtime; opts adjust it.
func ag(name string, opts ...func(*Agent)) Agent {
	a := Agent{Name: name, Cluster: "a", Capacity: 10, Ready: true, Runtimes: []string{"builtin", "exec", "wasm"},
		CPUMillis: 4000, MemoryBytes: 4 << 30}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func runtimes(rs ...string) func(*Agent) { return func(a *Agent) { a.Runtimes = rs } }
func interps(is ...string) func(*Agent)  { return func(a *Agent) { a.Interpreters = is } }
func memory(b int64) func(*Agent)        { return func(a *Agent) { a.MemoryBytes = b } }
func slots(n int) func(*Agent)           { return func(a *Agent) { a.Capacity = n } }
func labelled(k, v string) func(*Agent) {
	return func(a *Agent) { a.Labels = map[string]string{k: v} }
}
func notReady(a *Agent) { a.Ready = false }

// TestPlacementFit: each case places one mesh on a set of agents and
// checks where every instance went ("" for Pending) and, for Pending ones,
// the reason.
func TestPlacementFit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fns    []*meshfedv1.FunctionSpec
		agents []Agent
		want   map[string]string // instance -> agent
		why    map[string]string // instance -> substring of its pending reason
	}{
		{name: "python only where python3 is",
			fns:    []*meshfedv1.FunctionSpec{execFn("py", 2, "python3", "main.py")},
			agents: []Agent{ag("a1"), ag("a2", interps("python3", "node")), ag("a3", interps("node"))},
			want:   map[string]string{"m.py.0": "a2", "m.py.1": "a2"}},
		{name: "an exec connector needs its command's interpreter",
			fns:    []*meshfedv1.FunctionSpec{execConnector("src", "python3", "source.py")},
			agents: []Agent{ag("a1", interps("node")), ag("a2", interps("python3"))},
			want:   map[string]string{"m.src.0": "a2"}},
		{name: "an exec connector needs no exec function runtime",
			fns:    []*meshfedv1.FunctionSpec{execConnector("src", "python3", "source.py")},
			agents: []Agent{ag("a1", runtimes("builtin"), interps("python3"))},
			want:   map[string]string{"m.src.0": "a1"}},
		{name: "interpreter by path",
			fns:    []*meshfedv1.FunctionSpec{execFn("js", 1, "/usr/bin/node", "main.js")},
			agents: []Agent{ag("a1", interps("python3")), ag("a2", interps("node"))},
			want:   map[string]string{"m.js.0": "a2"}},
		{name: "a plain binary needs only exec",
			fns:    []*meshfedv1.FunctionSpec{execFn("bin", 1, "./handler")},
			agents: []Agent{ag("a1", runtimes("builtin", "wasm")), ag("a2", runtimes("exec"))},
			want:   map[string]string{"m.bin.0": "a2"}},
		{name: "wasm needs the wasm runtime",
			fns:    []*meshfedv1.FunctionSpec{wasmFn("w", 1)},
			agents: []Agent{ag("a1", runtimes("builtin", "exec")), ag("a2", runtimes("wasm"))},
			want:   map[string]string{"m.w.0": "a2"}},
		{name: "an agent advertising nothing runs anything",
			fns:    []*meshfedv1.FunctionSpec{execFn("py", 1, "python3"), wasmFn("w", 1)},
			agents: []Agent{{Name: "old", Cluster: "a", Capacity: 5, Ready: true}},
			want:   map[string]string{"m.py.0": "old", "m.w.0": "old"}},
		{name: "nobody has python3",
			fns:    []*meshfedv1.FunctionSpec{execFn("py", 1, "python3")},
			agents: []Agent{ag("a1"), ag("a2"), ag("a3", runtimes("builtin")), ag("a4", notReady)},
			want:   map[string]string{"m.py.0": ""},
			why:    map[string]string{"m.py.0": `no agent of cluster "a" can run it: 2 agents lack python3 (a1, a2); agent a4 is not ready; agent a3 lacks the exec runtime`}},
		{name: "memory requests sum within capacity",
			fns:    []*meshfedv1.FunctionSpec{withResources(fn("f", "a", "a", 3), "", "1536Mi")},
			agents: []Agent{ag("a1", memory(2<<30)), ag("a2", memory(2<<30))},
			want:   map[string]string{"m.f.0": "a1", "m.f.1": "a2", "m.f.2": ""},
			why:    map[string]string{"m.f.2": "2 agents have at most 512Mi memory free < 1.5Gi requested (a1, a2)"}},
		{name: "more memory than any agent offers",
			fns:    []*meshfedv1.FunctionSpec{withResources(fn("big", "a", "a", 1), "", "8Gi")},
			agents: []Agent{ag("a1"), ag("a2", memory(256<<20)), ag("a3", interps("python3"), runtimes("exec"))},
			want:   map[string]string{"m.big.0": ""},
			why:    map[string]string{"m.big.0": "2 agents have at most 4Gi memory free < 8Gi requested (a1, a2); agent a3 lacks the builtin runtime"}},
		{name: "cpu requests",
			fns:    []*meshfedv1.FunctionSpec{withResources(fn("f", "a", "a", 5), "1", "")},
			agents: []Agent{ag("a1")},
			want:   map[string]string{"m.f.0": "a1", "m.f.1": "a1", "m.f.2": "a1", "m.f.3": "a1", "m.f.4": ""},
			why:    map[string]string{"m.f.4": "agent a1 has 0 CPU free < 1 requested"}},
		{name: "slots",
			fns:    []*meshfedv1.FunctionSpec{fn("f", "a", "a", 3)},
			agents: []Agent{ag("a1", slots(1)), ag("a2", slots(1))},
			want:   map[string]string{"m.f.0": "a1", "m.f.1": "a2", "m.f.2": ""},
			why:    map[string]string{"m.f.2": "2 agents have no free instance slot (a1, a2)"}},
		{name: "node selector",
			fns:    []*meshfedv1.FunctionSpec{withPlacement(fn("f", "a", "a", 2), "", "zone", "eu"), withPlacement(fn("g", "a", "a", 1), "", "zone", "us")},
			agents: []Agent{ag("a1", labelled("zone", "us")), ag("a2", labelled("zone", "eu")), ag("a3")},
			want:   map[string]string{"m.f.0": "a2", "m.f.1": "a2", "m.g.0": "a1"}},
		{name: "node selector matches nobody",
			fns:    []*meshfedv1.FunctionSpec{withPlacement(fn("f", "a", "a", 1), "", "gpu", "yes")},
			agents: []Agent{ag("a1"), ag("a2", labelled("gpu", "no"))},
			want:   map[string]string{"m.f.0": ""},
			why:    map[string]string{"m.f.0": "2 agents do not carry the label gpu=yes (placement.nodeSelector) (a1, a2)"}},
		{name: "replicas prefer distinct agents",
			fns:    []*meshfedv1.FunctionSpec{fn("f", "a", "a", 3)},
			agents: []Agent{ag("a1"), ag("a2"), ag("a3")},
			want:   map[string]string{"m.f.0": "a1", "m.f.1": "a2", "m.f.2": "a3"}},
		{name: "replicas share agents when too few",
			fns:    []*meshfedv1.FunctionSpec{fn("f", "a", "a", 3)},
			agents: []Agent{ag("a1"), ag("a2")},
			want:   map[string]string{"m.f.0": "a1", "m.f.1": "a2", "m.f.2": "a1"}},
		{name: "spread agent is strict",
			fns:    []*meshfedv1.FunctionSpec{withPlacement(fn("f", "a", "a", 3), SpreadAgent)},
			agents: []Agent{ag("a1"), ag("a2")},
			want:   map[string]string{"m.f.0": "a1", "m.f.1": "a2", "m.f.2": ""},
			why:    map[string]string{"m.f.2": "2 agents run an instance of the function already (placement.spread: agent) (a1, a2)"}},
		{name: "emptiest agent by its fullest resource",
			fns:    []*meshfedv1.FunctionSpec{withResources(fn("f", "a", "a", 1), "3", "64Mi"), withResources(fn("g", "a", "a", 1), "100m", "64Mi")},
			agents: []Agent{ag("a1"), ag("a2", slots(2), func(a *Agent) { a.CPUMillis = 16000 })},
			want:   map[string]string{"m.f.0": "a2", "m.g.0": "a1"}},
		{name: "many agents aggregate",
			fns:    []*meshfedv1.FunctionSpec{execFn("py", 1, "python3")},
			agents: []Agent{ag("a1"), ag("a2"), ag("a3"), ag("a4"), ag("a5")},
			want:   map[string]string{"m.py.0": ""},
			why:    map[string]string{"m.py.0": "5 agents lack python3 (a1, a2, a3, ...)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", tc.fns...)}, Agents: tc.agents, Clusters: healthy("a"), Now: t0}
			as := settle(t, in)
			got := map[string]string{}
			for _, a := range as {
				got[a.GetMetadata().GetName()] = a.GetSpec().GetAgent()
				if w := tc.why[a.GetMetadata().GetName()]; w != "" && !strings.Contains(a.GetStatus().GetPendingReason(), w) {
					t.Errorf("%s: pending reason %q, want it to contain %q", a.GetMetadata().GetName(), a.GetStatus().GetPendingReason(), w)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("placement %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPlacementMovesOffIncapableAgent: an agent that re-registers without
// an interpreter loses the instances that need it.
func TestPlacementMovesOffIncapableAgent(t *testing.T) {
	in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", execFn("py", 1, "python3"))},
		Agents: []Agent{ag("a1", interps("python3")), ag("a2", interps("python3"))}, Clusters: healthy("a"), Now: t0}
	in.Assignments = settle(t, in)
	if got := where(in.Assignments)["m.py.0"]; got != "a1@a" {
		t.Fatalf("placed on %s, want a1", got)
	}
	in.Agents[0].Interpreters = nil
	if got := where(settle(t, in))["m.py.0"]; got != "a2@a" {
		t.Fatalf("after a1 lost python3: on %s, want a2", got)
	}
}

// TestPlacementNeverOverfills is a property test over seeded random
// federations: whatever the agents, functions and order of passes, no
// agent holds more instances, CPU or memory than it offers, and no
// instance sits on an agent lacking its runtime, interpreter or labels.
func TestPlacementNeverOverfills(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		in := randomInput(r)
		as := settle(t, in)
		// Half the time, change the fleet and settle again.
		if r.IntN(2) == 0 {
			in.Assignments = as
			for i := range in.Agents {
				if r.IntN(4) == 0 {
					in.Agents[i].Ready = !in.Agents[i].Ready
				}
			}
			as = settle(t, in)
		}
		if err := checkPlan(in.Agents, as); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

func randomInput(r *rand.Rand) Input {
	in := Input{Clusters: healthy("a", "b"), Now: t0}
	pick := func(xs ...string) []string {
		var out []string
		for _, x := range xs {
			if r.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	for i := range 1 + r.IntN(6) {
		a := Agent{Name: fmt.Sprintf("ag%d", i), Cluster: []string{"a", "b"}[r.IntN(2)], Capacity: 1 + r.IntN(6), Ready: r.IntN(5) > 0,
			Runtimes: pick("builtin", "exec", "wasm"), Interpreters: pick("python3", "node"),
			CPUMillis: int64(r.IntN(4)) * 500, MemoryBytes: int64(r.IntN(4)) * 256 << 20}
		if r.IntN(2) == 0 {
			a.Labels = map[string]string{"zone": []string{"x", "y"}[r.IntN(2)]}
		}
		in.Agents = append(in.Agents, a)
	}
	for m := range 1 + r.IntN(4) {
		var fns []*meshfedv1.FunctionSpec
		for i := range 1 + r.IntN(3) {
			name, reps := fmt.Sprintf("f%d", i), int32(1+r.IntN(4))
			var f *meshfedv1.FunctionSpec
			switch r.IntN(4) {
			case 0:
				f = execFn(name, reps, []string{"python3", "node", "./bin"}[r.IntN(3)])
			case 1:
				f = wasmFn(name, reps)
			default:
				f = fn(name, "a", "a", reps)
			}
			f.Input.Cluster = []string{"a", "b"}[r.IntN(2)]
			if r.IntN(2) == 0 {
				f = withResources(f, []string{"", "250m", "1"}[r.IntN(3)], []string{"", "128Mi", "300Mi"}[r.IntN(3)])
			}
			if r.IntN(3) == 0 {
				f = withPlacement(f, []string{"", SpreadAgent}[r.IntN(2)], pick("zone", "x")...)
			}
			fns = append(fns, f)
		}
		in.Meshes = append(in.Meshes, mesh(fmt.Sprintf("m%d", m), fns...))
	}
	return in
}

// checkPlan reports an agent over its capacity or an instance on an
// agent that cannot run it.
func checkPlan(agents []Agent, as []*meshfedv1.Assignment) error {
	fl := newFleet(agents, nil)
	for _, a := range as {
		name := a.GetSpec().GetAgent()
		if name == "" {
			continue
		}
		st := fl.byName[name]
		if st == nil {
			return fmt.Errorf("%s on unknown agent %s", a.GetMetadata().GetName(), name)
		}
		d := DemandOf(a.GetSpec().GetFunctionSpec())
		if !st.Ready {
			return fmt.Errorf("%s on agent %s, which is not ready", a.GetMetadata().GetName(), name)
		}
		if r := st.capable(d); r != nil {
			return fmt.Errorf("%s on agent %s, which cannot run it (%+v)", a.GetMetadata().GetName(), name, *r)
		}
		st.add(d, 1)
		if st.n > st.slots() || st.CPUMillis > 0 && st.cpu > st.CPUMillis || st.MemoryBytes > 0 && st.mem > st.MemoryBytes {
			return fmt.Errorf("agent %s over capacity: %d/%d instances, %d/%d millicores, %d/%d bytes",
				name, st.n, st.slots(), st.cpu, st.CPUMillis, st.mem, st.MemoryBytes)
		}
		if slices.Contains(a.GetSpec().GetAvoidAgents(), name) {
			return fmt.Errorf("%s on agent %s, which it avoids", a.GetMetadata().GetName(), name)
		}
	}
	return nil
}
