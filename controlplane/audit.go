package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// auditQueueSize bounds the audit records waiting to reach the log. Beyond
// it the oldest are dropped and counted (a flood of refused requests must
// not exhaust memory); every record is also in the structured log.
const auditQueueSize = 10000

// auditDenied records a refused or failed request that wrote nothing.
func (s *Server) auditDenied(ctx context.Context, c *caller, method string, action policies.Action, targets []*meshfedv1.AuditTarget, err error) {
	r := s.auditRecord(c, method, action, targets)
	setAuditResult(r, err)
	s.logAudit(ctx, r)
	s.queueAudit(r)
}

// auditAsync logs a finished record and queues it for the replicated log.
func (s *Server) auditAsync(r *meshfedv1.AuditRecord) {
	s.logAudit(context.Background(), r)
	s.queueAudit(r)
}

// queueAudit queues a logged record for the replicated log.
func (s *Server) queueAudit(r *meshfedv1.AuditRecord) {
	select {
	case s.auditCh <- r:
	default:
		s.telemetry.auditDropped.Add(context.Background(), 1)
		s.logger.Warn("audit queue full; record kept only in this log", "method", r.GetMethod(), "principal", r.GetPrincipal())
	}
}

// logAudit exports a record as a structured log line (with the trace and
// span ids of ctx's request, when the logger's handler adds them).
func (s *Server) logAudit(ctx context.Context, r *meshfedv1.AuditRecord) {
	logAuditRecord(ctx, s.logger, r)
}

// logAuditRecord writes r to logger as one "audit" line.
func logAuditRecord(ctx context.Context, logger *slog.Logger, r *meshfedv1.AuditRecord) {
	targets := make([]string, 0, len(r.GetTargets()))
	for _, t := range r.GetTargets() {
		parts := []string{t.GetKind()}
		for _, p := range []string{t.GetTenant(), t.GetNamespace(), t.GetName()} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		targets = append(targets, strings.Join(parts, "/"))
	}
	level := slog.LevelInfo
	if r.GetResult() != "ok" {
		level = slog.LevelWarn
	}
	logger.LogAttrs(ctx, level, "audit",
		slog.String("principal", r.GetPrincipal()), slog.String("role", r.GetRole()),
		slog.String("tenant", r.GetPrincipalTenant()), slog.String("method", r.GetMethod()),
		slog.String("action", r.GetAction()), slog.Any("targets", targets),
		slog.String("result", r.GetResult()), slog.String("code", r.GetCode()),
		slog.String("message", r.GetMessage()), slog.String("peer", r.GetPeer()))
}

// auditEntry builds the record a write carries into the log; the FSM fills
// in the outcome. The handling server logs it once the outcome is known.
func (s *Server) auditEntry(ctx context.Context, method string, action policies.Action, targets ...*meshfedv1.AuditTarget) *meshfedv1.AuditRecord {
	return s.auditRecord(callerFrom(ctx), method, action, targets)
}

// logWrite exports the outcome of an audited write.
func (s *Server) logWrite(r *meshfedv1.AuditRecord, err error) {
	if r == nil {
		return
	}
	setAuditResult(r, err)
	s.logAudit(context.Background(), r)
}

// runAuditor hands queued records to the leader in batches.
func (s *Server) runAuditor() {
	defer s.wg.Done()
	var batch []*meshfedv1.AuditRecord
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.shutdownCh:
			return
		case r := <-s.auditCh:
			batch = append(batch, r)
			if len(batch) < 256 {
				continue
			}
		case <-tick.C:
			if len(batch) == 0 {
				continue
			}
		}
		if err := s.flushAudit(batch); err != nil {
			s.logger.Debug("audit records not yet in the log; retrying", "records", len(batch), "err", err)
			if over := len(batch) - auditQueueSize; over > 0 {
				batch = batch[over:]
			}
			continue
		}
		batch = nil
	}
}

// flushAudit appends records at the leader, forwarding if need be.
func (s *Server) flushAudit(batch []*meshfedv1.AuditRecord) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, callerKey{}, &caller{p: policies.Principal{Name: "server/" + s.cfg.NodeID, Role: policies.RoleSuperuser}, server: true})
	ctx = metadata.NewIncomingContext(ctx, metadata.MD{})
	req := &meshfedv1.AppendAuditRequest{Records: batch}
	if done, err := s.forward(ctx, meshfedv1.AuditService_AppendAudit_FullMethodName, req, &meshfedv1.AppendAuditResponse{}); done {
		return err
	}
	_, err := s.raftApply(ctx, AppendAuditType, &raftlogv1.AppendAudit{Records: batch})
	return err
}

// auditTrimInterval is how often the leader checks the audit log's size.
var auditTrimInterval = 10 * time.Second

