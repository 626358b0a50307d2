package broker

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/meshfed/meshfed/broker/auth"
	"github.com/meshfed/meshfed/broker/wire"
)

// AuthConfig is Pulsar's authentication settings. The zero value is
// authentication off: every client is served with an empty role.
type AuthConfig struct {
	// Enabled requires clients to authenticate (authenticationEnabled;
	// false = anyone connects).
	Enabled bool
	// Providers holds the provider list and their keys
	// (authenticationProviders, tokenSecretKey, tokenPublicKey,
	// tokenPublicAlg, tokenAuthClaim, tokenAudienceClaim, tokenAudience,
	// basicAuthConf). Its TrustedClientCert is set by the broker.
	Providers auth.Config
	// AnonymousUserRole is the role of clients that send no credentials
	// (anonymousUserRole; "" = such clients are refused).
	AnonymousUserRole string
	// RefreshCheck is how often connections are checked for expired
	// credentials and how long a client has to answer the challenge
	// (authenticationRefreshCheckSeconds; 0 = 60 s).
	RefreshCheck time.Duration
}

// AuthorizationConfig is Pulsar's authorization settings. The zero value
// is authorization off: every authenticated role may do everything.
type AuthorizationConfig struct {
	// Enabled checks namespace permissions and tenant admin roles
	// (authorizationEnabled; false = no checks).
	Enabled bool
	// SuperUserRoles may do everything (superUserRoles; empty = none).
	SuperUserRoles []string
}

// internalMethod is the auth method of the broker's own health-check
// client; its data is a secret made at start-up that never leaves the
// process.
const internalMethod = "meshfed-internal"

// internalRole is the role of that client: a superuser.
const internalRole = "meshfed-broker-internal"

// Authorization actions, as the permissions REST API names them.
const (
	actionProduce   = "produce"
	actionConsume   = "consume"
	actionFunctions = "functions"
)

var knownActions = []string{actionProduce, actionConsume, actionFunctions}

// security is the broker's authentication and authorization state; set by
// New and never changed.
type security struct {
	providers map[string]auth.Provider // by method; nil when authentication is off
	order     []auth.Provider
	secret    []byte // the internal client's credentials
	supers    map[string]bool
}

func (b *Broker) initSecurity() error {
	b.sec.secret = make([]byte, 32)
	if _, err := rand.Read(b.sec.secret); err != nil {
		return fmt.Errorf("internal credentials: %w", err)
	}
	b.sec.supers = map[string]bool{internalRole: true}
	for _, r := range b.cfg.Authorization.SuperUserRoles {
		if r = strings.TrimSpace(r); r != "" {
			b.sec.supers[r] = true
		}
	}
	if b.cfg.Auth.RefreshCheck <= 0 {
		b.cfg.Auth.RefreshCheck = 60 * time.Second
	}
	if !b.cfg.Auth.Enabled {
		if b.cfg.Authorization.Enabled {
			return errors.New("authorizationEnabled needs authenticationEnabled (roles come from authentication)")
		}
		return nil
	}
	pc := b.cfg.Auth.Providers
	if b.tls != nil {
		pc.TrustedClientCert = b.tls.trustedClientCert
	}
	list, err := auth.NewProviders(pc)
	if err != nil {
		return err
	}
	if len(list) == 0 && b.cfg.Auth.AnonymousUserRole == "" {
		return errors.New("authenticationEnabled with no authenticationProviders and no anonymousUserRole: no client could connect")
	}
	b.sec.providers = map[string]auth.Provider{}
	for _, p := range list {
		b.sec.providers[p.Method()] = p
	}
	b.sec.order = list
	return nil
}

