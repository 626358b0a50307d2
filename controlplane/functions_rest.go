package controlplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshfed/meshfed/controlplane/functionsapi"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
)

// functionsAPI is the Pulsar Functions admin REST API (/admin/v3/functions)
// served from this server: callers authenticate as on the gRPC API, and
// every call goes through the same endpoints (authorization, forwarding
// of writes to the leader, audit).
func (s *Server) functionsAPI() http.Handler {
	return functionsapi.New(&functionsBackend{s: s, objects: &objectEndpoint{srv: s}}, s.logger)
}

// connectorsAPI is Pulsar's sources or sinks admin REST API
// (/admin/v3/sources, /admin/v3/sinks), served as the functions API is.
func (s *Server) connectorsAPI(kind string) http.Handler {
	return functionsapi.NewConnectors(&functionsBackend{s: s, objects: &objectEndpoint{srv: s}}, s.logger, kind)
}

// functionsBackend implements functionsapi.Backend on a Server.
type functionsBackend struct {
	s       *Server
	objects *objectEndpoint
}

// Authenticate finds the caller of an HTTP request as authenticate does
// for gRPC: with --auth, a bearer token over TLS (a client certificate is
// optional here, as Pulsar's admin clients present none with a token).
func (b *functionsBackend) Authenticate(r *http.Request) (context.Context, error) {
	ctx, err := b.authenticate(r)
	if err != nil {
		// Audited as the gRPC API audits a caller it cannot authenticate.
		b.s.auditDenied(r.Context(), &caller{p: policies.Principal{Name: "unauthenticated"}, peer: r.RemoteAddr},
			r.Method+" "+r.URL.Path, "", nil, err)
	}
	return ctx, toStatus(err)
}

func (b *functionsBackend) authenticate(r *http.Request) (context.Context, error) {
	s := b.s
	c := &caller{peer: r.RemoteAddr}
	if !s.cfg.Auth {
		c.p = policies.Principal{Name: "anonymous", Role: policies.RoleSuperuser}
		return context.WithValue(r.Context(), callerKey{}, c), nil
	}
	if r.TLS == nil {
		return nil, refuse(ErrUnauthenticated, "this control plane requires TLS: call https:// on its --http-addr, with the CA of --tls-ca trusted")
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, refuse(ErrUnauthenticated, "this control plane requires a bearer token: send \"Authorization: Bearer <token>\" (pulsar-admin --auth-plugin token --auth-params token:<token>)")
	}
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return nil, refuse(ErrUnauthenticated, `the Authorization header must read "Bearer <token>"`)
	}
	claims, t, err := s.verifyToken(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return nil, err
	}
	c.p = policies.Principal{Name: claims.GetSubject(), Role: policies.Role(claims.GetRole()), Tenant: claims.GetTenant(), Namespace: claims.GetNamespace()}
	c.tokenID = t.GetId()
	return context.WithValue(r.Context(), callerKey{}, c), nil
}

// The object calls answer as ObjectService does over gRPC: errors are
// gRPC statuses (toStatus, as the gRPC interceptor maps them).

func (b *functionsBackend) Apply(ctx context.Context, req *meshfedv1.ApplyRequest) (*meshfedv1.ApplyResponse, error) {
	resp, err := b.objects.Apply(ctx, req)
	return resp, toStatus(err)
}

func (b *functionsBackend) Get(ctx context.Context, req *meshfedv1.GetRequest) (*meshfedv1.GetResponse, error) {
	resp, err := b.objects.Get(ctx, req)
	return resp, toStatus(err)
}

func (b *functionsBackend) List(ctx context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error) {
	resp, err := b.objects.List(ctx, req)
	return resp, toStatus(err)
}

func (b *functionsBackend) Delete(ctx context.Context, req *meshfedv1.DeleteRequest) (*meshfedv1.DeleteResponse, error) {
	resp, err := b.objects.Delete(ctx, req)
	return resp, toStatus(err)
}

// PushPackage stores a package as PackageService.PushPackage does.
func (b *functionsBackend) PushPackage(ctx context.Context, name string, data []byte) (string, error) {
	d, err := b.pushPackage(ctx, name, data)
	return d, toStatus(err)
}

func (b *functionsBackend) pushPackage(ctx context.Context, name string, data []byte) (string, error) {
	s := b.s
	const method = meshfedv1.PackageService_PushPackage_FullMethodName
	if err := s.authorize(ctx, method, policies.ActionPackagePush, &meshfedv1.AuditTarget{Kind: "Package", Name: name}); err != nil {
		return "", err
	}
	if len(data) == 0 {
		return "", refuse(ErrInvalidArgument, "package is empty")
	}
	if len(data) > MaxPackageSize {
		return "", refusef(ErrInvalidArgument, "package exceeds %d MiB", MaxPackageSize>>20)
	}
	digest := Digest(data)
	local, addr, err := s.route(ctx)
	if err != nil {
		return "", err
	}
	if !local {
		return digest, s.relayPackage(ctx, addr, name, data)
	}
	if _, err := s.fsm.State().Package(digest); err == nil {
		return digest, nil
	}
	audit := s.auditEntry(ctx, method, policies.ActionPackagePush, &meshfedv1.AuditTarget{Kind: "Package", Name: digest})
	_, err = s.raftApply(ctx, PutPackageType, &raftlogv1.PutPackage{Digest: digest, Data: data, Name: name, Audit: audit})
	s.logWrite(audit, err)
	return digest, toStatus(err)
}

