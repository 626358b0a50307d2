package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func mesh(tenant, ns, name string) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: name, Tenant: tenant, Namespace: ns, Labels: map[string]string{"team": tenant}},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{Name: "f",
			Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"in"}}}}},
	})
}

func apply(t *testing.T, s *Store, index uint64, objs ...*meshfedv1.Object) *ApplyResult {
	t.Helper()
	r, err := s.Apply(index, &raftlogv1.ApplyObjects{Objects: objs}, false)
	if err != nil {
		t.Fatalf("apply at %d: %v", index, err)
	}
	return r
}

func TestListFiltersByKindTenantNamespaceAndLabels(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	apply(t, s, 1, mesh("t1", "n1", "m1"), mesh("t1", "n2", "m2"), mesh("t2", "n1", "m3"))
	cases := []struct {
		f    Filter
		want int
	}{
		{Filter{Kind: "FunctionMesh"}, 3},
		{Filter{Kind: "FunctionMesh", Tenant: "t1"}, 2},
		{Filter{Kind: "FunctionMesh", Tenant: "t1", Namespace: "n1"}, 1},
		{Filter{Kind: "FunctionMesh", Tenant: "t"}, 0}, // no prefix match on partial tenant names
		{Filter{Kind: "FunctionMesh", Selector: func(l map[string]string) bool { return l["team"] == "t2" }}, 1},
		{Filter{Kind: "Cluster"}, 0},
		{Filter{}, 3},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, _, err := s.List(c.f)
			if err != nil || len(got) != c.want {
				t.Fatalf("%+v: got %d (%v), want %d", c.f, len(got), err, c.want)
			}
		})
	}
}

func TestApplyPreconditionsAndSystemKinds(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	r := apply(t, s, 10, mesh("t", "n", "m"))
	if r.Results[0] != ResultCreated {
		t.Fatal(r.Results)
	}
	stale := mesh("t", "n", "m")
	objects.Meta(stale).ResourceVersion = 9
	if _, err := s.Apply(11, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{stale}}, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale precondition: %v", err)
	}
	missing := mesh("t", "n", "other")
	objects.Meta(missing).ResourceVersion = 10
	if _, err := s.Apply(11, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{missing}}, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("precondition on a missing object: %v", err)
	}
	agent := objects.Wrap(&meshfedv1.Agent{Metadata: &meshfedv1.ObjectMeta{Name: "ag"}})
	if _, err := s.Apply(11, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{agent}}, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("user write of a system kind: %v", err)
	}
	if _, err := s.Apply(11, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{agent}, System: true}, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("user apply flagged as a system write: %v", err)
	}
	if err := s.RegisterAgent(11, &raftlogv1.RegisterAgent{Agent: agent.GetAgent()}); err != nil {
		t.Fatalf("system write: %v", err)
	}
	dup := []*meshfedv1.Object{mesh("t", "n", "x"), mesh("t", "n", "x")}
	if _, err := s.Apply(12, &raftlogv1.ApplyObjects{Objects: dup}, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate in one apply: %v", err)
	}
}

func TestUserWritesKeepStatus(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	m := mesh("t", "n", "m")
	m.GetFunctionMesh().Status = &meshfedv1.FunctionMeshStatus{ObservedGeneration: 7}
	r := apply(t, s, 1, m)
	if r.Objects[0].GetFunctionMesh().GetStatus() != nil {
		t.Fatal("a user write set status")
	}
	sys := mesh("t", "n", "m")
	sys.GetFunctionMesh().Status = &meshfedv1.FunctionMeshStatus{ObservedGeneration: 1}
	if err := s.UpdateStatus(2, &raftlogv1.UpdateStatus{Objects: []*meshfedv1.Object{sys}}); err != nil {
		t.Fatal(err)
	}
	upd := mesh("t", "n", "m")
	objects.Meta(upd).Labels["x"] = "y"
	r = apply(t, s, 3, upd)
	if got := r.Objects[0].GetFunctionMesh().GetStatus().GetObservedGeneration(); got != 1 {
		t.Fatalf("status after user update: observedGeneration %d, want 1", got)
	}
	if g := objects.Meta(r.Objects[0]).GetGeneration(); g != 2 {
		t.Fatalf("generation %d, want 2", g)
	}
}

func TestEventsAfterAndCompaction(t *testing.T) {
	s := New(Config{EventHistory: 4, Rules: noRules{}})
	for i := uint64(1); i <= 6; i++ {
		apply(t, s, i*10, mesh("t", "n", fmt.Sprintf("m%d", i)))
	}
	evs, rev, _, err := s.EventsAfter(30, Filter{})
	if err != nil || rev != 60 || len(evs) != 3 || evs[0].GetRevision() != 40 {
		t.Fatalf("events after 30: %d events, rev %d, err %v", len(evs), rev, err)
	}
	if _, _, _, err := s.EventsAfter(10, Filter{}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("events after a compacted revision: %v", err)
	}
	if s.CompactRevision() != 20 {
		t.Fatalf("compact revision %d, want 20", s.CompactRevision())
	}
	ch := s.Changed()
	apply(t, s, 70, mesh("t", "n", "m7"))
	select {
	case <-ch:
	default:
		t.Fatal("Changed channel not closed by a write")
	}
}

