package federation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fn(name, in, out string, replicas int32, failover ...string) *meshfedv1.FunctionSpec {
	f := &meshfedv1.FunctionSpec{Name: name, Replicas: replicas,
		Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "identity"}},
		Input:   &meshfedv1.FunctionInput{Cluster: in, Topics: []string{"in"}},
		Output:  &meshfedv1.FunctionOutput{Cluster: out, Topic: "out"}}
	if len(failover) > 0 {
		f.Failover = &meshfedv1.Failover{Clusters: failover}
	}
	return f
}

func mesh(name string, fns ...*meshfedv1.FunctionSpec) *meshfedv1.FunctionMesh {
	return &meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: name, Tenant: "t", Namespace: "n", Generation: 1},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: fns}}
}

func healthy(names ...string) map[string]ClusterView {
	m := map[string]ClusterView{}
	for _, n := range names {
		m[n] = ClusterView{Health: Healthy, Since: t0.Add(-time.Hour)}
	}
	return m
}

// settle applies plans until nothing changes (marking placed instances
// Running), as the scheduler's loop does, and returns the assignments.
func settle(t *testing.T, in Input) []*meshfedv1.Assignment {
	t.Helper()
	for round := 0; round < 50; round++ {
		for i, a := range in.Assignments { // agents start what they were given
			if a.GetSpec().GetAgent() != "" && a.GetStatus().GetState() != StateRunning {
				a = proto.Clone(a).(*meshfedv1.Assignment)
				a.Status.State = StateRunning
				in.Assignments[i] = a
			}
		}
		p := PlanAssignments(in)
		if p.Empty() {
			return in.Assignments
		}
		byKey := map[key]*meshfedv1.Assignment{}
		for _, a := range in.Assignments {
			byKey[keyOf(a)] = a
		}
		for _, a := range p.Deletes {
			delete(byKey, keyOf(a))
		}
		for _, a := range p.Puts {
			a = proto.Clone(a).(*meshfedv1.Assignment)
			if a.GetSpec().GetAgent() != "" {
				a.Status.State = StateRunning
			}
			byKey[keyOf(a)] = a
		}
		in.Assignments = nil
		for _, a := range byKey {
			in.Assignments = append(in.Assignments, a)
		}
	}
	t.Fatal("placement did not converge in 50 rounds")
	return nil
}

func where(as []*meshfedv1.Assignment) map[string]string {
	out := map[string]string{}
	for _, a := range as {
		out[a.GetMetadata().GetName()] = a.GetSpec().GetAgent() + "@" + a.GetSpec().GetCluster()
	}
	return out
}

func TestPlacementSpreadsAndRespectsCapacity(t *testing.T) {
	in := Input{
		Meshes:   []*meshfedv1.FunctionMesh{mesh("m", fn("f", "a", "b", 5))},
		Agents:   []Agent{{Name: "a1", Cluster: "a", Capacity: 2, Ready: true}, {Name: "a2", Cluster: "a", Capacity: 2, Ready: true}, {Name: "b1", Cluster: "b", Capacity: 9, Ready: true}},
		Clusters: healthy("a", "b"), Now: t0,
	}
	as := settle(t, in)
	count := map[string]int{}
	unplaced := 0
	for _, a := range as {
		if a.GetSpec().GetAgent() == "" {
			unplaced++
			if a.GetStatus().GetLastError() == "" {
				t.Error("unplaced instance without a reason")
			}
		}
		count[a.GetSpec().GetAgent()]++
	}
	if count["a1"] != 2 || count["a2"] != 2 || unplaced != 1 || count["b1"] != 0 {
		t.Fatalf("placement %v (unplaced %d): want 2+2 in cluster a and one unplaced", where(as), unplaced)
	}
	st := MeshStatus(in.Meshes[0], as, nil, t0)
	if cond(st, ConditionDegraded) != "True" || cond(st, ConditionReady) != "False" {
		t.Fatalf("status %v", st.GetConditions())
	}
}

func cond(st *meshfedv1.FunctionMeshStatus, typ string) string {
	for _, c := range st.GetConditions() {
		if c.GetType() == typ {
			return c.GetStatus()
		}
	}
	return ""
}

