package controlplane

import (
	"context"
	"fmt"
	"slices"

	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// Servers older than UpdateStatus, ApplyPlan and RegisterAgent wrote those
// changes as ApplyObjects entries with the system, status_only and deletes
// fields. This file translates between the two forms: the leader writes the
// old form while any member lacks the new types, and every server applies
// old-form entries (still in logs, or written during an upgrade) through
// the new store methods, which give the same result.

// applySystem writes one of the control plane's own changes: as entry type
// t when every member of the Raft configuration applies t, else in the
// original ApplyObjects form.
func (s *Server) applySystem(ctx context.Context, t MessageType, body proto.Message) (*applyResponse, error) {
	if s.membersApply(t) {
		return s.raftApply(ctx, t, body)
	}
	legacy, err := legacyEntry(body)
	if err != nil {
		return nil, err
	}
	return s.raftApply(ctx, ApplyObjectsType, legacy)
}

// membersApply reports whether every server in the Raft configuration
// advertises entry type t in its member record. A server without a record
// yet (just added) counts as one that does not.
func (s *Server) membersApply(t MessageType) bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	st := s.fsm.State()
	for _, srv := range f.Configuration().Servers {
		m := st.Member(string(srv.ID))
		if m == nil || !slices.Contains(m.GetLogTypes(), uint32(t)) {
			return false
		}
	}
	return true
}

// legacyEntry is the ApplyObjects form of a new-type body.
func legacyEntry(body proto.Message) (*raftlogv1.ApplyObjects, error) {
	switch b := body.(type) {
	case *raftlogv1.UpdateStatus:
		return &raftlogv1.ApplyObjects{Objects: b.GetObjects(), Now: b.GetNow(), System: true, StatusOnly: true}, nil
	case *raftlogv1.ApplyPlan:
		e := &raftlogv1.ApplyObjects{Now: b.GetNow(), System: true, Deletes: b.GetDeletes()}
		for _, a := range b.GetPuts() {
			e.Objects = append(e.Objects, objects.Wrap(a))
		}
		return e, nil
	case *raftlogv1.RegisterAgent:
		return &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{objects.Wrap(b.GetAgent())}, Now: b.GetNow(), System: true, Audit: b.GetAudit()}, nil
	}
	return nil, fmt.Errorf("no ApplyObjects form for %T", body)
}

// isLegacySystem reports whether an ApplyObjects entry is the control
// plane's own write in the original form rather than a user's apply.
func isLegacySystem(req *raftlogv1.ApplyObjects) bool {
	return req.GetSystem() || req.GetStatusOnly() || len(req.GetDeletes()) > 0
}

// applyLegacySystem applies an original-form system write through the
// store method of its intent: status-only writes are UpdateStatus, a lone
// agent is RegisterAgent, assignments and deletes are ApplyPlan.
func (f *FSM) applyLegacySystem(st *state.Store, req *raftlogv1.ApplyObjects, index uint64) interface{} {
	var resp *applyResponse
	switch {
	case !req.GetSystem():
		err := fmt.Errorf("status_only and deletes need system: %w", state.ErrInvalid)
		st.Touch(index)
		resp = &applyResponse{err: err}
		recordAudit(st, index, req.GetAudit(), err)
	case req.GetStatusOnly():
		resp = f.updateStatus(st, &raftlogv1.UpdateStatus{Objects: req.GetObjects(), Now: req.GetNow()}, index)
		recordAudit(st, index, req.GetAudit(), resp.err)
	case len(req.GetObjects()) == 1 && req.GetObjects()[0].GetAgent() != nil && len(req.GetDeletes()) == 0:
		resp = f.registerAgent(st, &raftlogv1.RegisterAgent{Agent: req.GetObjects()[0].GetAgent(), Now: req.GetNow(), Audit: req.GetAudit()}, index)
	default:
		plan := &raftlogv1.ApplyPlan{Now: req.GetNow(), Deletes: req.GetDeletes()}
		var err error
		for i, o := range req.GetObjects() {
			a := o.GetAssignment()
			if a == nil {
				err = fmt.Errorf("object %d: a system write of several objects or with deletes holds assignments only: %w", i+1, state.ErrInvalid)
				break
			}
			plan.Puts = append(plan.Puts, a)
		}
		if err != nil {
			st.Touch(index)
			resp = &applyResponse{err: err}
		} else {
			resp = f.plan(st, plan, index)
		}
		recordAudit(st, index, req.GetAudit(), resp.err)
	}
	return resp
}

// selfMember is this server's member record: its addresses and the log
// types it applies.
func (s *Server) selfMember() *raftlogv1.Member {
	return &raftlogv1.Member{Id: s.cfg.NodeID, RaftAddress: string(s.transport.LocalAddr()), GrpcAddress: s.GRPCAdvertiseAddr(),
		LogTypes: advertisedLogTypes(s.cfg.legacyLogTypes)}
}

// sameMember reports whether the stored record m (nil: none) already holds
// want's addresses and log types.
func sameMember(m, want *raftlogv1.Member) bool {
	return m != nil && m.GetGrpcAddress() == want.GetGrpcAddress() && m.GetRaftAddress() == want.GetRaftAddress() &&
		slices.Equal(m.GetLogTypes(), want.GetLogTypes())
}