// authenticateConnect checks CONNECT's credentials and returns the role.
func (b *Broker) authenticateConnect(method string, data []byte, st *tls.ConnectionState) (auth.Result, error) {
	if method == internalMethod {
		if subtle.ConstantTimeCompare(data, b.sec.secret) == 1 {
			return auth.Result{Role: internalRole}, nil
		}
		return auth.Result{}, fmt.Errorf("%w: invalid internal credentials", ErrAuthentication)
	}
	if !b.cfg.Auth.Enabled {
		return auth.Result{}, nil
	}
	if method == "" || method == "none" {
		if b.cfg.Auth.AnonymousUserRole != "" {
			return auth.Result{Role: b.cfg.Auth.AnonymousUserRole}, nil
		}
		return auth.Result{}, fmt.Errorf("%w: credentials required (the client sent no auth method; enabled: %s)", ErrAuthentication, b.methods())
	}
	p := b.sec.providers[method]
	if p == nil {
		return auth.Result{}, fmt.Errorf("%w: auth method %q is not enabled (enabled: %s)", ErrAuthentication, method, b.methods())
	}
	return p.AuthenticateBinary(data, st)
}

func (b *Broker) methods() string {
	var m []string
	for _, p := range b.sec.order {
		m = append(m, p.Method())
	}
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, ", ")
}

// authenticateHTTP returns the role of an admin request: a Bearer token, a
// Basic password, or a trusted TLS client certificate, else the anonymous
// role.
func (b *Broker) authenticateHTTP(r *http.Request) (string, error) {
	if !b.cfg.Auth.Enabled {
		return "", nil
	}
	h := r.Header.Get("Authorization")
	var p auth.Provider
	switch {
	case strings.HasPrefix(h, "Bearer "):
		p = b.sec.providers[auth.MethodToken]
	case strings.HasPrefix(h, "Basic "):
		p = b.sec.providers[auth.MethodBasic]
	case h != "":
		return "", fmt.Errorf("%w: unsupported Authorization scheme (use Bearer or Basic)", ErrAuthentication)
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && b.sec.providers[auth.MethodTLS] != nil:
		p = b.sec.providers[auth.MethodTLS]
	default:
		if b.cfg.Auth.AnonymousUserRole != "" {
			return b.cfg.Auth.AnonymousUserRole, nil
		}
		return "", fmt.Errorf("%w: credentials required (enabled: %s)", ErrAuthentication, b.methods())
	}
	if p == nil {
		return "", fmt.Errorf("%w: that Authorization scheme's provider is not enabled (enabled: %s)", ErrAuthentication, b.methods())
	}
	res, err := p.AuthenticateHTTP(r)
	if err != nil {
		return "", err
	}
	return res.Role, nil
}

// isSuper reports whether role may do everything.
func (b *Broker) isSuper(role string) bool {
	return !b.cfg.Authorization.Enabled || b.sec.supers[role]
}

// isTenantAdminLocked reports whether role administers tenant.
func (b *Broker) isTenantAdminLocked(role, tenant string) bool {
	if b.isSuper(role) {
		return true
	}
	t := b.meta.Tenants[tenant]
	return t != nil && role != "" && slices.Contains(t.AdminRoles, role)
}

// allowedLocked reports whether role may do one of actions in namespace ns
// ("tenant/ns"): superusers and the tenant's admins may, others need a
// granted permission.
func (b *Broker) allowedLocked(role, ns string, actions ...string) bool {
	tenant, _, _ := strings.Cut(ns, "/")
	if b.isTenantAdminLocked(role, tenant) {
		return true
	}
	p := b.meta.Namespaces[ns]
	if p == nil {
		return false
	}
	for _, a := range actions {
		if slices.Contains(p.Permissions[role], a) {
			return true
		}
	}
	return false
}

// authorize returns ErrAuthorization unless role may do one of actions on
// the topic's namespace.
func (b *Broker) authorize(role string, n topicName, actions ...string) error {
	if b.isSuper(role) {
		return nil
	}
	ns := n.tenant + "/" + n.namespace
	b.mu.Lock()
	ok := b.allowedLocked(role, ns, actions...)
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: role %q may not %s on namespace %s", ErrAuthorization, role, strings.Join(actions, " or "), ns)
	}
	return nil
}