func TestPlanIsStableAndDeterministic(t *testing.T) {
	in := Input{
		Meshes:   []*meshfedv1.FunctionMesh{mesh("m", fn("f", "a", "b", 3), fn("g", "b", "b", 2))},
		Agents:   []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}, {Name: "a2", Cluster: "a", Capacity: 10, Ready: true}, {Name: "b1", Cluster: "b", Capacity: 10, Ready: true}},
		Clusters: healthy("a", "b"), Now: t0,
	}
	as := settle(t, in)
	in.Assignments = as
	if p := PlanAssignments(in); !p.Empty() {
		t.Fatalf("settled state is not stable: %d puts %d deletes", len(p.Puts), len(p.Deletes))
	}
	// A new agent does not steal running instances.
	in.Agents = append(in.Agents, Agent{Name: "a3", Cluster: "a", Capacity: 10, Ready: true})
	if p := PlanAssignments(in); !p.Empty() {
		t.Fatalf("a new agent moved work: %v", p.Puts)
	}
	// The same input gives the same plan.
	in.Assignments = nil
	p1, p2 := PlanAssignments(in), PlanAssignments(in)
	if len(p1.Puts) != len(p2.Puts) {
		t.Fatal("plans differ")
	}
	for i := range p1.Puts {
		if !proto.Equal(p1.Puts[i], p2.Puts[i]) {
			t.Fatalf("plans differ at %d", i)
		}
	}
}

func TestAgentLossMovesOnlyItsInstancesWithNewEpoch(t *testing.T) {
	in := Input{
		Meshes:   []*meshfedv1.FunctionMesh{mesh("m", fn("f", "a", "b", 4))},
		Agents:   []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}, {Name: "a2", Cluster: "a", Capacity: 10, Ready: true}},
		Clusters: healthy("a", "b"), Now: t0,
	}
	as := settle(t, in)
	before := where(as)
	epochs := map[string]uint64{}
	for _, a := range as {
		epochs[a.GetMetadata().GetName()] = a.GetSpec().GetEpoch()
	}
	in.Assignments = as
	in.Agents[0].Ready = false
	after := settle(t, in)
	for _, a := range after {
		n := a.GetMetadata().GetName()
		switch {
		case before[n] == "a1@a":
			if a.GetSpec().GetAgent() != "a2" || a.GetSpec().GetEpoch() != epochs[n]+1 {
				t.Errorf("%s: %s epoch %d, want a2 with epoch %d", n, a.GetSpec().GetAgent(), a.GetSpec().GetEpoch(), epochs[n]+1)
			}
		case a.GetSpec().GetEpoch() != epochs[n]:
			t.Errorf("%s on a healthy agent was moved", n)
		}
	}
}

func TestFailoverAndAutomaticFailbackAfterHoldDown(t *testing.T) {
	m := mesh("m", fn("split", "a", "b", 2, "c"))
	agents := []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}, {Name: "b1", Cluster: "b", Capacity: 10, Ready: true}, {Name: "c1", Cluster: "c", Capacity: 10, Ready: true}}
	in := Input{Meshes: []*meshfedv1.FunctionMesh{m}, Agents: agents, Clusters: healthy("a", "b", "c"), HoldDown: 30 * time.Second, Now: t0}
	in.Assignments = settle(t, in)
	// Cluster a goes down: split runs in c, reading c's copy of the input, writing to b.
	in.Clusters["a"] = ClusterView{Health: Down, Since: t0, LastDown: t0}
	in.Agents = []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: false}, agents[1], agents[2]}
	in.Assignments = settle(t, in)
	for _, a := range in.Assignments {
		s := a.GetSpec()
		if s.GetAgent() != "c1" || s.GetCluster() != "c" || s.GetFunctionSpec().GetInput().GetCluster() != "c" || s.GetFunctionSpec().GetOutput().GetCluster() != "b" {
			t.Fatalf("after failover: %v", s)
		}
	}
	if st := MeshStatus(m, in.Assignments, nil, t0); cond(st, ConditionFailedOver) != "True" || cond(st, ConditionReady) != "True" {
		t.Fatalf("status after failover: %v", st.GetConditions())
	}
	// a recovers: nothing moves before the hold-down...
	in.Clusters["a"] = ClusterView{Health: Healthy, Since: t0.Add(time.Minute), LastDown: t0}
	in.Agents = agents
	in.Now = t0.Add(time.Minute + 10*time.Second)
	if p := PlanAssignments(in); !p.Empty() {
		t.Fatalf("failed back before the hold-down: %v", where(p.Puts))
	}
	// ...and everything returns after it.
	in.Now = t0.Add(time.Minute + 31*time.Second)
	in.Assignments = settle(t, in)
	for _, a := range in.Assignments {
		if a.GetSpec().GetCluster() != "a" || a.GetSpec().GetFunctionSpec().GetInput().GetCluster() != "a" {
			t.Fatalf("after failback: %v", a.GetSpec())
		}
	}
}

