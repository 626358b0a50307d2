package state

import (
	"errors"
	"fmt"
	"testing"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func assignment(name, agent string, epoch uint64) *meshfedv1.Assignment {
	return &meshfedv1.Assignment{Metadata: &meshfedv1.ObjectMeta{Name: name, Tenant: "t", Namespace: "n"},
		Spec: &meshfedv1.AssignmentSpec{Agent: agent, Mesh: "m", Function: "f", Epoch: epoch}}
}

func TestUpdateStatusKeepsSpecAndVersionAndSkipsMissing(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	if err := s.ApplyPlan(5, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{assignment("a", "ag1", 1)}}); err != nil {
		t.Fatal(err)
	}
	report := assignment("a", "someone-else", 9) // only its status counts
	report.Status = &meshfedv1.InstanceStatus{State: "Running", Processed: 3}
	gone := assignment("gone", "ag1", 1)
	gone.Status = report.Status
	err := s.UpdateStatus(6, &raftlogv1.UpdateStatus{Objects: []*meshfedv1.Object{objects.Wrap(report), objects.Wrap(gone)}})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := s.Get("Assignment", "t", "n", "a")
	if err != nil {
		t.Fatal(err)
	}
	a := o.GetAssignment()
	if a.GetSpec().GetAgent() != "ag1" || a.GetStatus().GetProcessed() != 3 || a.GetMetadata().GetResourceVersion() != 5 {
		t.Fatalf("after status update: %v", a)
	}
	if _, _, err := s.Get("Assignment", "t", "n", "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status update created a missing object: %v", err)
	}
	if s.Revision() != 6 {
		t.Fatalf("revision %d, want 6", s.Revision())
	}
}

