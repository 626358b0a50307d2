package controlplane

import (
	"fmt"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func TestLiveCountersWriteTransitionsAtOnceAndHoldCounters(t *testing.T) {
	c := newLiveCounters(10 * time.Second)
	running := func(n uint64) *meshfedv1.InstanceStatus {
		return &meshfedv1.InstanceStatus{State: "Running", Processed: n, Received: n}
	}
	asg := func(epoch uint64, st *meshfedv1.InstanceStatus) *meshfedv1.Assignment {
		return &meshfedv1.Assignment{Metadata: &meshfedv1.ObjectMeta{Name: "a", Tenant: "t", Namespace: "n"},
			Spec: &meshfedv1.AssignmentSpec{Agent: "ag1", Epoch: epoch}, Status: st}
	}
	stored := running(0)
	steps := []struct {
		epoch  uint64
		got    *meshfedv1.InstanceStatus
		write  bool
		due    int
		reason string
	}{
		{1, running(1), false, 1, "counters only: held"},
		{1, running(2), false, 1, "counters only again: held"},
		{1, &meshfedv1.InstanceStatus{State: "Failed", LastError: "boom", Processed: 2}, true, 0, "state change: written at once"},
		{1, running(3), true, 0, "back to Running: a change against the stored Failed"},
		{1, running(9), false, 1, "counters only"},
		{2, &meshfedv1.InstanceStatus{State: "Starting"}, true, 0, "new epoch, starting"},
	}
	for _, s := range steps {
		if got := c.report(asg(s.epoch, stored), "ag1", s.got); got != s.write {
			t.Fatalf("%s: write %v, want %v", s.reason, got, s.write)
		}
		if s.write {
			stored = s.got
		}
		if s.due > 0 {
			// Between flushes the newest counters overlay reads.
			if got := c.overlay(objects.Wrap(asg(s.epoch, stored))).GetAssignment().GetStatus().GetProcessed(); got != s.got.GetProcessed() {
				t.Fatalf("%s: overlaid processed %d, want %d", s.reason, got, s.got.GetProcessed())
			}
			if got := c.overlay(objects.Wrap(asg(s.epoch+1, stored))).GetAssignment().GetStatus().GetProcessed(); got != stored.GetProcessed() {
				t.Fatalf("%s: counters of another epoch overlaid: %d", s.reason, got)
			}
		}
		if due := c.due(); len(due) != s.due {
			t.Fatalf("%s: %d due, want %d", s.reason, len(due), s.due)
		}
	}
	c.report(asg(2, stored), "ag1", &meshfedv1.InstanceStatus{State: "Starting", Received: 1})
	c.report(asg(2, stored), "ag1", &meshfedv1.InstanceStatus{State: "Starting", Received: 2})
	if due := c.due(); len(due) != 1 || due[0].status.GetReceived() != 2 {
		t.Fatalf("two held reports of one assignment: due %v, want the newest alone", due)
	}
	if due := c.due(); len(due) != 0 {
		t.Fatalf("%d due right after a flush", len(due))
	}
	m := &meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: "m", Tenant: "t", Namespace: "n"},
		Status: &meshfedv1.FunctionMeshStatus{Functions: []*meshfedv1.FunctionStatus{{Name: "f",
			Instances: []*meshfedv1.InstanceStatus{{Index: 0, Agent: "ag1", State: "Running"}}}}}}
	mf := &meshfedv1.Assignment{Metadata: &meshfedv1.ObjectMeta{Name: "m.f.0", Tenant: "t", Namespace: "n"},
		Spec: &meshfedv1.AssignmentSpec{Agent: "ag1", Epoch: 1}, Status: running(0)}
	c.report(mf, "ag1", running(7))
	if got := c.overlay(objects.Wrap(m)).GetFunctionMesh().GetStatus().GetFunctions()[0].GetInstances()[0].GetProcessed(); got != 7 {
		t.Fatalf("mesh instance processed %d, want 7", got)
	}
	c.forget(func(string) bool { return false })
	if got := c.overlay(objects.Wrap(m)).GetFunctionMesh().GetStatus().GetFunctions()[0].GetInstances()[0].GetProcessed(); got != 0 {
		t.Fatalf("forgotten counters overlaid: %d", got)
	}
	now := time.Unix(1000, 0)
	if !c.meshDue("m", now) || c.meshDue("m", now.Add(time.Second)) || !c.meshDue("m", now.Add(11*time.Second)) {
		t.Fatal("mesh counter writes not bounded to one per interval")
	}
}

