package controlplane

import (
	"fmt"
	"strings"
	"testing"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// systemWrites is a run of the control plane's own writes, in the new form.
func systemWrites() []struct {
	t    MessageType
	body proto.Message
} {
	now := timestamppb.Now()
	asg := func(agent string, epoch uint64) *meshfedv1.Assignment {
		return &meshfedv1.Assignment{Metadata: &meshfedv1.ObjectMeta{Name: "m-f-0", Tenant: "t", Namespace: "n"},
			Spec: &meshfedv1.AssignmentSpec{Mesh: "m", Function: "f", Agent: agent, Cluster: "a", Epoch: epoch}}
	}
	reported := asg("ag1", 1)
	reported.Status = &meshfedv1.InstanceStatus{State: "Running", Processed: 7}
	agent := &meshfedv1.Agent{Metadata: &meshfedv1.ObjectMeta{Name: "ag1"}, Spec: &meshfedv1.AgentSpec{Cluster: "a", Capacity: 10},
		Status: &meshfedv1.AgentStatus{State: agentReady}}
	down := proto.CloneOf(agent)
	down.Status.State = agentDown
	return []struct {
		t    MessageType
		body proto.Message
	}{
		{RegisterAgentType, &raftlogv1.RegisterAgent{Agent: agent, Now: now, Audit: &meshfedv1.AuditRecord{Method: "Register"}}},
		{ApplyPlanType, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{asg("ag1", 1)}, Now: now}},
		{UpdateStatusType, &raftlogv1.UpdateStatus{Objects: []*meshfedv1.Object{objects.Wrap(reported)}, Now: now}},
		{UpdateStatusType, &raftlogv1.UpdateStatus{Objects: []*meshfedv1.Object{objects.Wrap(down)}, Now: now}},
		{ApplyPlanType, &raftlogv1.ApplyPlan{Puts: []*meshfedv1.Assignment{asg("ag2", 2)}, Now: now}},
		{ApplyPlanType, &raftlogv1.ApplyPlan{Deletes: []*raftlogv1.DeleteObject{{Kind: "Assignment", Tenant: "t", Namespace: "n", Name: "m-f-0"}}, Now: now}},
	}
}

// A server applying the original ApplyObjects form of the control plane's
// writes ends in the same state as one applying the new entry types, so
// servers of both versions agree during an upgrade.
func TestFSMLegacyAndNewFormsGiveTheSameState(t *testing.T) {
	fresh, old := newTestFSM(), newTestFSM()
	old.legacy = true
	for i, w := range systemWrites() {
		idx := uint64(i + 1)
		if r := fresh.Apply(logEntry(t, idx, w.t, w.body)).(*applyResponse); r.err != nil {
			t.Fatalf("entry %d %s: %v", idx, w.t, r.err)
		}
		legacy, err := legacyEntry(w.body)
		if err != nil {
			t.Fatal(err)
		}
		if r := old.Apply(logEntry(t, idx, ApplyObjectsType, legacy)).(*applyResponse); r.err != nil {
			t.Fatalf("legacy entry %d %s: %v", idx, w.t, r.err)
		}
		a, err := fresh.State().Snapshot().Proto()
		if err != nil {
			t.Fatal(err)
		}
		b, err := old.State().Snapshot().Proto()
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(a, b) {
			t.Fatalf("after entry %d (%s) the states differ:\nnew:    %v\nlegacy: %v", idx, w.t, a, b)
		}
	}
	if recs := fresh.State().Audit(func(*meshfedv1.AuditRecord) bool { return true }, 10); len(recs) != 1 || recs[0].GetResult() != "ok" {
		t.Fatalf("audit records %v, want the registration's", recs)
	}
}

// A server that predates a type refuses it loudly, naming the upgrade,
// rather than let its state diverge.
func TestFSMServerOlderThanAnEntryTypeRefusesIt(t *testing.T) {
	for _, w := range systemWrites() {
		t.Run(w.t.String(), func(t *testing.T) {
			f := newTestFSM()
			f.legacy = true
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), "upgrade") {
					t.Fatalf("older server applied a %s entry (recovered %v)", w.t, r)
				}
			}()
			f.Apply(logEntry(t, 1, w.t, w.body))
		})
	}
}