func TestApplyPlanIsAllOrNothing(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	if err := s.ApplyPlan(5, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{assignment("a", "ag1", 1), assignment("b", "ag1", 1)}}); err != nil {
		t.Fatal(err)
	}
	stale := assignment("a", "ag2", 2)
	stale.Metadata.ResourceVersion = 4
	err := s.ApplyPlan(6, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{assignment("c", "ag1", 1), stale},
		Deletes: []*raftlogv1.DeleteObject{{Kind: "Assignment", Tenant: "t", Namespace: "n", Name: "b"}}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale put: %v", err)
	}
	for _, name := range []string{"a", "b"} {
		if _, _, err := s.Get("Assignment", "t", "n", name); err != nil {
			t.Fatalf("%s after a refused plan: %v", name, err)
		}
	}
	if _, _, err := s.Get("Assignment", "t", "n", "c"); !errors.Is(err, ErrNotFound) {
		t.Fatal("refused plan half-applied")
	}
	err = s.ApplyPlan(7, &raftlogv1.ApplyPlan{Deletes: []*raftlogv1.DeleteObject{{Kind: "Cluster", Name: "x"}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("plan deleting a cluster: %v", err)
	}
	if err := s.ApplyPlan(8, &raftlogv1.ApplyPlan{Deletes: []*raftlogv1.DeleteObject{{Kind: "Assignment", Tenant: "t", Namespace: "n", Name: "b"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get("Assignment", "t", "n", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted assignment: %v", err)
	}
}

func TestRegisterAgentRequiresAName(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	if err := s.RegisterAgent(1, &raftlogv1.RegisterAgent{Agent: &meshfedv1.Agent{}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nameless agent: %v", err)
	}
	if err := s.RegisterAgent(1, &raftlogv1.RegisterAgent{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no agent: %v", err)
	}
}

func TestFeedNarrowedToKindsAndAnAgent(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	cluster := objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}})
	if _, err := s.Apply(1, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{cluster, mesh("t", "n", "m")}}, false); err != nil {
		t.Fatal(err)
	}
	plan := func(index uint64, as ...*meshfedv1.Assignment) {
		t.Helper()
		if err := s.ApplyPlan(index, &raftlogv1.ApplyPlan{Puts: as}); err != nil {
			t.Fatal(err)
		}
	}
	plan(2, assignment("x", "ag1", 1), assignment("y", "ag2", 1))
	f := Filter{Kinds: []string{"Cluster", "Assignment"}, Agent: "ag1"}
	got, _, err := s.List(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range got {
		names = append(names, objects.KindOf(o).Name+"/"+objects.Meta(o).GetName())
	}
	if fmt.Sprint(names) != "[Cluster/a Assignment/x]" {
		t.Fatalf("narrow list: %v", names)
	}
	plan(3, assignment("x", "ag2", 2)) // x moves away from ag1
	plan(4, assignment("y", "ag1", 2)) // y moves to ag1
	if err := s.ApplyPlan(5, &raftlogv1.ApplyPlan{Deletes: []*raftlogv1.DeleteObject{{Kind: "Assignment", Tenant: "t", Namespace: "n", Name: "x"}}}); err != nil {
		t.Fatal(err)
	}
	evs, _, _, err := s.EventsAfter(1, f)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ev := range evs {
		a := ev.GetObject().GetAssignment()
		seen = append(seen, fmt.Sprintf("%d:%s@%s<-%q", ev.GetRevision(), a.GetMetadata().GetName(), a.GetSpec().GetAgent(), ev.GetPreviousAgent()))
	}
	// ag1 sees x placed, x leave it, y arrive; not y on ag2, not x deleted on ag2.
	want := `[2:x@ag1<-"" 3:x@ag2<-"ag1" 4:y@ag1<-"ag2"]`
	if fmt.Sprint(seen) != want {
		t.Fatalf("narrow events:\n got %v\nwant %v", seen, want)
	}
}

func TestDeleteCascadeRemovesTheMeshsAssignmentsAtOneRevision(t *testing.T) {
	for _, cascade := range []bool{false, true} {
		t.Run(fmt.Sprintf("cascade=%v", cascade), func(t *testing.T) {
			s := New(Config{Rules: noRules{}})
			apply(t, s, 1, mesh("t", "n", "m"), mesh("t", "n", "other"))
			other := assignment("other-f-0", "ag1", 1)
			other.Spec.Mesh = "other"
			elsewhere := assignment("m-f-9", "ag1", 1)
			elsewhere.Metadata.Namespace = "n2" // same mesh name, other namespace
			plan := &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{assignment("m-f-1", "ag1", 1), assignment("m-f-0", "ag2", 1), other, elsewhere}}
			if err := s.ApplyPlan(2, plan); err != nil {
				t.Fatal(err)
			}
			del := s.Delete
			if cascade {
				del = s.DeleteCascade
			}
			if _, err := del(3, &raftlogv1.DeleteObject{Kind: objects.KindFunctionMesh, Tenant: "t", Namespace: "n", Name: "m"}, false); err != nil {
				t.Fatal(err)
			}
			evs, rev, _, err := s.EventsAfter(2, Filter{})
			if err != nil || rev != 3 {
				t.Fatalf("events after 2: rev %d, err %v", rev, err)
			}
			var got []string
			for _, ev := range evs {
				if ev.GetRevision() != 3 || ev.GetType() != meshfedv1.EventType_EVENT_TYPE_DELETE {
					t.Fatalf("event %v", ev)
				}
				got = append(got, objects.KeyOf(ev.GetObject()))
			}
			want := []string{"FunctionMesh/t/n/m"}
			if cascade {
				want = append(want, "Assignment/t/n/m-f-0", "Assignment/t/n/m-f-1")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("delete events %v, want %v", got, want)
			}
			for _, name := range []string{"m-f-0", "m-f-1"} {
				_, _, err := s.Get(objects.KindAssignment, "t", "n", name)
				if gone := errors.Is(err, ErrNotFound); gone != cascade {
					t.Fatalf("assignment %s after the delete: %v", name, err)
				}
			}
			if _, _, err := s.Get(objects.KindAssignment, "t", "n", "other-f-0"); err != nil {
				t.Fatalf("another mesh's assignment: %v", err)
			}
			if _, _, err := s.Get(objects.KindAssignment, "t", "n2", "m-f-9"); err != nil {
				t.Fatalf("another namespace's assignment: %v", err)
			}
		})
	}
}

func TestDeleteCascadeDryRunAndRefusalLeaveEverything(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	apply(t, s, 1, mesh("t", "n", "m"))
	if err := s.ApplyPlan(2, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{assignment("m-f-0", "ag1", 1)}}); err != nil {
		t.Fatal(err)
	}
	req := &raftlogv1.DeleteObject{Kind: objects.KindFunctionMesh, Tenant: "t", Namespace: "n", Name: "m"}
	if _, err := s.DeleteCascade(3, req, true); err != nil {
		t.Fatal(err)
	}
	req.ResourceVersion = 99
	if _, err := s.DeleteCascade(3, req, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	if _, _, err := s.Get(objects.KindAssignment, "t", "n", "m-f-0"); err != nil {
		t.Fatalf("assignment after a dry run and a refused delete: %v", err)
	}
}
