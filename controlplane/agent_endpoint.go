package controlplane

import (
	"context"
	"fmt"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// agentEndpoint serves AgentService. Every call runs on the leader, which
// holds the heartbeat timers.
type agentEndpoint struct {
	meshfedv1.UnimplementedAgentServiceServer
	srv *Server
}

// knownLimits are the resource enforcement mechanisms an agent may report
// (agent/runtime/limits); empty: an agent that does not say.
var knownLimits = map[string]bool{"": true, "cgroup2": true, "cgroup1": true, "rlimit": true, "none": true}

func (e *agentEndpoint) Register(ctx context.Context, req *meshfedv1.RegisterRequest) (*meshfedv1.RegisterResponse, error) {
	switch {
	case req.GetName() == "":
		return nil, refuse(ErrInvalidArgument, "name: required")
	case req.GetCluster() == "":
		return nil, refuse(ErrInvalidArgument, "cluster: required")
	case req.GetCapacity() < 0:
		return nil, refuse(ErrInvalidArgument, "capacity: must not be negative")
	case !knownLimits[req.GetLimits()]:
		return nil, refusef(ErrInvalidArgument, "limits: unknown mechanism %q (cgroup2, cgroup1, rlimit, none or empty)", req.GetLimits())
	case req.GetCpuMillis() < 0:
		return nil, refuse(ErrInvalidArgument, "cpu_millis: must not be negative")
	case req.GetMemoryBytes() < 0:
		return nil, refuse(ErrInvalidArgument, "memory_bytes: must not be negative")
	}
	if err := e.srv.checkAgent(ctx, meshfedv1.AgentService_Register_FullMethodName, req.GetName(), req.GetCluster()); err != nil {
		return nil, err
	}
	resp := &meshfedv1.RegisterResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.AgentService_Register_FullMethodName, req, resp); done {
		return resp, err
	}
	st := e.srv.fsm.State()
	if _, _, err := st.Get(objects.KindCluster, "", "", req.GetCluster()); err != nil {
		return nil, refusef(ErrFailedPrecondition, "cluster %q is not defined: apply a Cluster object named %q before starting its agents", req.GetCluster(), req.GetCluster())
	}
	capacity := req.GetCapacity()
	if capacity == 0 {
		capacity = 100
	}
	a := &meshfedv1.Agent{
		Metadata: &meshfedv1.ObjectMeta{Name: req.GetName(), Labels: req.GetLabels()},
		Spec: &meshfedv1.AgentSpec{Cluster: req.GetCluster(), Capacity: capacity, Version: req.GetVersion(), Limits: req.GetLimits(),
			Runtimes: req.GetRuntimes(), Interpreters: req.GetInterpreters(), CpuMillis: req.GetCpuMillis(),
			MemoryBytes: req.GetMemoryBytes(), Labels: req.GetLabels()},
		Status: &meshfedv1.AgentStatus{State: agentReady, LastHeartbeat: timestamppb.Now(), Broker: "Reachable"},
	}
	if old, _, err := st.Get(objects.KindAgent, "", "", req.GetName()); err == nil {
		// Keep the stored status (the scheduler owns state transitions).
		a.Status = proto.Clone(old.GetAgent().GetStatus()).(*meshfedv1.AgentStatus)
		if a.Status == nil {
			a.Status = &meshfedv1.AgentStatus{}
		}
	}
	e.srv.heartbeats.beat(req.GetName(), true, "")
	audit := e.srv.auditEntry(ctx, meshfedv1.AgentService_Register_FullMethodName, policies.ActionAgentCall, targetOf(objects.Wrap(a)))
	_, err := e.srv.applySystem(ctx, RegisterAgentType, &raftlogv1.RegisterAgent{Agent: a, Now: timestamppb.Now(), Audit: audit})
	e.srv.logWrite(audit, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &meshfedv1.RegisterResponse{
		HeartbeatIntervalMs: e.srv.cfg.HeartbeatInterval.Milliseconds(),
		LeaseMs:             e.srv.cfg.AgentLease.Milliseconds(),
	}, nil
}

func (e *agentEndpoint) Heartbeat(ctx context.Context, req *meshfedv1.HeartbeatRequest) (*meshfedv1.HeartbeatResponse, error) {
	if req.GetName() == "" {
		return nil, refuse(ErrInvalidArgument, "name: required")
	}
	if err := e.srv.checkAgent(ctx, meshfedv1.AgentService_Heartbeat_FullMethodName, req.GetName(), ""); err != nil {
		return nil, err
	}
	resp := &meshfedv1.HeartbeatResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.AgentService_Heartbeat_FullMethodName, req, resp); done {
		return resp, err
	}
	if _, _, err := e.srv.fsm.State().Get(objects.KindAgent, "", "", req.GetName()); err != nil {
		return &meshfedv1.HeartbeatResponse{UnknownAgent: true}, nil
	}
	e.srv.heartbeats.beat(req.GetName(), req.GetBrokerReachable(), req.GetBrokerAuthError())
	return &meshfedv1.HeartbeatResponse{LeaseMs: e.srv.cfg.AgentLease.Milliseconds()}, nil
}