// Reports that change only counters are not each a Raft write, yet reads
// from the leader show the newest counters; a state change is written at once.
func TestReportStatusWritesCountersAtABoundedRate(t *testing.T) {
	s := TestServer(t, func(c *Config) { c.SchedulerInterval = 50 * time.Millisecond; c.CounterWriteInterval = time.Hour })
	WaitForLeader(t, s)
	objc, _ := TestClient(t, s.GRPCAddr())
	mustApply(t, objc, identityMesh(0, true)...)
	agents := TestAgents(t, s.GRPCAddr(), &meshfedv1.RegisterRequest{Name: "ag1", Cluster: "a"})
	ctx := testCtx(t)
	var asg *meshfedv1.Assignment
	WaitFor(t, 10*time.Second, func() error {
		o, _, err := s.State().Get("Assignment", "t", "ns", "m.f.0")
		if err != nil {
			return err
		}
		asg = o.GetAssignment()
		if asg.GetSpec().GetAgent() != "ag1" {
			return fmt.Errorf("assignment not yet on ag1: %v", asg.GetSpec())
		}
		return nil
	})
	report := func(st *meshfedv1.InstanceStatus) {
		t.Helper()
		_, err := agents.ReportStatus(ctx, &meshfedv1.ReportStatusRequest{Agent: "ag1", Instances: []*meshfedv1.InstanceReport{{
			Tenant: "t", Namespace: "ns", Name: "m.f.0", Epoch: asg.GetSpec().GetEpoch(), Status: st}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	stored := func() *meshfedv1.InstanceStatus {
		o, _, err := s.State().Get("Assignment", "t", "ns", "m.f.0")
		if err != nil {
			t.Fatal(err)
		}
		return o.GetAssignment().GetStatus()
	}
	report(&meshfedv1.InstanceStatus{State: "Running", Processed: 1})
	if got := stored().GetProcessed(); got != 1 {
		t.Fatalf("first report: stored processed %d, want 1 (assignment %v, stored %v)", got, asg, stored())
	}
	for n := uint64(2); n <= 50; n++ {
		report(&meshfedv1.InstanceStatus{State: "Running", Processed: n})
	}
	if got := stored().GetProcessed(); got != 1 {
		t.Fatalf("counter-only reports were written: stored processed %d, want 1", got)
	}
	o, err := objc.Get(ctx, &meshfedv1.GetRequest{Kind: "Assignment", Tenant: "t", Namespace: "ns", Name: "m.f.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.GetObject().GetAssignment().GetStatus().GetProcessed(); got != 50 {
		t.Fatalf("leader read processed %d, want the newest 50", got)
	}
	list, err := objc.List(ctx, &meshfedv1.ListRequest{Kind: "Assignment"})
	if err != nil || len(list.GetObjects()) != 1 || list.GetObjects()[0].GetAssignment().GetStatus().GetProcessed() != 50 {
		t.Fatalf("leader list: %v %v", list, err)
	}
	report(&meshfedv1.InstanceStatus{State: "Failed", LastError: "boom", Processed: 51})
	WaitFor(t, 5*time.Second, func() error {
		o, _, err := s.State().Get("Assignment", "t", "ns", "m.f.0")
		if err != nil {
			return err
		}
		if st := o.GetAssignment().GetStatus(); st.GetState() != "Failed" || st.GetProcessed() != 51 {
			return fmt.Errorf("stored status %v, want Failed with 51 processed", st)
		}
		return nil
	})
	// The flush writes held counters, all assignments in one entry.
	report(&meshfedv1.InstanceStatus{State: "Failed", LastError: "boom", Processed: 60})
	if got := stored().GetProcessed(); got != 51 {
		t.Fatalf("held counters written before the flush: %d", got)
	}
	if err := s.flushCountersOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored().GetProcessed(); got != 60 {
		t.Fatalf("after the flush stored processed %d, want 60", got)
	}
}
