package controlplane

import (
	"context"
	"fmt"
	"time"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/policies"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// tokenEndpoint serves TokenService. Writes run on the leader, which holds
// the signing key in its state like every server.
type tokenEndpoint struct {
	meshfedv1.UnimplementedTokenServiceServer
	srv *Server
}

// maxTokenTTL bounds a token's lifetime; longer-lived access should use
// tokens without expiry, deliberately.
const maxTokenTTL = 10 * 365 * 24 * time.Hour

func (e *tokenEndpoint) CreateToken(ctx context.Context, req *meshfedv1.CreateTokenRequest) (*meshfedv1.CreateTokenResponse, error) {
	const method = meshfedv1.TokenService_CreateToken_FullMethodName
	want := policies.Principal{Name: req.GetSubject(), Role: policies.Role(req.GetRole()), Tenant: req.GetTenant(), Namespace: req.GetNamespace()}
	switch {
	case req.GetSubject() == "":
		return nil, refuse(ErrInvalidArgument, "subject: required (who the token is for; it appears in audit records)")
	case len(req.GetSubject()) > 128:
		return nil, refuse(ErrInvalidArgument, "subject: at most 128 characters")
	case want.Role == policies.RoleAgent:
		return nil, refuse(ErrInvalidArgument, "role: agents authenticate with certificates (meshfed tls cert create --agent), not tokens")
	case req.GetTtl().AsDuration() < 0 || req.GetTtl().AsDuration() > maxTokenTTL:
		return nil, refusef(ErrInvalidArgument, "ttl: must be between 0 (never expires) and %s", maxTokenTTL)
	}
	if err := want.Validate(); err != nil {
		return nil, refuse(ErrInvalidArgument, "role: "+err.Error())
	}
	if !e.srv.cfg.Auth {
		return nil, refuse(ErrFailedPrecondition, "token authentication is off on this control plane: start the servers with --auth (and mutual TLS)")
	}
	c := callerFrom(ctx)
	target := &meshfedv1.AuditTarget{Kind: "Token", Tenant: req.GetTenant(), Namespace: req.GetNamespace(), Name: req.GetSubject()}
	if err := policies.AuthorizeIssue(c.p, want); err != nil {
		err = refuse(ErrPermissionDenied, err.Error())
		e.srv.auditDenied(ctx, c, method, policies.ActionTokenCreate, []*meshfedv1.AuditTarget{target}, err)
		return nil, err
	}
	resp := &meshfedv1.CreateTokenResponse{}
	if done, err := e.srv.forward(ctx, method, req, resp); done {
		return resp, err
	}
	st := e.srv.fsm.State()
	key, ok := st.SigningKey()
	if !ok {
		return nil, NotAccepted("authentication is not initialised yet; retry in a moment")
	}
	now := time.Now()
	tok := &meshfedv1.Token{Id: security.RandomID(16), Subject: req.GetSubject(), Role: req.GetRole(), Tenant: req.GetTenant(),
		Namespace: req.GetNamespace(), Created: timestamppb.New(now), CreatedBy: c.p.Name, Description: req.GetDescription()}
	claims := &meshfedv1.TokenClaims{Id: tok.GetId(), Subject: tok.GetSubject(), Role: tok.GetRole(), Tenant: tok.GetTenant(), Namespace: tok.GetNamespace(), IssuedAt: now.Unix()}
	if ttl := req.GetTtl().AsDuration(); ttl > 0 {
		exp := now.Add(ttl).Truncate(time.Second)
		tok.Expires, claims.ExpiresAt = timestamppb.New(exp), exp.Unix()
	}
	secret, err := security.SignToken(key.GetId(), key.GetPrivateKey(), claims)
	if err != nil {
		return nil, fmt.Errorf("sign token: %w", err)
	}
	target.Name = tok.GetId()
	audit := e.srv.auditEntry(ctx, method, policies.ActionTokenCreate, target)
	_, err = e.srv.raftApply(ctx, PutTokenType, &raftlogv1.PutToken{Token: tok, Audit: audit})
	e.srv.logWrite(audit, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &meshfedv1.CreateTokenResponse{Token: tok, Secret: secret}, nil
}

func (e *tokenEndpoint) RevokeToken(ctx context.Context, req *meshfedv1.RevokeTokenRequest) (*meshfedv1.RevokeTokenResponse, error) {
	const method = meshfedv1.TokenService_RevokeToken_FullMethodName
	if req.GetId() == "" {
		return nil, refuse(ErrInvalidArgument, "id: required (see meshfed token list)")
	}
	// Authorize against the token's scope as this server knows it; the
	// leader checks again against its own state.
	t := e.srv.fsm.State().Token(req.GetId())
	if t == nil {
		resp := &meshfedv1.RevokeTokenResponse{}
		if done, err := e.srv.forward(ctx, method, req, resp); done {
			return resp, err
		}
		return nil, refusef(ErrNotFound, "token %q does not exist (see meshfed token list)", req.GetId())
	}
	target := &meshfedv1.AuditTarget{Kind: "Token", Tenant: t.GetTenant(), Namespace: t.GetNamespace(), Name: t.GetId()}
	if err := e.srv.authorize(ctx, method, policies.ActionTokenRevoke, target); err != nil {
		return nil, err
	}
	resp := &meshfedv1.RevokeTokenResponse{}
	if done, err := e.srv.forward(ctx, method, req, resp); done {
		return resp, err
	}
	audit := e.srv.auditEntry(ctx, method, policies.ActionTokenRevoke, target)
	r, err := e.srv.raftApply(ctx, RevokeTokenType, &raftlogv1.RevokeToken{Id: req.GetId(), Now: timestamppb.Now(), By: callerFrom(ctx).p.Name, Audit: audit})
	e.srv.logWrite(audit, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &meshfedv1.RevokeTokenResponse{Token: r.token}, nil
}

func (e *tokenEndpoint) ListTokens(ctx context.Context, req *meshfedv1.ListTokensRequest) (*meshfedv1.ListTokensResponse, error) {
	const method = meshfedv1.TokenService_ListTokens_FullMethodName
	c := callerFrom(ctx)
	tenant := req.GetTenant()
	if tenant == "" && c.p.Role == policies.RoleTenantAdmin && e.srv.cfg.Auth {
		tenant = c.p.Tenant
	}
	if err := e.srv.authorize(ctx, method, policies.ActionTokenList, &meshfedv1.AuditTarget{Kind: "Token", Tenant: tenant}); err != nil {
		return nil, err
	}
	now := time.Now()
	out := &meshfedv1.ListTokensResponse{}
	for _, t := range e.srv.fsm.State().Tokens() {
		if tenant != "" && t.GetTenant() != tenant {
			continue
		}
		if e.srv.check(c, policies.ActionTokenList, t.GetTenant(), t.GetNamespace()) != nil {
			continue
		}
		expired := t.GetExpires() != nil && !now.Before(t.GetExpires().AsTime())
		if !req.GetAll() && (t.GetRevoked() || expired) {
			continue
		}
		out.Tokens = append(out.Tokens, t)
	}
	return out, nil
}