func TestManualFailbackWaitsForRequest(t *testing.T) {
	f := fn("split", "a", "b", 1, "c")
	f.Failover.Failback = "manual"
	m := mesh("m", f)
	agents := []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}, {Name: "c1", Cluster: "c", Capacity: 10, Ready: true}}
	in := Input{Meshes: []*meshfedv1.FunctionMesh{m}, Agents: agents, Clusters: healthy("a", "b", "c"), HoldDown: time.Second, Now: t0}
	in.Assignments = settle(t, in)
	in.Clusters["a"] = ClusterView{Health: Down, Since: t0, LastDown: t0}
	in.Assignments = settle(t, in)
	in.Clusters["a"] = ClusterView{Health: Healthy, Since: t0.Add(time.Minute), LastDown: t0}
	in.Now = t0.Add(time.Hour)
	if p := PlanAssignments(in); !p.Empty() {
		t.Fatal("manual failback happened without a request")
	}
	// A request older than the outage does not count; a newer one does.
	m.Metadata.Labels = map[string]string{FailbackLabel: fmt.Sprint(t0.Add(-time.Minute).Unix())}
	if p := PlanAssignments(in); !p.Empty() {
		t.Fatal("a stale failback request was honoured")
	}
	m.Metadata.Labels[FailbackLabel] = fmt.Sprint(t0.Add(2 * time.Minute).Unix())
	in.Assignments = settle(t, in)
	if got := in.Assignments[0].GetSpec().GetCluster(); got != "a" {
		t.Fatalf("after manual failback: runs in %s", got)
	}
}

func TestNoUsableFallbackLeavesMeshDegradedNotDeleted(t *testing.T) {
	m := mesh("m", fn("f", "a", "a", 2, "c"))
	in := Input{Meshes: []*meshfedv1.FunctionMesh{m}, Agents: []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}},
		Clusters: healthy("a", "c"), Now: t0}
	in.Assignments = settle(t, in)
	in.Clusters["a"] = ClusterView{Health: Down, Since: t0, LastDown: t0}
	in.Clusters["c"] = ClusterView{Health: Cordoned, Since: t0, LastDown: t0}
	in.Assignments = settle(t, in)
	if len(in.Assignments) != 2 {
		t.Fatalf("%d assignments, want 2 kept", len(in.Assignments))
	}
	st := MeshStatus(m, in.Assignments, nil, t0)
	if cond(st, ConditionDegraded) != "True" {
		t.Fatalf("want Degraded, got %v", st.GetConditions())
	}
	for _, c := range st.GetConditions() {
		if c.GetType() == ConditionDegraded && !contains(c.GetMessage(), `home cluster "a" is Down and no failover cluster is usable`) {
			t.Fatalf("degraded message %q does not say why", c.GetMessage())
		}
	}
	// The cluster returns: instances resume there.
	in.Clusters["a"] = ClusterView{Health: Healthy, Since: t0.Add(time.Minute)}
	in.Assignments = settle(t, in)
	for _, a := range in.Assignments {
		if a.GetSpec().GetAgent() != "a1" {
			t.Fatalf("instance not resumed: %v", a.GetSpec())
		}
	}
}

func TestSpecChangeRollsOneInstanceAtATime(t *testing.T) {
	f := fn("f", "a", "b", 3)
	m := mesh("m", f)
	in := Input{Meshes: []*meshfedv1.FunctionMesh{m}, Agents: []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}},
		Clusters: healthy("a", "b"), Now: t0}
	in.Assignments = settle(t, in)
	f.Config = nil
	f.MaxMessageRetry = 3
	p := PlanAssignments(in)
	if len(p.Puts) != 1 {
		t.Fatalf("%d instances updated at once, want 1", len(p.Puts))
	}
	// While that one is not yet running, nothing else rolls.
	updated := p.Puts[0]
	var next []*meshfedv1.Assignment
	for _, a := range in.Assignments {
		if a.GetMetadata().GetName() == updated.GetMetadata().GetName() {
			a = updated
		}
		next = append(next, a)
	}
	in.Assignments = next
	if p := PlanAssignments(in); !p.Empty() {
		t.Fatalf("rolled a second instance before the first ran: %v", where(p.Puts))
	}
	in.Assignments = settle(t, in)
	for _, a := range in.Assignments {
		if a.GetSpec().GetFunctionSpec().GetMaxMessageRetry() != 3 {
			t.Fatal("not every instance was updated")
		}
	}
}

