package federation

import (
	"fmt"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// withRestarts returns as with the named instance's restart count set.
func withRestarts(as []*meshfedv1.Assignment, name string, n uint32) []*meshfedv1.Assignment {
	out := make([]*meshfedv1.Assignment, len(as))
	for i, a := range as {
		if a.GetMetadata().GetName() == name {
			a = proto.CloneOf(a)
			a.Status.Restarts = n
		}
		out[i] = a
	}
	return out
}

func TestRestartMove(t *testing.T) {
	for _, tc := range []struct {
		name      string
		agents    []Agent
		restarts  uint32
		threshold int
		want      string // agent after the pass
		reason    string
	}{
		{name: "below the threshold stays", agents: []Agent{ag("a1"), ag("a2", slots(100))}, restarts: 4, threshold: 5, want: "a1"},
		{name: "at the threshold moves", agents: []Agent{ag("a1"), ag("a2", slots(100))}, restarts: 5, threshold: 5, want: "a2",
			reason: "restarted 5 times on agent a1 (threshold 5)"},
		{name: "nowhere to go stays", agents: []Agent{ag("a1"), ag("a2", runtimes("exec"))}, restarts: 9, threshold: 5, want: "a1"},
		{name: "threshold off", agents: []Agent{ag("a1"), ag("a2", slots(100))}, restarts: 100, threshold: 0, want: "a1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", fn("f", "a", "a", 1))}, Agents: tc.agents[:1], Clusters: healthy("a"), Now: t0}
			in.Assignments = withRestarts(settle(t, in), "m.f.0", tc.restarts)
			in.Agents, in.MoveAfterRestarts = tc.agents, tc.threshold
			p := PlanAssignments(in)
			got := "a1"
			for _, a := range p.Puts {
				got = a.GetSpec().GetAgent()
				if a.GetSpec().GetMovedReason() != tc.reason || a.GetSpec().GetAvoidAgents()[0] != "a1" || a.GetSpec().GetEpoch() != 2 {
					t.Errorf("moved assignment spec %v: want reason %q, a1 avoided, epoch 2", a.GetSpec(), tc.reason)
				}
				if st := MeshStatus(in.Meshes[0], p.Puts, nil, t0); st.GetFunctions()[0].GetInstances()[0].GetMovedReason() != tc.reason {
					t.Errorf("mesh status does not carry the moved reason: %v", st)
				}
			}
			if got != tc.want || len(p.Puts) > 1 {
				t.Fatalf("instance on %s after the pass (plan %v), want %s", got, p.Puts, tc.want)
			}
			if got == "a2" {
				// Failing again on a2 with a1 avoided: it stays.
				in.Assignments = withRestarts(settle(t, in), "m.f.0", tc.restarts)
				if p := PlanAssignments(in); !p.Empty() {
					t.Fatalf("moved back to an avoided agent: %v", p.Puts)
				}
			}
		})
	}
}

func TestRebalance(t *testing.T) {
	counts := func(as []*meshfedv1.Assignment) string {
		c := map[string]int{}
		for _, a := range as {
			c[a.GetSpec().GetAgent()]++
		}
		return fmt.Sprint(c)
	}
	many := func(n int) []*meshfedv1.FunctionSpec {
		var fns []*meshfedv1.FunctionSpec
		for i := range n {
			fns = append(fns, fn(fmt.Sprintf("f%02d", i), "a", "a", 1))
		}
		return fns
	}
	for _, tc := range []struct {
		name    string
		fns     []*meshfedv1.FunctionSpec
		joiners []Agent
		budget  int
		first   int    // moves in the first pass
		final   string // instances per agent once settled
	}{
		{name: "a joining agent takes half, bounded per pass", fns: many(10), joiners: []Agent{ag("a2", slots(100))}, budget: 3, first: 3,
			final: "map[a1:5 a2:5]"},
		{name: "two joiners", fns: many(9), joiners: []Agent{ag("a2", slots(100)), ag("a3", slots(100))}, budget: 10, first: 6, final: "map[a1:3 a2:3 a3:3]"},
		{name: "one instance does not move", fns: many(1), joiners: []Agent{ag("a2", slots(100))}, budget: 10, first: 0, final: "map[a1:1]"},
		{name: "budget zero: no rebalancing", fns: many(4), joiners: []Agent{ag("a2", slots(100))}, budget: 0, first: 0, final: "map[a1:4]"},
		{name: "replicas of one function even out", fns: []*meshfedv1.FunctionSpec{fn("f", "a", "a", 4)},
			joiners: []Agent{ag("a2", slots(100))}, budget: 10, first: 2, final: "map[a1:2 a2:2]"},
		{name: "spread agent: the receiver must hold none", fns: []*meshfedv1.FunctionSpec{withPlacement(fn("f", "a", "a", 1), SpreadAgent), withPlacement(fn("g", "a", "a", 1), SpreadAgent), fn("h", "a", "a", 2)},
			joiners: []Agent{ag("a2", slots(100))}, budget: 10, first: 2, final: "map[a1:2 a2:2]"},
		{name: "only onto agents that can run it", fns: []*meshfedv1.FunctionSpec{execFn("py", 1, "python3"), execFn("py2", 1, "python3"), fn("b", "a", "a", 1), fn("c", "a", "a", 1)},
			joiners: []Agent{ag("a2", slots(100))}, budget: 10, first: 2, final: "map[a1:2 a2:2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", tc.fns...)}, Agents: []Agent{ag("a1", interps("python3"), slots(100))},
				Clusters: healthy("a"), Now: t0, RebalanceMoves: tc.budget}
			in.Assignments = settle(t, in)
			in.Agents = append(in.Agents, tc.joiners...)
			p := PlanAssignments(in)
			if len(p.Puts) != tc.first || len(p.Deletes) != 0 {
				t.Fatalf("first pass moved %d (%v), want %d", len(p.Puts), p.Puts, tc.first)
			}
			for _, a := range p.Puts {
				if a.GetSpec().GetHandover() != "a1" || !strings.HasPrefix(a.GetSpec().GetMovedReason(), "rebalanced from agent a1") {
					t.Fatalf("move %v: want a handover from a1 and a reason", a.GetSpec())
				}
			}
			// While a moved instance is not Running, the cluster waits.
			if len(p.Puts) > 0 {
				in2 := in
				in2.Assignments = append([]*meshfedv1.Assignment(nil), in.Assignments...)
				for i, a := range in2.Assignments {
					if a.GetMetadata().GetName() == p.Puts[0].GetMetadata().GetName() {
						in2.Assignments[i] = p.Puts[0]
					}
				}
				if p2 := PlanAssignments(in2); !p2.Empty() {
					t.Fatalf("rebalanced again while a move is in flight: %v", p2.Puts)
				}
			}
			if got := counts(settle(t, in)); got != tc.final {
				t.Fatalf("settled at %s, want %s", got, tc.final)
			}
		})
	}
}
