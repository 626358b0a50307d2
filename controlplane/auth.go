package controlplane

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Metadata keys of authentication.
const (
	// authorizationKey carries "Bearer <token secret>".
	authorizationKey = "authorization"
	// principalKey carries the base64 Principal a server authenticated, on
	// requests it forwards; trusted only from a server certificate.
	principalKey = "meshfed-principal-bin"
)

// caller is the authenticated principal of a request.
type caller struct {
	p policies.Principal
	// tokenID is set for token-authenticated users.
	tokenID string
	// expires is the token's expiry; zero: never or not a token.
	expires time.Time
	// peer is the caller's network address.
	peer string
	// server is set for a server calling on its own behalf (join, audit hand-over).
	server bool
}

type callerKey struct{}

// callerFrom returns the authenticated caller the interceptors stored.
func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil {
		return &caller{p: policies.Principal{Name: "anonymous", Role: policies.RoleSuperuser}}
	}
	return c
}

// ruleKind says how a method is authorized.
type ruleKind int

const (
	// ruleStatic: the interceptor checks action without a scope.
	ruleStatic ruleKind = iota
	// ruleScoped: the endpoint checks action against what the request names.
	ruleScoped
	// ruleInternal: only servers may call it.
	ruleInternal
)

type methodRule struct {
	kind   ruleKind
	action policies.Action
}

// methodRules authorizes every RPC. A method missing here is refused, so a
// new RPC cannot be served unauthorized by accident.
var methodRules = map[string]methodRule{
	meshfedv1.ObjectService_Apply_FullMethodName:  {kind: ruleScoped},
	meshfedv1.ObjectService_Get_FullMethodName:    {kind: ruleScoped},
	meshfedv1.ObjectService_List_FullMethodName:   {kind: ruleScoped},
	meshfedv1.ObjectService_Delete_FullMethodName: {kind: ruleScoped},
	meshfedv1.ObjectService_Watch_FullMethodName:  {kind: ruleScoped},

	meshfedv1.OperatorService_ListPeers_FullMethodName:       {action: policies.ActionOperatorRead},
	meshfedv1.OperatorService_AddPeer_FullMethodName:         {action: policies.ActionOperatorWrite},
	meshfedv1.OperatorService_RemovePeer_FullMethodName:      {action: policies.ActionOperatorWrite},
	meshfedv1.OperatorService_SaveSnapshot_FullMethodName:    {action: policies.ActionOperatorWrite},
	meshfedv1.OperatorService_RestoreSnapshot_FullMethodName: {action: policies.ActionOperatorWrite},

	meshfedv1.AgentService_Register_FullMethodName:     {action: policies.ActionAgentCall},
	meshfedv1.AgentService_Heartbeat_FullMethodName:    {action: policies.ActionAgentCall},
	meshfedv1.AgentService_ReportStatus_FullMethodName: {action: policies.ActionAgentCall},
	// State calls: agents for the functions assigned to them, users
	// (the Functions REST API's state calls, forwarded) for meshes they
	// may read or write (authorizeState).
	meshfedv1.AgentService_GetState_FullMethodName:    {kind: ruleScoped, action: policies.ActionAgentCall},
	meshfedv1.AgentService_CommitState_FullMethodName: {kind: ruleScoped, action: policies.ActionAgentCall},

	meshfedv1.PackageService_PushPackage_FullMethodName: {action: policies.ActionPackagePush},
	meshfedv1.PackageService_GetPackage_FullMethodName:  {action: policies.ActionPackageGet},

	meshfedv1.TokenService_CreateToken_FullMethodName: {kind: ruleScoped, action: policies.ActionTokenCreate},
	meshfedv1.TokenService_RevokeToken_FullMethodName: {kind: ruleScoped, action: policies.ActionTokenRevoke},
	meshfedv1.TokenService_ListTokens_FullMethodName:  {kind: ruleScoped, action: policies.ActionTokenList},

	meshfedv1.AuditService_ListAudit_FullMethodName:   {kind: ruleScoped, action: policies.ActionAuditRead},
	meshfedv1.AuditService_AppendAudit_FullMethodName: {kind: ruleInternal},
}

// unaryAuth authenticates every unary call and checks static rules.
func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// streamAuth authenticates every streaming call, checks static rules, and
// ends the stream within a second when its token is revoked or expires.
func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	c := callerFrom(ctx)
	if c.tokenID == "" {
		return handler(srv, &authStream{ServerStream: ss, ctx: ctx})
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go s.watchToken(ctx, c, cancel)
	err = handler(srv, &authStream{ServerStream: ss, ctx: ctx})
	if cause := context.Cause(ctx); cause != nil && ss.Context().Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authStream) Context() context.Context { return a.ctx }