// enforcePermissions closes the producers and consumers whose roles lost
// the right to produce or consume on namespace ns. The clients reconnect
// and are refused with AuthorizationError until the permission is granted
// again.
func (b *Broker) enforcePermissions(ns string) {
	if !b.cfg.Authorization.Enabled {
		return
	}
	for _, c := range b.openConns() {
		role := c.role()
		var ps []*producer
		var cs []*consumer
		c.mu.Lock()
		for _, p := range c.producers {
			if p.t.name.tenant+"/"+p.t.name.namespace == ns {
				ps = append(ps, p)
			}
		}
		for _, x := range c.consumers {
			if x.s.t.name.tenant+"/"+x.s.t.name.namespace == ns {
				cs = append(cs, x)
			}
		}
		c.mu.Unlock()
		if len(ps) == 0 && len(cs) == 0 {
			continue
		}
		b.mu.Lock()
		canProduce := b.isSuper(role) || b.allowedLocked(role, ns, actionProduce)
		canConsume := b.isSuper(role) || b.allowedLocked(role, ns, actionConsume)
		b.mu.Unlock()
		if !canProduce {
			for _, p := range ps {
				b.log.Info("closing producer after permission change", "role", role, "topic", p.t.full, "remote", c.remote)
				c.dropProducer(p, true)
			}
		}
		if !canConsume {
			for _, x := range cs {
				b.log.Info("closing consumer after permission change", "role", role, "topic", x.s.t.full, "remote", c.remote)
				c.dropConsumer(x, true)
			}
		}
	}
}

// checkCredentialExpiry challenges connections whose credentials expired
// (clients that support it answer with fresh ones) and closes those that
// cannot refresh or did not answer within RefreshCheck.
func (b *Broker) checkCredentialExpiry(now time.Time) {
	if !b.cfg.Auth.Enabled {
		return
	}
	for _, c := range b.openConns() {
		c.amu.Lock()
		exp, challenged, refresh, method := c.authExpires, c.challenged, c.authRefresh, c.authMethod
		expired := !exp.IsZero() && now.After(exp)
		switch {
		case !expired:
		case !refresh:
			c.amu.Unlock()
			b.log.Info("closing connection: credentials expired", "remote", c.remote, "role", c.role())
			c.close()
			continue
		case challenged.IsZero():
			c.challenged = now
			c.amu.Unlock()
			c.sendCmd(wire.AuthChallenge(serverVersion, maxProtocolVersion, method, []byte("refresh")))
			continue
		case now.Sub(challenged) > b.cfg.Auth.RefreshCheck:
			c.amu.Unlock()
			b.log.Info("closing connection: no fresh credentials after the challenge", "remote", c.remote, "role", c.role())
			c.close()
			continue
		}
		c.amu.Unlock()
	}
}

// handleAuthResponse checks the fresh credentials of AUTH_RESPONSE; a
// refusal or a different role closes the connection, as in Pulsar.
func (c *conn) handleAuthResponse(ar *wire.AuthResponse) bool {
	res, err := c.b.authenticateConnect(ar.AuthMethodName, ar.AuthData, c.tlsState)
	c.amu.Lock()
	defer c.amu.Unlock()
	if err != nil || res.Role != c.authRole {
		if err == nil {
			err = fmt.Errorf("%w: the refreshed credentials are of role %q, not %q", ErrAuthentication, res.Role, c.authRole)
		}
		c.b.log.Info("closing connection: credential refresh refused", "remote", c.remote, "err", err)
		c.sendCmd(wire.Error(0, wire.ErrAuthentication, err.Error()))
		return false
	}
	c.authExpires, c.challenged = res.Expires, time.Time{}
	return true
}

// internalCreds is the broker's own client: its health check.
type internalCreds struct{ secret []byte }

func (c internalCreds) authMethod() string        { return internalMethod }
func (c internalCreds) authData() ([]byte, error) { return c.secret, nil }

func (b *Broker) internalAuth() clientAuth { return internalCreds{secret: b.sec.secret} }