// GetPackage reads a package from the local store (content addressed, so
// a stale read is safe).
func (b *functionsBackend) GetPackage(ctx context.Context, digest string) ([]byte, error) {
	d, err := b.getPackage(ctx, digest)
	return d, toStatus(err)
}

func (b *functionsBackend) getPackage(ctx context.Context, digest string) ([]byte, error) {
	s := b.s
	if err := s.authorize(ctx, meshfedv1.PackageService_GetPackage_FullMethodName, policies.ActionPackageGet, &meshfedv1.AuditTarget{Kind: "Package", Name: digest}); err != nil {
		return nil, err
	}
	p, err := s.fsm.State().Package(digest)
	if err != nil {
		return nil, refusef(ErrNotFound, "package %s not found", digest)
	}
	return p.GetData(), nil
}

// GetState reads keys of a function's state. The caller needs read access
// to the function's mesh. The read is linearizable: a follower forwards it
// to the leader (as AgentService.GetState, which authorizes a user for
// reading the mesh), so a value put through any server is read back.
func (b *functionsBackend) GetState(ctx context.Context, sc *meshfedv1.StateScope, keys []string) ([]*meshfedv1.StateValue, error) {
	v, err := b.getState(ctx, sc, keys)
	return v, toStatus(err)
}

func (b *functionsBackend) getState(ctx context.Context, sc *meshfedv1.StateScope, keys []string) ([]*meshfedv1.StateValue, error) {
	s := b.s
	if err := checkScope(sc); err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, meshfedv1.ObjectService_Get_FullMethodName, policies.ActionReadMesh, meshTarget(sc)); err != nil {
		return nil, err
	}
	req := &meshfedv1.GetStateRequest{Scope: sc, Keys: keys}
	resp := &meshfedv1.GetStateResponse{}
	if done, err := s.forward(ctx, meshfedv1.AgentService_GetState_FullMethodName, req, resp); done {
		return resp.GetValues(), err
	}
	if err := s.consistentRead(ctx); err != nil {
		return nil, toStatus(err)
	}
	return s.fsm.State().GetState(sc, keys), nil
}

// PutState commits state operations. The caller needs write access to the
// function's mesh. A follower forwards them to the leader as
// AgentService.CommitState, which authorizes a user for writing the mesh.
func (b *functionsBackend) PutState(ctx context.Context, sc *meshfedv1.StateScope, ops []*meshfedv1.StateOp) error {
	return toStatus(b.putState(ctx, sc, ops))
}

func (b *functionsBackend) putState(ctx context.Context, sc *meshfedv1.StateScope, ops []*meshfedv1.StateOp) error {
	s := b.s
	if err := checkScope(sc); err != nil {
		return err
	}
	const method = meshfedv1.AgentService_CommitState_FullMethodName
	if err := s.authorize(ctx, method, policies.ActionWriteMesh, meshTarget(sc)); err != nil {
		return err
	}
	req := &meshfedv1.CommitStateRequest{Scope: sc, Ops: ops}
	if done, err := s.forward(ctx, method, req, &meshfedv1.CommitStateResponse{}); done {
		return err
	}
	_, err := s.raftApply(ctx, CommitStateType, &raftlogv1.CommitState{Scope: sc, Ops: ops})
	return toStatus(err)
}

func meshTarget(sc *meshfedv1.StateScope) *meshfedv1.AuditTarget {
	return &meshfedv1.AuditTarget{Kind: objects.KindFunctionMesh, Tenant: sc.GetTenant(), Namespace: sc.GetNamespace(), Name: sc.GetMesh()}
}

// httpListener is the listener the HTTP server serves: with TLS
// configured, connections that open with a TLS handshake are served over
// TLS (the Functions REST API needs it for bearer tokens) and the others
// in plaintext (/metrics, /healthz and /readyz stay reachable as before).
func (s *Server) httpListener() net.Listener {
	if !s.cfg.TLS.Enabled() {
		return s.httpLis
	}
	cfg, err := httpTLSConfig(s.cfg.TLS.Cert, s.cfg.TLS.Key, s.cfg.TLS.CA)
	if err != nil {
		s.logger.Error("http: TLS not served (plaintext only)", "err", err)
		return s.httpLis
	}
	return newSniffListener(s.httpLis, cfg)
}

// httpTLSConfig serves the server's certificate and verifies a client
// certificate when one is presented.
func httpTLSConfig(cert, key, ca string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	pool, err := loadCAPool(ca)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}, nil
}

// sniffListener hands out TLS connections for clients that start a TLS
// handshake and plain ones for the others. The first byte is read in a
// goroutine per connection, so a silent client blocks nobody.
type sniffListener struct {
	net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	// once guards closing done.
	once sync.Once
	done chan struct{}
	err  error
}

func newSniffListener(l net.Listener, cfg *tls.Config) *sniffListener {
	sl := &sniffListener{Listener: l, cfg: cfg, conns: make(chan net.Conn), done: make(chan struct{})}
	go sl.acceptLoop()
	return sl
}

func (l *sniffListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.err = err
			l.once.Do(func() { close(l.done) })
			return
		}
		go l.sniff(c)
	}
}

// sniffTimeout bounds the wait for a new connection's first byte.
const sniffTimeout = 10 * time.Second

// tlsHandshakeRecord is the first byte of a TLS handshake record.
const tlsHandshakeRecord = 0x16

func (l *sniffListener) sniff(c net.Conn) {
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == tlsHandshakeRecord {
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// loadCAPool reads the PEM CAs of file.
func loadCAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", file)
	}
	return pool, nil
}

// peekedConn reads first what was peeked.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