// watchToken cancels ctx with an Unauthenticated status once the caller's
// token is revoked or expires. It checks after every applied entry, at
// most ten times a second, and when the expiry passes.
func (s *Server) watchToken(ctx context.Context, c *caller, cancel context.CancelCauseFunc) {
	var expiry <-chan time.Time
	if !c.expires.IsZero() {
		t := time.NewTimer(time.Until(c.expires))
		defer t.Stop()
		expiry = t.C
	}
	for {
		st := s.fsm.State()
		changed := st.Changed()
		if t := st.Token(c.tokenID); t == nil || t.GetRevoked() {
			cancel(refusef(ErrUnauthenticated, "token %s was revoked", c.tokenID))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-expiry:
			cancel(refusef(ErrUnauthenticated, "token %s expired", c.tokenID))
			return
		case <-changed:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// admit authenticates the caller of method, stores it in the context, and
// applies the method's static rule.
func (s *Server) admit(ctx context.Context, method string) (context.Context, error) {
	rule, known := methodRules[method]
	c, err := s.authenticate(ctx)
	if err != nil {
		s.auditDenied(ctx, &caller{p: policies.Principal{Name: "unauthenticated"}, peer: peerAddr(ctx)}, method, "", nil, err)
		return nil, err
	}
	ctx = context.WithValue(ctx, callerKey{}, c)
	if !s.cfg.Auth {
		return ctx, nil
	}
	switch {
	case !known:
		err = refusef(ErrPermissionDenied, "method %s has no authorization rule", method)
	case rule.kind == ruleInternal && !c.server:
		err = refusef(ErrPermissionDenied, "%s may not call %s: servers only", c.p, method)
	case rule.kind == ruleStatic:
		err = s.check(c, rule.action, "", "")
	}
	if err != nil {
		s.auditDenied(ctx, c, method, rule.action, nil, err)
		return nil, err
	}
	return ctx, nil
}

// check authorizes c for action in scope, as a gRPC status.
func (s *Server) check(c *caller, action policies.Action, tenant, namespace string) error {
	if !s.cfg.Auth {
		return nil
	}
	if err := policies.Authorize(c.p, action, tenant, namespace); err != nil {
		return refuse(ErrPermissionDenied, err.Error())
	}
	return nil
}

// authorize checks the caller of ctx for action on targets (all of them must
// be allowed) and audits a refusal.
func (s *Server) authorize(ctx context.Context, method string, action policies.Action, targets ...*meshfedv1.AuditTarget) error {
	c := callerFrom(ctx)
	for _, t := range targets {
		tenant, ns := authScope(t)
		if err := s.check(c, action, tenant, ns); err != nil {
			s.auditDenied(ctx, c, method, action, targets, err)
			return err
		}
	}
	return nil
}

// authorizeRange checks that the caller of ctx may read some objects of
// kind (every kind when empty) in the range tenant/namespace names (all
// when empty): the narrowest scope both the request and the caller's role
// cover must be allowed. Objects outside the caller's scope are then
// dropped one by one with allowed.
func (s *Server) authorizeRange(ctx context.Context, method, kind, tenant, namespace string) error {
	if !s.cfg.Auth {
		return nil
	}
	c := callerFrom(ctx)
	t, n := tenant, namespace
	if t == "" {
		t = c.p.Tenant
	}
	if n == "" && t == c.p.Tenant {
		n = c.p.Namespace
	}
	if kind == "" {
		// A watch of every kind: every role reads something (clusters at
		// least); what it may not read is filtered per object.
		return nil
	}
	action, _ := policies.ReadAction(kind)
	target := &meshfedv1.AuditTarget{Kind: kind, Tenant: t, Namespace: n}
	switch kind {
	case objects.KindTenant:
		target = &meshfedv1.AuditTarget{Kind: kind, Name: t}
	case objects.KindNamespace:
		target = &meshfedv1.AuditTarget{Kind: kind, Tenant: t, Name: n}
	}
	return s.authorize(ctx, method, action, target)
}

// allowed reports whether the caller of ctx may read o (List and Watch
// drop what it may not).
func (s *Server) allowed(ctx context.Context, o *meshfedv1.Object) bool {
	if !s.cfg.Auth {
		return true
	}
	k := objects.KindOf(o)
	if k == nil {
		return false
	}
	action, ok := policies.ReadAction(k.Name)
	if !ok {
		return false
	}
	tenant, ns := authScope(targetOf(o))
	return s.check(callerFrom(ctx), action, tenant, ns) == nil
}

// authScope is the policies scope of a target: a Tenant object is scoped by
// its name, a Namespace by its tenant and name.
func authScope(t *meshfedv1.AuditTarget) (tenant, namespace string) {
	switch t.GetKind() {
	case objects.KindTenant:
		return t.GetName(), ""
	case objects.KindNamespace:
		return t.GetTenant(), t.GetName()
	}
	return t.GetTenant(), t.GetNamespace()
}

func targetOf(o *meshfedv1.Object) *meshfedv1.AuditTarget {
	md := objects.Meta(o)
	k := objects.KindOf(o)
	name := ""
	if k != nil {
		name = k.Name
	}
	return &meshfedv1.AuditTarget{Kind: name, Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName()}
}

// authenticate finds who is calling. Without Config.Auth every caller is
// an anonymous superuser (agent calls still check agent certificates).
func (s *Server) authenticate(ctx context.Context) (*caller, error) {
	c := &caller{peer: peerAddr(ctx)}
	id, isTLS, err := security.PeerIdentity(ctx)
	if isTLS && err != nil {
		return nil, refuse(ErrUnauthenticated, err.Error())
	}
	if !s.cfg.Auth {
		c.p = policies.Principal{Name: "anonymous", Role: policies.RoleSuperuser}
		if isTLS {
			c.p.Name = string(id.Role) + "/" + id.Name
		}
		return c, nil
	}
	if !isTLS {
		return nil, refuse(ErrUnauthenticated, "this control plane requires mutual TLS: present a client certificate (--tls-cert, --tls-key, --tls-ca; create one with `meshfed tls cert create --client`)")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	switch id.Role {
	case security.RoleAgent:
		c.p = policies.Principal{Name: "agent/" + id.Cluster + "/" + id.Name, Role: policies.RoleAgent, Cluster: id.Cluster}
		return c, nil
	case security.RoleServer:
		if v := md.Get(principalKey); len(v) > 0 {
			return s.forwardedCaller(v[0])
		}
		c.p = policies.Principal{Name: "server/" + id.Name, Role: policies.RoleSuperuser}
		c.server = true
		return c, nil
	}
	auth := md.Get(authorizationKey)
	if len(auth) == 0 {
		return nil, refuse(ErrUnauthenticated, "this control plane requires a bearer token: pass --token or --token-file, or set MESHFED_TOKEN or MESHFED_TOKEN_FILE (the first server writes a bootstrap superuser token to <data-dir>/bootstrap-token)")
	}
	secret, ok := strings.CutPrefix(auth[0], "Bearer ")
	if !ok {
		return nil, refuse(ErrUnauthenticated, `authorization metadata must read "Bearer <token>"`)
	}
	claims, t, err := s.verifyToken(ctx, strings.TrimSpace(secret))
	if err != nil {
		return nil, err
	}
	c.p = policies.Principal{Name: claims.GetSubject(), Role: policies.Role(claims.GetRole()), Tenant: claims.GetTenant(), Namespace: claims.GetNamespace()}
	c.tokenID = t.GetId()
	if exp := claims.GetExpiresAt(); exp != 0 {
		c.expires = time.Unix(exp, 0)
	}
	return c, nil
}

// verifyToken checks a token's signature, expiry and record. A token issued
// moments ago may not have reached this server yet: an unknown id waits
// for this server to catch up with the leader once.
func (s *Server) verifyToken(ctx context.Context, secret string) (*meshfedv1.TokenClaims, *meshfedv1.Token, error) {
	unauth := func(err error) error { return refuse(ErrUnauthenticated, "token refused: "+err.Error()) }
	deadline := time.Now().Add(tokenCatchUp)
	for {
		st := s.fsm.State()
		claims, err := s.verified.parse(secret, st.PublicKey)
		if errors.Is(err, security.ErrTokenUnknownKey) {
			if err := s.catchUp(ctx, deadline); err != nil {
				if !st.AuthInitialized() {
					// This server has not replayed the log far enough to
					// know any key (it just started): not the caller's fault.
					return nil, nil, NotAccepted("this server has not caught up with the control plane yet; retry or ask another server")
				}
				return nil, nil, unauth(fmt.Errorf("%w (%w)", security.ErrTokenUnknownKey, err))
			}
			continue
		}
		if err != nil {
			return nil, nil, unauth(err)
		}
		t := st.Token(claims.GetId())
		if t == nil {
			if err := s.catchUp(ctx, deadline); err != nil {
				// The signature verified, so the control plane issued the
				// token and recorded it first: this server lags behind.
				return nil, nil, NotAccepted(fmt.Sprintf("token %s is not known to this server yet (it lags behind the leader); retry or ask another server", claims.GetId()))
			}
			continue
		}
		switch {
		case t.GetRevoked():
			return nil, nil, unauth(fmt.Errorf("token %s was revoked at %s by %s", t.GetId(), t.GetRevokedAt().AsTime().UTC().Format(time.RFC3339), t.GetRevokedBy()))
		case t.GetRole() != claims.GetRole() || t.GetTenant() != claims.GetTenant() || t.GetNamespace() != claims.GetNamespace():
			return nil, nil, unauth(fmt.Errorf("token %s does not match its record", t.GetId()))
		}
		return claims, t, nil
	}
}

// verifiedTokens remembers the claims of token secrets whose signature
// verified, so a token's Ed25519 check (about 65 µs) is paid once, not on
// every call. Signatures cannot become invalid (keys are never removed);
// expiry is checked on every call, revocation by the caller.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[[32]byte]*meshfedv1.TokenClaims
}

// maxVerifiedTokens bounds the cache; when full it starts over.
const maxVerifiedTokens = 4096

func (v *verifiedTokens) parse(secret string, publicKey func(string) (ed25519.PublicKey, bool)) (*meshfedv1.TokenClaims, error) {
	sum := sha256.Sum256([]byte(secret))
	v.mu.Lock()
	c := v.m[sum]
	v.mu.Unlock()
	if c != nil {
		if exp := c.GetExpiresAt(); exp != 0 && !time.Now().Before(time.Unix(exp, 0)) {
			return nil, fmt.Errorf("%w at %s", security.ErrTokenExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
		}
		return c, nil
	}
	c, err := security.ParseToken(secret, time.Now(), publicKey)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.m == nil || len(v.m) >= maxVerifiedTokens {
		v.m = make(map[[32]byte]*meshfedv1.TokenClaims)
	}
	v.m[sum] = c
	v.mu.Unlock()
	return c, nil
}

// tokenCatchUp bounds how long a server waits to learn of a token it does
// not know: one issued moments ago may not have reached it yet.
const tokenCatchUp = time.Second

// catchUp waits until the store changes, or tokenCatchUp passes.
func (s *Server) catchUp(ctx context.Context, deadline time.Time) error {
	st := s.fsm.State()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errTokenUnknown
	case <-st.Changed():
		return nil
	}
}

// forwardedCaller decodes the principal a server forwarded, and re-checks
// its token here so a revocation this server knows about is honoured.
func (s *Server) forwardedCaller(v string) (*caller, error) {
	var p meshfedv1.Principal // gRPC decodes -bin metadata itself
	if err := proto.Unmarshal([]byte(v), &p); err != nil {
		return nil, refuse(ErrUnauthenticated, "forwarded principal does not decode")
	}
	c := &caller{
		p:       policies.Principal{Name: p.GetName(), Role: policies.Role(p.GetRole()), Tenant: p.GetTenant(), Namespace: p.GetNamespace(), Cluster: p.GetCluster()},
		tokenID: p.GetTokenId(),
		peer:    p.GetPeer(),
	}
	if c.tokenID != "" {
		if t := s.fsm.State().Token(c.tokenID); t != nil && t.GetRevoked() {
			return nil, refusef(ErrUnauthenticated, "token refused: token %s was revoked", c.tokenID)
		}
	}
	return c, nil
}

// principalMetadata encodes the caller for a forwarded request.
func principalMetadata(c *caller) string {
	b, _ := proto.Marshal(&meshfedv1.Principal{Name: c.p.Name, Role: string(c.p.Role), Tenant: c.p.Tenant,
		Namespace: c.p.Namespace, Cluster: c.p.Cluster, TokenId: c.tokenID, Peer: c.peer})
	return string(b)
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// BootstrapTokenFile is where the server that initialises authentication
// writes the bootstrap superuser token, inside its data dir.
const BootstrapTokenFile = "bootstrap-token"

// initAuth creates the signing key and the bootstrap superuser token once,
// when this leader finds authentication on and not yet initialised. The
// server whose entry wins writes the token to its data dir.
func (s *Server) initAuth() error {
	keyID, key, err := security.NewSigningKey()
	if err != nil {
		return err
	}
	now := time.Now()
	tok := &meshfedv1.Token{Id: security.RandomID(16), Subject: "bootstrap", Role: string(policies.RoleSuperuser),
		Created: timestamppb.New(now), CreatedBy: "server/" + s.cfg.NodeID, Description: "bootstrap superuser token"}
	secret, err := security.SignToken(keyID, key, &meshfedv1.TokenClaims{Id: tok.GetId(), Subject: tok.GetSubject(), Role: tok.GetRole(), IssuedAt: now.Unix()})
	if err != nil {
		return err
	}
	r, err := s.raftApply(context.Background(), InitAuthType, &raftlogv1.InitAuth{
		Key:       &raftlogv1.SigningKey{Id: keyID, PrivateKey: key, Created: timestamppb.New(now)},
		Bootstrap: tok,
	})
	if err != nil || !r.initialized {
		return err
	}
	path := filepath.Join(s.cfg.DataDir, BootstrapTokenFile)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		s.logger.Error("could not write the bootstrap token; revoke it and create another with a superuser certificate holder", "path", path, "token_id", tok.GetId(), "err", err)
		return nil
	}
	s.logger.Warn("created the bootstrap superuser token: create personal tokens with it, then revoke it", "path", path, "token_id", tok.GetId())
	return nil
}
