package controlplane

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// TestQuietPassSkipsOnlyWhenNothingChanged: a pass is skipped only after
// a full pass that wrote nothing and left nothing waiting on the clock,
// over the same store revision and the same agents' heartbeats, and never
// once the backstop age has passed.
func TestQuietPassSkipsOnlyWhenNothingChanged(t *testing.T) {
	st := state.New(state.Config{})
	now := time.Unix(1000, 0)
	health := []federation.AgentHealth{{Name: "a1", Ready: true, BrokerReachable: true}}
	q := &quietPass{}
	if q.unchanged(st, health, now) {
		t.Fatal("skipped before any full pass")
	}
	q.settle(st, st.Revision(), health, now, true)
	if q.unchanged(st, health, now) {
		t.Fatal("skipped after a pass that waits on the clock")
	}
	q.settle(st, st.Revision(), health, now, false)
	if !q.unchanged(st, health, now.Add(time.Second)) {
		t.Fatal("not skipped with nothing changed")
	}
	down := []federation.AgentHealth{{Name: "a1", Ready: false}}
	if q.unchanged(st, down, now.Add(time.Second)) {
		t.Fatal("skipped although an agent stopped heartbeating")
	}
	if q.unchanged(st, health, now.Add(quietMaxAge)) {
		t.Fatal("skipped past the backstop age")
	}
	if q.unchanged(state.New(state.Config{}), health, now) {
		t.Fatal("skipped over a replaced store")
	}
	q.settle(st, st.Revision()-1, health, now, false) // the pass wrote
	if q.unchanged(st, health, now) {
		t.Fatal("skipped after a pass that wrote")
	}
}