func TestDeleteChecksDependentsAndPreconditions(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	ten := objects.Wrap(&meshfedv1.Tenant{Metadata: &meshfedv1.ObjectMeta{Name: "t"}})
	cl := objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}})
	apply(t, s, 1, ten, cl, mesh("t", "n", "m"))
	if _, err := s.Delete(2, &raftlogv1.DeleteObject{Kind: "Tenant", Name: "t"}, false); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("delete tenant holding a mesh: %v", err)
	}
	if _, err := s.Delete(2, &raftlogv1.DeleteObject{Kind: "Cluster", Name: "a"}, false); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("delete cluster used by a mesh: %v", err)
	}
	if _, err := s.Delete(2, &raftlogv1.DeleteObject{Kind: "FunctionMesh", Tenant: "t", Namespace: "n", Name: "m", ResourceVersion: 5}, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete with a stale version: %v", err)
	}
	if _, err := s.Delete(2, &raftlogv1.DeleteObject{Kind: "FunctionMesh", Tenant: "t", Namespace: "n", Name: "m", ResourceVersion: 1}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(3, &raftlogv1.DeleteObject{Kind: "FunctionMesh", Tenant: "t", Namespace: "n", Name: "m"}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	evs, _, _, _ := s.EventsAfter(1, Filter{})
	if len(evs) != 1 || evs[0].GetType() != meshfedv1.EventType_EVENT_TYPE_DELETE {
		t.Fatalf("delete event: %v", evs)
	}
}

func TestCommitStateAppliesEachWriterSequenceOnce(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	sc := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	commit := &raftlogv1.CommitState{Scope: sc, Writer: "w1", Sequence: 1,
		Ops: []*meshfedv1.StateOp{{Key: "k", Op: &meshfedv1.StateOp_Incr{Incr: 5}}}}
	for i := uint64(1); i <= 3; i++ { // the first commit and two retries of it
		if _, err := s.CommitState(i, commit); err != nil {
			t.Fatal(err)
		}
	}
	if v := s.GetState(sc, []string{"k"})[0].GetCounter(); v != 5 {
		t.Fatalf("counter %d after a commit retried twice, want 5", v)
	}
	next := &raftlogv1.CommitState{Scope: sc, Writer: "w1", Sequence: 2, Ops: commit.Ops}
	other := &raftlogv1.CommitState{Scope: sc, Writer: "w2", Sequence: 1, Ops: commit.Ops}
	for i, c := range []*raftlogv1.CommitState{next, other} {
		if _, err := s.CommitState(uint64(10+i), c); err != nil {
			t.Fatal(err)
		}
	}
	if v := s.GetState(sc, []string{"k"})[0].GetCounter(); v != 15 {
		t.Fatalf("counter %d, want 15", v)
	}
	// The commit record is not a user key.
	if vals := s.GetState(sc, []string{"\x01commit\x00w1"}); vals[0].GetExists() && vals[0].GetKey() == "k" {
		t.Fatal("commit record visible as state")
	}
}

func TestScanStatePagesThroughOneScopeOnly(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	sc := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	// A scope whose function name extends f's must not leak into f's scan.
	other := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "fx"}
	var ops []*meshfedv1.StateOp
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		ops = append(ops, &meshfedv1.StateOp{Key: k, Op: &meshfedv1.StateOp_Incr{Incr: 1}})
	}
	ops = append(ops, &meshfedv1.StateOp{Key: "v", Op: &meshfedv1.StateOp_Put{Put: []byte("x")}})
	if _, err := s.CommitState(1, &raftlogv1.CommitState{Scope: sc, Writer: "w", Sequence: 1, Ops: ops}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitState(2, &raftlogv1.CommitState{Scope: other, Ops: ops[:1]}); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		vals, more, err := s.ScanState(sc, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			got = append(got, v.GetKey())
			if v.GetKey() == "v" && (v.GetIsCounter() || string(v.GetValue()) != "x") {
				t.Fatalf("value v read as %v", v)
			}
		}
		if !more {
			break
		}
		after = vals[len(vals)-1].GetKey()
		if page > 5 {
			t.Fatal("scan does not end")
		}
	}
	if want := "a b c d e v"; strings.Join(got, " ") != want {
		t.Fatalf("scanned %q, want %q (no commit record, nothing of another scope)", got, want)
	}
}