func TestScaleDownDeletesHighestIndexes(t *testing.T) {
	f := fn("f", "a", "b", 4)
	in := Input{Meshes: []*meshfedv1.FunctionMesh{mesh("m", f)}, Agents: []Agent{{Name: "a1", Cluster: "a", Capacity: 10, Ready: true}},
		Clusters: healthy("a", "b"), Now: t0}
	in.Assignments = settle(t, in)
	f.Replicas = 1
	p := PlanAssignments(in)
	if len(p.Deletes) != 3 || len(p.Puts) != 0 {
		t.Fatalf("scale 4→1: %d deletes %d puts", len(p.Deletes), len(p.Puts))
	}
	for _, a := range p.Deletes {
		if a.GetSpec().GetIndex() == 0 {
			t.Fatal("deleted instance 0")
		}
	}
}

func TestClusterHealth(t *testing.T) {
	for i, c := range []struct {
		cordoned bool
		agents   []AgentHealth
		want     string
	}{
		{false, nil, Down},
		{false, []AgentHealth{{Ready: false}}, Down},
		{false, []AgentHealth{{Ready: true, BrokerReachable: false}}, Down},
		{false, []AgentHealth{{Ready: true, BrokerReachable: true}}, Healthy},
		{false, []AgentHealth{{Ready: true, BrokerReachable: true}, {Ready: false}}, Suspect},
		{false, []AgentHealth{{Ready: true, BrokerReachable: true}, {Ready: true}}, Suspect},
		{true, []AgentHealth{{Ready: true, BrokerReachable: true}}, Cordoned},
		{false, []AgentHealth{{Ready: true, BrokerReachable: true, BrokerAuthError: "token from file:///t: expired"}}, Degraded},
		// A refusal outweighs an unreachable broker: the broker answered.
		{false, []AgentHealth{{Ready: true, BrokerAuthError: "x"}, {Ready: true}}, Degraded},
		// Only ready agents count.
		{false, []AgentHealth{{Ready: false, BrokerAuthError: "x"}, {Ready: true, BrokerReachable: true}}, Suspect},
		{true, []AgentHealth{{Ready: true, BrokerReachable: true, BrokerAuthError: "x"}}, Cordoned},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got, why := ClusterHealth(c.cordoned, c.agents); got != c.want || why == "" {
				t.Fatalf("got %s (%q), want %s", got, why, c.want)
			}
		})
	}
}

func TestClusterHealthDegradedNamesTheCredential(t *testing.T) {
	h, why := ClusterHealth(false, []AgentHealth{
		{Name: "a2", Ready: true, BrokerReachable: true, BrokerAuthError: "second"},
		{Name: "a1", Ready: true, BrokerReachable: true, BrokerAuthError: "token from file:///etc/t: authorization refused: AuthorizationError"},
		{Name: "a3", Ready: true, BrokerReachable: true},
	})
	want := "agent a1: token from file:///etc/t: authorization refused: AuthorizationError (2 of 3 ready agents report a refused credential)"
	if h != Degraded || why != want {
		t.Fatalf("got %s %q, want Degraded %q", h, why, want)
	}
	if !(ClusterView{Health: Degraded}).Usable() {
		t.Fatal("a Degraded cluster must keep its work")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestFirstPlacementWaitsForHomeAgentsInsteadOfFailingOver(t *testing.T) {
	m := mesh("m", fn("f", "a", "b", 1, "c"))
	in := Input{Meshes: []*meshfedv1.FunctionMesh{m}, Agents: []Agent{{Name: "c1", Cluster: "c", Capacity: 10, Ready: true}},
		Clusters: map[string]ClusterView{"a": {Health: Down, NoAgents: true}, "b": {Health: Down, NoAgents: true}, "c": {Health: Healthy, Since: t0}}, Now: t0}
	as := settle(t, in)
	if len(as) != 1 || as[0].GetSpec().GetAgent() != "" || !contains(as[0].GetStatus().GetLastError(), "waiting for an agent") {
		t.Fatalf("first placement: %v", as[0])
	}
	in.Assignments = as
	in.Agents = append(in.Agents, Agent{Name: "a1", Cluster: "a", Capacity: 10, Ready: true})
	in.Clusters["a"] = ClusterView{Health: Healthy, Since: t0}
	as = settle(t, in)
	if as[0].GetSpec().GetAgent() != "a1" {
		t.Fatalf("after a's agent registered: %v", as[0].GetSpec())
	}
}