// TestWaitsOnClock: a pass waits on the clock while a function runs
// outside its home cluster and that cluster is Healthy within the
// failback hold-down, or while any function is autoscaled.
func TestWaitsOnClock(t *testing.T) {
	now := time.Unix(1000, 0)
	mesh := func(fn *meshfedv1.FunctionSpec) *meshfedv1.FunctionMesh {
		return &meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Tenant: "t", Namespace: "ns", Name: "m"},
			Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{fn}}}
	}
	plain := mesh(&meshfedv1.FunctionSpec{Name: "f", Placement: &meshfedv1.Placement{Cluster: "home"}})
	in := func(cluster string) []*meshfedv1.Assignment {
		return []*meshfedv1.Assignment{{Metadata: &meshfedv1.ObjectMeta{Tenant: "t", Namespace: "ns", Name: "m.f.0"},
			Spec: &meshfedv1.AssignmentSpec{Mesh: "m", Function: "f", Cluster: cluster, Agent: cluster + "-1"}}}
	}
	recovered := func(ago time.Duration) map[string]federation.ClusterView {
		return map[string]federation.ClusterView{"home": {Health: federation.Healthy, Since: now.Add(-ago)}, "other": {Health: federation.Healthy}}
	}
	for _, c := range []struct {
		name    string
		views   map[string]federation.ClusterView
		meshes  []*meshfedv1.FunctionMesh
		current []*meshfedv1.Assignment
		want    bool
	}{
		{"at home, home recovering", recovered(time.Second), []*meshfedv1.FunctionMesh{plain}, in("home"), false},
		{"away, home recovering", recovered(time.Second), []*meshfedv1.FunctionMesh{plain}, in("other"), true},
		{"away, home past hold-down", recovered(time.Minute), []*meshfedv1.FunctionMesh{plain}, in("other"), false},
		{"autoscaled", recovered(time.Minute), []*meshfedv1.FunctionMesh{mesh(&meshfedv1.FunctionSpec{Name: "f", Autoscaling: &meshfedv1.Autoscaling{}})}, in("home"), true},
	} {
		plan := federation.PlanAssignments(federation.Input{Meshes: c.meshes, Assignments: c.current, Clusters: c.views, HoldDown: 30 * time.Second, Now: now,
			Agents: []federation.Agent{{Name: "home-1", Cluster: "home", Ready: true}, {Name: "other-1", Cluster: "other", Ready: true}}})
		if got := waitsOnClock(c.meshes, plan.WaitsOnClock); got != c.want {
			t.Errorf("%s: waitsOnClock = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestQuietSchedulerStillSeesAgentsStop: once placement is done and passes
// find nothing changed, an agent that stops heartbeating is still marked
// Down and its instance moves to the agent still heartbeating.
func TestQuietSchedulerStillSeesAgentsStop(t *testing.T) {
	srv, objs := quietServer(t)
	mustApply(t, objs, decodeAll(t, quietFederation+"---\n"+quietMesh)...)
	beat := registerQuietAgents(t, srv, "a1", "a2")
	agentOf := func() string { return quietAssignment(srv, "m", 0).GetSpec().GetAgent() }
	waitQuiet(t, srv, beat, []string{"a1", "a2"}, func() error {
		if agentOf() == "" {
			return fmt.Errorf("instance not placed yet")
		}
		return nil
	})
	placed := agentOf()
	other := map[string]string{"a1": "a2", "a2": "a1"}[placed]
	WaitFor(t, 20*time.Second, func() error {
		beat(other)
		if got := agentOf(); got != other {
			return fmt.Errorf("instance on %q, want %q after %s stopped heartbeating", got, other, placed)
		}
		return nil
	})
}

// TestSettledSchedulerReplansChanges: once every mesh is placed and
// passes skip the settled ones, a change to one mesh, an agent leaving
// and a tightened policy are each still planned, and a mesh nothing
// touched keeps its assignment.
func TestSettledSchedulerReplansChanges(t *testing.T) {
	srv, objs := quietServer(t)
	const base = quietFederation + `---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: b}
spec: {serviceURL: "pulsar://127.0.0.1:6651"}
`
	meshYAML := func(name string, replicas int) string {
		return fmt.Sprintf(`
---
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: %s, tenant: t, namespace: ns}
spec:
  functions:
  - name: f
    replicas: %d
    runtime: {builtin: identity}
    input: {cluster: a, topics: ["persistent://t/ns/in"]}
`, name, replicas)
	}
	mustApply(t, objs, decodeAll(t, base+meshYAML("m1", 1)+meshYAML("m2", 1))...)
	beat := registerQuietAgents(t, srv, "a1", "a2")
	assignment := func(mesh string, i int) *meshfedv1.Assignment { return quietAssignment(srv, mesh, i) }
	// settled waits until passes are quiet with m1 and m2 placed.
	settled := func(live ...string) {
		t.Helper()
		waitQuiet(t, srv, beat, live, func() error {
			for _, m := range []string{"m1", "m2"} {
				if assignment(m, 0).GetSpec().GetAgent() == "" {
					return fmt.Errorf("%s not placed yet", m)
				}
			}
			return nil
		})
	}
	settled("a1", "a2")
	m2 := assignment("m2", 0)

	// One mesh changes: its new instance is placed, the other mesh's
	// assignment is left as it was.
	mustApply(t, objs, decodeAll(t, meshYAML("m1", 2))...)
	WaitFor(t, 20*time.Second, func() error {
		beat("a1", "a2")
		if assignment("m1", 1).GetSpec().GetAgent() == "" {
			return fmt.Errorf("m1's second instance not placed")
		}
		return nil
	})
	if got := assignment("m2", 0); got.GetSpec().GetEpoch() != m2.GetSpec().GetEpoch() || got.GetSpec().GetAgent() != m2.GetSpec().GetAgent() {
		t.Fatalf("m2's untouched assignment changed: %v, was %v", got.GetSpec(), m2.GetSpec())
	}

	// An agent leaves: everything on it moves to the one left.
	settled("a1", "a2")
	WaitFor(t, 20*time.Second, func() error {
		beat("a2")
		for _, a := range []*meshfedv1.Assignment{assignment("m1", 0), assignment("m1", 1), assignment("m2", 0)} {
			if a.GetSpec().GetAgent() != "a2" {
				return fmt.Errorf("%s on %q, want a2 after a1 stopped heartbeating", a.GetMetadata().GetName(), a.GetSpec().GetAgent())
			}
		}
		return nil
	})

	// A policy tightens: the tenant may no longer use cluster a, so its
	// instances stop (no agent) while the meshes stay defined.
	settled("a2")
	mustApply(t, objs, decodeAll(t, `
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: t}
spec: {allowedClusters: [b]}
`)...)
	WaitFor(t, 20*time.Second, func() error {
		beat("a2")
		for _, a := range []*meshfedv1.Assignment{assignment("m1", 0), assignment("m1", 1), assignment("m2", 0)} {
			if a.GetSpec().GetAgent() != "" {
				return fmt.Errorf("%s still on %q after the tenant lost cluster a", a.GetMetadata().GetName(), a.GetSpec().GetAgent())
			}
		}
		return nil
	})
}

// quietFederation is cluster a, tenant t and its namespace ns; quietMesh
// is mesh m there, its function f reading from cluster a.
const (
	quietFederation = `
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
`
	quietMesh = `
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: m, tenant: t, namespace: ns}
spec:
  functions:
  - name: f
    runtime: {builtin: identity}
    input: {cluster: a, topics: ["persistent://t/ns/in"]}
`
)

// quietServer starts a server whose agents go Down half a second after
// their last heartbeat and whose scheduler runs every 50 ms.
func quietServer(t *testing.T) (*Server, meshfedv1.ObjectServiceClient) {
	srv := TestServer(t, func(c *Config) {
		c.HeartbeatInterval, c.AgentLease, c.AgentTTL = 100*time.Millisecond, 300*time.Millisecond, 500*time.Millisecond
		c.SchedulerInterval = 50 * time.Millisecond
	})
	WaitForLeader(t, srv)
	objs, _ := TestClient(t, srv.GRPCAddr())
	return srv, objs
}

// registerQuietAgents registers agents of cluster a (capacity 10 each) and
// returns a function that heartbeats the ones named.
func registerQuietAgents(t *testing.T, srv *Server, names ...string) (beat func(names ...string)) {
	reqs := make([]*meshfedv1.RegisterRequest, len(names))
	for i, n := range names {
		reqs[i] = &meshfedv1.RegisterRequest{Name: n, Cluster: "a", Capacity: 10}
	}
	agents := TestAgents(t, srv.GRPCAddr(), reqs...)
	ctx := testCtx(t)
	return func(names ...string) {
		for _, n := range names {
			if _, err := agents.Heartbeat(ctx, &meshfedv1.HeartbeatRequest{Name: n, BrokerReachable: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// quietAssignment is instance i of function f of mesh in t/ns; nil while
// there is none.
func quietAssignment(srv *Server, mesh string, i int) *meshfedv1.Assignment {
	o, _, err := srv.State().Get(objects.KindAssignment, "t", "ns", federation.AssignmentName(mesh, "f", i))
	if err != nil {
		return nil
	}
	return o.GetAssignment()
}

// waitQuiet heartbeats the live agents until placed returns nil and the
// passes are quiet: they go on while the last full pass stays the same,
// seen between two polls.
func waitQuiet(t *testing.T, srv *Server, beat func(...string), live []string, placed func() error) {
	t.Helper()
	var full, pass time.Duration
	WaitFor(t, 20*time.Second, func() error {
		beat(live...)
		lastFull, last := full, pass
		full, pass = srv.LastFullSchedulerPass(), srv.LastSchedulerPass()
		if err := placed(); err != nil {
			return err
		}
		if full != lastFull || pass == last {
			return fmt.Errorf("passes are not quiet yet")
		}
		return nil
	})
}

// TestStatusMemoTrustsOnlyTheSameAssignments: a mesh whose status was
// found current is skipped only while the pass lists the very same
// assignments; one rewritten assignment anywhere makes every mesh look
// at its own again.
func TestStatusMemoTrustsOnlyTheSameAssignments(t *testing.T) {
	m := &meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Tenant: "t", Namespace: "ns", Name: "m"}}
	as := []*meshfedv1.Assignment{{Metadata: &meshfedv1.ObjectMeta{Name: "m.f.0"}}, {Metadata: &meshfedv1.ObjectMeta{Name: "x.f.0"}}}
	memo := newSchedulerMemo()
	pass := func(current []*meshfedv1.Assignment) bool {
		same := memo.beginStatus(current)
		defer memo.endStatus()
		if memo.unchangedSince(m, same) {
			return true
		}
		memo.nextStatus[m] = current[:1] // found current, as updateMeshStatus records it
		return false
	}
	if pass(as) {
		t.Fatal("first pass trusted an empty memo")
	}
	if !pass(slices.Clone(as)) {
		t.Fatal("the same assignments, listed again, were not trusted")
	}
	other := slices.Clone(as)
	other[1] = proto.CloneOf(as[1])
	if pass(other) {
		t.Fatal("a rewritten assignment was not noticed")
	}
	if pass(other[:1]) {
		t.Fatal("a deleted assignment was not noticed")
	}
}

// TestListCacheRelistsOnlyWrittenKinds: the scheduler reuses its listing
// of meshes or assignments only while the store wrote no object of that
// kind; a replaced store is listed again.
func TestListCacheRelistsOnlyWrittenKinds(t *testing.T) {
	st := state.New(state.Config{})
	index := uint64(0)
	apply := func(objs ...*meshfedv1.Object) {
		t.Helper()
		index++
		if _, err := st.Apply(index, &raftlogv1.ApplyObjects{Objects: objs}, false); err != nil {
			t.Fatal(err)
		}
	}
	c := &listCache{}
	check := func(what string, wantMeshes, wantAssignments bool) {
		t.Helper()
		if m, a := c.unchanged(st); m != wantMeshes || a != wantAssignments {
			t.Fatalf("%s: meshes unchanged %v, assignments unchanged %v; want %v, %v", what, m, a, wantMeshes, wantAssignments)
		}
	}
	check("first listing", false, false)
	check("nothing written", true, true)
	apply(decodeAll(t, quietFederation)...)
	check("other kinds written", true, true)
	index++
	asg := &meshfedv1.Assignment{ApiVersion: objects.APIVersion, Kind: objects.KindAssignment,
		Metadata: &meshfedv1.ObjectMeta{Tenant: "t", Namespace: "ns", Name: "m.f.0"}, Spec: &meshfedv1.AssignmentSpec{Mesh: "m", Function: "f"}}
	if err := st.ApplyPlan(index, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{asg}}); err != nil {
		t.Fatal(err)
	}
	check("an assignment written", true, false)
	check("nothing written since", true, true)
	apply(decodeAll(t, quietMesh)...)
	check("a mesh written", false, true)
	st = state.New(state.Config{})
	check("a replaced store", false, false)
}
