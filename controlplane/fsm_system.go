package controlplane

import (
	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
)

// The control plane's own writes: one apply function per entry type, each
// calling one store method.

func (f *FSM) applyUpdateStatus(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.UpdateStatus) interface{} {
		return f.updateStatus(st, req, index)
	})
}

func (f *FSM) updateStatus(st *state.Store, req *raftlogv1.UpdateStatus, index uint64) *applyResponse {
	err := st.UpdateStatus(index, req)
	if err != nil {
		st.Touch(index)
	}
	return &applyResponse{err: err}
}

func (f *FSM) applyPlan(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.ApplyPlan) interface{} {
		return f.plan(st, req, index)
	})
}

func (f *FSM) plan(st *state.Store, req *raftlogv1.ApplyPlan, index uint64) *applyResponse {
	err := st.ApplyPlan(index, req)
	if err != nil {
		st.Touch(index)
	}
	return &applyResponse{err: err}
}

func (f *FSM) applyRegisterAgent(st *state.Store, body []byte, index uint64) interface{} {
	return decodeApply(st, body, index, func(req *raftlogv1.RegisterAgent) interface{} {
		return f.registerAgent(st, req, index)
	})
}

func (f *FSM) registerAgent(st *state.Store, req *raftlogv1.RegisterAgent, index uint64) *applyResponse {
	err := st.RegisterAgent(index, req)
	if err != nil {
		st.Touch(index)
	}
	recordAudit(st, index, req.GetAudit(), err)
	return &applyResponse{err: err}
}
