package state

import (
	"errors"
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
	s := New(Config{})
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
	s := New(Config{})
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
	s := New(Config{})
	if err := s.RegisterAgent(1, &raftlogv1.RegisterAgent{Agent: &meshfedv1.Agent{}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nameless agent: %v", err)
	}
	if err := s.RegisterAgent(1, &raftlogv1.RegisterAgent{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no agent: %v", err)
	}
}