// runAuditTrim keeps the audit log within Config.AuditRetention while this
// server leads.
func (s *Server) runAuditTrim(stop chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(auditTrimInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		before := s.fsm.State().AuditTrimPoint(s.cfg.AuditRetention)
		if before == 0 {
			continue
		}
		if _, err := s.raftApply(context.Background(), TrimAuditType, &raftlogv1.TrimAudit{BeforeRevision: before}); err != nil {
			s.logger.Warn("trim the audit log", "err", err)
		}
	}
}

// auditEndpoint serves AuditService.
type auditEndpoint struct {
	meshfedv1.UnimplementedAuditServiceServer
	srv *Server
}

func (e *auditEndpoint) ListAudit(ctx context.Context, req *meshfedv1.ListAuditRequest) (*meshfedv1.ListAuditResponse, error) {
	c := callerFrom(ctx)
	tenant := req.GetTenant()
	if tenant == "" && c.p.Role == policies.RoleTenantAdmin && e.srv.cfg.Auth {
		tenant = c.p.Tenant
	}
	if err := e.srv.authorize(ctx, meshfedv1.AuditService_ListAudit_FullMethodName, policies.ActionAuditRead, &meshfedv1.AuditTarget{Kind: objects.KindTenant, Name: tenant}); err != nil {
		return nil, err
	}
	if r := req.GetResult(); r != "" && r != "ok" && r != "denied" && r != "error" {
		return nil, refusef(ErrInvalidArgument, "result: %q is not one of ok, denied, error", r)
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 1000
	}
	since, until := req.GetSince(), req.GetUntil()
	recs := e.srv.fsm.State().Audit(func(r *meshfedv1.AuditRecord) bool {
		switch {
		case req.GetPrincipal() != "" && r.GetPrincipal() != req.GetPrincipal():
			return false
		case req.GetResult() != "" && r.GetResult() != req.GetResult():
			return false
		case since != nil && r.GetTime().AsTime().Before(since.AsTime()):
			return false
		case until != nil && !r.GetTime().AsTime().Before(until.AsTime()):
			return false
		case tenant != "" && !touchesTenant(r, tenant):
			return false
		}
		return true
	}, limit)
	if e.srv.cfg.Auth && c.p.Tenant != "" {
		// A tenant's admin sees its records, but not what they name in
		// other tenants (one apply may write to several).
		for i, r := range recs {
			kept := make([]*meshfedv1.AuditTarget, 0, len(r.GetTargets()))
			for _, t := range r.GetTargets() {
				if scope, _ := authScope(t); scope == "" || scope == c.p.Tenant {
					kept = append(kept, t)
				}
			}
			if len(kept) != len(r.GetTargets()) {
				r = proto.CloneOf(r)
				r.Targets = kept
				recs[i] = r
			}
		}
	}
	return &meshfedv1.ListAuditResponse{Records: recs}, nil
}

// touchesTenant reports whether a record was made by a principal of tenant
// or names an object of it.
func touchesTenant(r *meshfedv1.AuditRecord, tenant string) bool {
	if r.GetPrincipalTenant() == tenant {
		return true
	}
	for _, t := range r.GetTargets() {
		if scope, _ := authScope(t); scope == tenant {
			return true
		}
	}
	return false
}

func (e *auditEndpoint) AppendAudit(ctx context.Context, req *meshfedv1.AppendAuditRequest) (*meshfedv1.AppendAuditResponse, error) {
	resp := &meshfedv1.AppendAuditResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.AuditService_AppendAudit_FullMethodName, req, resp); done {
		return resp, err
	}
	if len(req.GetRecords()) == 0 {
		return resp, nil
	}
	if _, err := e.srv.raftApply(ctx, AppendAuditType, &raftlogv1.AppendAudit{Records: req.GetRecords()}); err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// auditRecord describes a request by c; the outcome is filled in later.
func (s *Server) auditRecord(c *caller, method string, action policies.Action, targets []*meshfedv1.AuditTarget) *meshfedv1.AuditRecord {
	return &meshfedv1.AuditRecord{
		Time: timestamppb.Now(), Principal: c.p.Name, Role: string(c.p.Role),
		PrincipalTenant: c.p.Tenant, PrincipalNamespace: c.p.Namespace, TokenId: c.tokenID,
		Method: method, Action: string(action), Targets: targets, Node: s.cfg.NodeID, Peer: c.peer,
	}
}

// setAuditResult fills a record's outcome from the error a request ended
// with, as the caller sees it.
func setAuditResult(r *meshfedv1.AuditRecord, err error) {
	if err == nil {
		setOutcome(r, codes.OK, "", false)
		return
	}
	st, _ := status.FromError(toStatus(err))
	setOutcome(r, st.Code(), st.Message(), errors.Is(err, policies.ErrFailedPrecondition))
}
