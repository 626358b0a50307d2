package controlplane

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
)

func (e *agentEndpoint) GetState(ctx context.Context, req *meshfedv1.GetStateRequest) (*meshfedv1.GetStateResponse, error) {
	if err := checkScope(req.GetScope()); err != nil {
		return nil, err
	}
	resp := &meshfedv1.GetStateResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.AgentService_GetState_FullMethodName, req, resp); done {
		return resp, err
	}
	if err := e.srv.consistentRead(ctx); err != nil {
		return nil, toStatus(err)
	}
	if err := e.srv.authorizeState(ctx, meshfedv1.AgentService_GetState_FullMethodName, policies.ActionReadMesh, req.GetScope()); err != nil {
		return nil, err
	}
	if req.GetAll() {
		limit := int(req.GetLimit())
		if limit <= 0 || limit > stateScanPage {
			limit = stateScanPage
		}
		values, more, err := e.srv.fsm.State().ScanState(req.GetScope(), req.GetAfter(), limit)
		if err != nil {
			return nil, toStatus(err)
		}
		return &meshfedv1.GetStateResponse{Values: values, Scanned: true, More: more}, nil
	}
	return &meshfedv1.GetStateResponse{Values: e.srv.fsm.State().GetState(req.GetScope(), req.GetKeys())}, nil
}

// stateScanPage bounds the keys one GetState with all returns.
const stateScanPage = 10000

func (e *agentEndpoint) CommitState(ctx context.Context, req *meshfedv1.CommitStateRequest) (*meshfedv1.CommitStateResponse, error) {
	if err := checkScope(req.GetScope()); err != nil {
		return nil, err
	}
	if len(req.GetOps()) == 0 {
		return &meshfedv1.CommitStateResponse{}, nil
	}
	resp := &meshfedv1.CommitStateResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.AgentService_CommitState_FullMethodName, req, resp); done {
		return resp, err
	}
	if err := e.srv.authorizeState(ctx, meshfedv1.AgentService_CommitState_FullMethodName, policies.ActionWriteMesh, req.GetScope()); err != nil {
		return nil, err
	}
	r, err := e.srv.raftApply(ctx, CommitStateType, &raftlogv1.CommitState{Scope: req.GetScope(), Ops: req.GetOps(),
		Writer: req.GetWriter(), Sequence: req.GetSequence()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &meshfedv1.CommitStateResponse{Counters: r.counters}, nil
}

func checkScope(sc *meshfedv1.StateScope) error {
	if sc.GetTenant() == "" || sc.GetNamespace() == "" || sc.GetMesh() == "" || sc.GetFunction() == "" {
		return refuse(ErrInvalidArgument, fmt.Sprintf("scope: tenant, namespace, mesh and function are required (got %v)", sc))
	}
	return nil
}

// authorizeState authorizes, on the leader, a state read or commit. An
// agent reads and commits only the state of functions assigned to it: an
// instance whose assignment moved elsewhere (a failover, a drain) can no
// longer change the state its replacement now owns. Any other caller
// needs userAction on the function's mesh (read or write): so a user's
// state call through the Functions REST API of a follower, forwarded
// here, is authorized as the follower authorized it.
func (s *Server) authorizeState(ctx context.Context, method string, userAction policies.Action, sc *meshfedv1.StateScope) error {
	if !s.cfg.Auth {
		return nil
	}
	c := callerFrom(ctx)
	if c.p.Role != policies.RoleAgent {
		return s.authorize(ctx, method, userAction, meshTarget(sc))
	}
	if err := s.check(c, policies.ActionAgentCall, "", ""); err != nil {
		s.auditDenied(ctx, c, method, policies.ActionAgentCall, nil, err)
		return err
	}
	agent, _ := strings.CutPrefix(c.p.Name, "agent/"+c.p.Cluster+"/")
	as, _, err := s.fsm.State().List(state.Filter{Kind: objects.KindAssignment, Tenant: sc.GetTenant(), Namespace: sc.GetNamespace()})
	if err != nil {
		return toStatus(err)
	}
	for _, o := range as {
		spec := o.GetAssignment().GetSpec()
		if spec.GetMesh() == sc.GetMesh() && spec.GetFunction() == sc.GetFunction() && spec.GetAgent() == agent && spec.GetCluster() == c.p.Cluster {
			return nil
		}
	}
	err = refusef(ErrPermissionDenied, "%s has no assignment of %s/%s/%s function %s: only the agent running a function reads and writes its state",
		c.p, sc.GetTenant(), sc.GetNamespace(), sc.GetMesh(), sc.GetFunction())
	s.auditDenied(ctx, c, method, policies.ActionAgentCall, []*meshfedv1.AuditTarget{{Kind: objects.KindFunctionMesh, Tenant: sc.GetTenant(), Namespace: sc.GetNamespace(), Name: sc.GetMesh()}}, err)
	return err
}