// ReportStatus records instance statuses. A report for an epoch the
// assignment has moved past, or from an agent it no longer names, is dropped.
// A report that changes only counters is kept in the leader's memory and
// written through Raft by the next flush (every CounterWriteInterval).
func (e *agentEndpoint) ReportStatus(ctx context.Context, req *meshfedv1.ReportStatusRequest) (*meshfedv1.ReportStatusResponse, error) {
	if err := e.srv.checkAgent(ctx, meshfedv1.AgentService_ReportStatus_FullMethodName, req.GetAgent(), ""); err != nil {
		return nil, err
	}
	resp := &meshfedv1.ReportStatusResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.AgentService_ReportStatus_FullMethodName, req, resp); done {
		return resp, err
	}
	st := e.srv.fsm.State()
	var updates []*meshfedv1.Object
	for _, r := range req.GetInstances() {
		o, _, err := st.Get(objects.KindAssignment, r.GetTenant(), r.GetNamespace(), r.GetName())
		if err != nil {
			continue
		}
		a := o.GetAssignment()
		if a.GetSpec().GetEpoch() != r.GetEpoch() || a.GetSpec().GetAgent() != req.GetAgent() {
			continue
		}
		if proto.Equal(a.GetStatus(), r.GetStatus()) {
			continue
		}
		// Counters alone are held and written by the next flush; reads
		// on the leader see the newest ones meanwhile.
		if !e.srv.live.report(a, req.GetAgent(), r.GetStatus()) {
			continue
		}
		up := proto.Clone(a).(*meshfedv1.Assignment)
		up.Status = r.GetStatus()
		updates = append(updates, objects.Wrap(up))
	}
	if len(updates) == 0 {
		return resp, nil
	}
	if _, err := e.srv.applySystem(ctx, UpdateStatusType, &raftlogv1.UpdateStatus{Objects: updates, Now: timestamppb.Now()}); err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// checkAgent enforces that agent calls for agent name (in cluster, when
// the call names one) come from that agent. With authentication on, the
// caller must be an agent whose certificate binds it to the agent's
// cluster and names it; refusals are audited.
func (s *Server) checkAgent(ctx context.Context, method, name, cluster string) error {
	if !s.cfg.Auth {
		return checkAgentPeer(ctx, name, cluster)
	}
	c := callerFrom(ctx)
	if cluster == "" {
		if a, _, err := s.fsm.State().Get(objects.KindAgent, "", "", name); err == nil {
			cluster = a.GetAgent().GetSpec().GetCluster()
		} else {
			cluster = c.p.Cluster // not registered yet: the call itself will fail
		}
	}
	err := policies.AuthorizeAgent(c.p, cluster)
	if err == nil && c.p.Name != "agent/"+cluster+"/"+name {
		err = fmt.Errorf("%s cannot act as agent %q", c.p, name)
	}
	if err != nil {
		err = refuse(ErrPermissionDenied, err.Error())
		s.auditDenied(ctx, c, method, policies.ActionAgentCall, []*meshfedv1.AuditTarget{{Kind: objects.KindAgent, Name: name}}, err)
	}
	return err
}

// checkAgentPeer enforces, under mutual TLS, that agent calls come from that
// agent's own certificate — which binds it to its cluster, so an agent can
// register only there — or from a server forwarding them. Without TLS
// there is no identity to check.
func checkAgentPeer(ctx context.Context, name, cluster string) error {
	id, ok, err := security.PeerIdentity(ctx)
	if !ok {
		return nil
	}
	if err != nil {
		return refuse(ErrPermissionDenied, err.Error())
	}
	switch id.Role {
	case security.RoleServer:
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(forwardedKey)) > 0 {
			return nil // checked by the server that forwarded it
		}
		return refusef(ErrPermissionDenied, "server certificate %q cannot act as agent %q", id.Name, name)
	case security.RoleAgent:
		if cluster != "" && id.Cluster != cluster {
			return refusef(ErrPermissionDenied, "agent certificate for cluster %q cannot register in cluster %q", id.Cluster, cluster)
		}
		if id.Name != name {
			return refusef(ErrPermissionDenied, "agent certificate for %q cannot act as agent %q", id.Name, name)
		}
		return nil
	}
	return refusef(ErrPermissionDenied, "%s certificate %q cannot make agent calls", id.Role, id.Name)
}
