package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/security"
)

// secureServer is an in-process server with mutual TLS and --auth, and the
// CLI's way in: a client certificate and the bootstrap superuser token.
type secureServer struct {
	t     *testing.T
	pki   *controlplane.TestPKI
	addr  string
	boot  string
	files security.Files
}

func newSecureServer(t *testing.T) *secureServer {
	t.Helper()
	pki := controlplane.NewTestPKI(t)
	srv := controlplane.TestServer(t, pki.SecureConfig)
	controlplane.WaitForLeader(t, srv)
	return &secureServer{t: t, pki: pki, addr: srv.GRPCAddr(), boot: controlplane.BootstrapToken(t, srv), files: pki.Files(security.RoleClient, "cli", "")}
}

// run runs the CLI with the client certificate and, when token is set, the token.
func (s *secureServer) run(stdin, token string, args ...string) (string, string, int) {
	s.t.Helper()
	g := []string{"--server", s.addr, "--tls-cert", s.files.Cert, "--tls-key", s.files.Key, "--tls-ca", s.files.CA, "--timeout", "10s"}
	if token != "" {
		g = append(g, "--token", token)
	}
	return cli(s.t, stdin, append(g, args...)...)
}

// must runs the CLI and fails the test unless it exits 0.
func (s *secureServer) must(stdin, token string, args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(stdin, token, args...)
	if code != 0 {
		s.t.Fatalf("meshfed %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// refused runs the CLI and fails the test unless it exits 1 with an error
// containing want.
func (s *secureServer) refused(want, stdin, token string, args ...string) {
	s.t.Helper()
	out, errOut, code := s.run(stdin, token, args...)
	if code != 1 || !strings.Contains(errOut, want) {
		s.t.Fatalf("meshfed %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(args, " "), code, out, errOut, want)
	}
}

// tenantObjects are two clusters, and tenants acme (namespace etl) and
// other (namespace x).
const tenantObjects = twoClusters + `apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: acme}
spec: {admins: [alice]}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: etl, tenant: acme}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: other}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: x, tenant: other}
`

// meshIn is a one-function mesh named wc in tenant/namespace.
func meshIn(tenant, namespace string) string {
	return fmt.Sprintf(`
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: wc, tenant: %[1]s, namespace: %[2]s}
spec:
  functions:
    - name: split
      runtime: {builtin: word-split}
      input: {cluster: a, topics: ["persistent://%[1]s/%[2]s/in"]}
      output: {cluster: b, topic: "persistent://%[1]s/%[2]s/out"}
`, tenant, namespace)
}

// createdToken is the JSON of token create -o json.
type createdToken struct {
	Token struct {
		ID, Subject, Role, Tenant, Namespace string
		Expires                              *string
	}
	Secret string
}

func createToken(s *secureServer, token string, args ...string) createdToken {
	s.t.Helper()
	out := s.must("", token, append([]string{"token", "create", "-o", "json"}, args...)...)
	var ct createdToken
	if err := json.Unmarshal([]byte(out), &ct); err != nil {
		s.t.Fatalf("token create -o json: %v\n%s", err, out)
	}
	if ct.Token.ID == "" || !strings.HasPrefix(ct.Secret, "mft1.") {
		s.t.Fatalf("token create -o json printed no id or secret:\n%s", out)
	}
	return ct
}

// TestTokens issues a tenant-admin token with the bootstrap token, uses it
// within its tenant and is refused outside it, lists it, revokes it, and
// checks that calls without a token or with an expired one are refused.
func TestTokens(t *testing.T) {
	s := newSecureServer(t)
	s.must(tenantObjects, s.boot, "apply", "-f", "-")

	// Create, in each output format.
	alice := createToken(s, s.boot, "--subject", "alice", "--role", "tenant-admin", "--tenant", "acme", "--description", "acme's admin")
	if alice.Token.Role != "tenant-admin" || alice.Token.Tenant != "acme" || alice.Token.Expires != nil {
		t.Fatalf("alice's token record: %+v", alice.Token)
	}
	out := s.must("", s.boot, "token", "create", "--subject", "bob", "--role", "namespace-developer", "--tenant", "acme", "--namespace", "etl", "--ttl", "720h")
	var bob string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "secret: "); ok {
			bob = v
		}
	}
	if !strings.HasPrefix(bob, "mft1.") || !strings.Contains(out, "namespace-developer") || !strings.Contains(out, "acme/etl") || !strings.Contains(out, "shown only this once") {
		t.Fatalf("token create (table) output:\n%s", out)
	}
	carol := strings.TrimSpace(s.must("", s.boot, "token", "create", "--subject", "carol", "--role", "viewer", "-o", "secret"))
	if !strings.HasPrefix(carol, "mft1.") || strings.Contains(carol, "\n") {
		t.Fatalf("token create -o secret printed %q, want only the secret", carol)
	}

	// Alice administers acme, and only acme.
	s.must(meshIn("acme", "etl"), alice.Secret, "apply", "-f", "-")
	if out := s.must("", alice.Secret, "get", "mesh", "acme/etl/wc"); !strings.Contains(out, "acme/etl/wc") {
		t.Fatalf("alice's get:\n%s", out)
	}
	s.refused(`tenant-admin "alice" of acme may not functionmesh.write in other/x: outside the principal's scope`,
		meshIn("other", "x"), alice.Secret, "apply", "-f", "-")
	s.refused(`may not token.create in other`, "", alice.Secret, "token", "create", "--subject", "mallory", "--role", "tenant-admin", "--tenant", "other")
	s.refused(`tenant-admin "alice" of acme may not token.create`, "", alice.Secret, "token", "create", "--subject", "mallory", "--role", "superuser")
	// Carol, a viewer, reads but does not write.
	s.must("", carol, "get", "meshes")
	s.refused(`a viewer only reads`, meshIn("acme", "etl"), carol, "apply", "-f", "-")

	// Bob presents his token from a file, and then from the environment.
	file := filepath.Join(t.TempDir(), "bob.token")
	if err := os.WriteFile(file, []byte(bob+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.must(meshIn("acme", "etl"), "", "--token-file", file, "apply", "-f", "-")
	t.Setenv("MESHFED_TOKEN", bob)
	s.must("", "", "get", "mesh", "acme/etl/wc")
	s.refused("outside the principal's scope", meshIn("other", "x"), "", "apply", "-f", "-")
	t.Setenv("MESHFED_TOKEN", "")

	// The superuser lists every token; alice only acme's.
	out = s.must("", s.boot, "token", "list")
	for _, want := range []string{alice.Token.ID, "alice", "tenant-admin", "bootstrap superuser token", "carol", "active", "acme's admin"} {
		if !strings.Contains(out, want) {
			t.Errorf("token list lacks %q:\n%s", want, out)
		}
	}
	out = s.must("", alice.Secret, "token", "list")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || strings.Contains(out, "carol") || strings.Contains(out, "bootstrap superuser token") {
		t.Errorf("alice's token list should hold acme's tokens only:\n%s", out)
	}
	// A JSON list is one array.
	var list []struct{ ID, Subject string }
	if err := json.Unmarshal([]byte(s.must("", s.boot, "token", "list", "--tenant", "acme", "-o", "json")), &list); err != nil || len(list) != 2 {
		t.Errorf("token list --tenant acme -o json: %v, %+v", err, list)
	}

	// Revoked: the next call with it is refused, and says why.
	if out := s.must("", s.boot, "token", "revoke", alice.Token.ID); !strings.Contains(out, "revoked token "+alice.Token.ID) {
		t.Fatalf("token revoke: %s", out)
	}
	s.refused("revoked", "", alice.Secret, "get", "mesh", "acme/etl/wc")
	if out := s.must("", s.boot, "token", "list"); strings.Contains(out, alice.Token.ID) {
		t.Errorf("token list shows a revoked token without --all:\n%s", out)
	}
	if out := s.must("", s.boot, "token", "list", "--all"); !strings.Contains(out, "revoked") {
		t.Errorf("token list --all does not show the revoked token:\n%s", out)
	}
	s.refused("does not exist", "", s.boot, "token", "revoke", "no-such-token")

	// No token: the error says how to pass one.
	s.refused("pass --token", "", "", "get", "clusters")

	// Break glass: a server certificate is a superuser without a token, so
	// whoever holds one can issue a token when every superuser token is lost.
	sf := s.pki.Files(security.RoleServer, "s1", "")
	if _, errOut, code := cli(t, "", "--server", s.addr, "--tls-cert", sf.Cert, "--tls-key", sf.Key, "--tls-ca", sf.CA,
		"token", "create", "--subject", "rescue", "--role", "superuser", "--ttl", "1h", "-o", "secret"); code != 0 {
		t.Fatalf("token create with a server certificate: exit %d: %s", code, errOut)
	}

	// Expired: refused once its TTL passes.
	short := createToken(s, s.boot, "--subject", "temp", "--role", "viewer", "--ttl", "1s")
	if short.Token.Expires == nil {
		t.Fatalf("a token with --ttl 1s has no expiry: %+v", short.Token)
	}
	controlplane.WaitFor(t, 15*time.Second, func() error {
		_, errOut, code := s.run("", short.Secret, "get", "clusters")
		if code == 1 && strings.Contains(errOut, "expired") {
			return nil
		}
		return fmt.Errorf("exit %d, stderr %q", code, errOut)
	})
	if out := s.must("", s.boot, "token", "list", "--all"); !strings.Contains(out, "expired") {
		t.Errorf("token list --all does not show the expired token:\n%s", out)
	}
}

// TestTokenUsage checks the command-line errors of token, which exit 2
// without reaching a server.
func TestTokenUsage(t *testing.T) {
	for _, args := range [][]string{
		{"token"},
		{"token", "create"},
		{"token", "create", "--subject", "a"},
		{"token", "create", "--subject", "a", "--role", "viewer", "-o", "yaml"},
		{"token", "create", "--subject", "a", "--role", "viewer", "--ttl", "-1h"},
		{"token", "revoke"},
		{"token", "revoke", "a", "b"},
		{"token", "list", "-o", "xml"},
		{"token", "list", "extra"},
	} {
		if _, errOut, code := cli(t, "", append([]string{"--server", "127.0.0.1:1"}, args...)...); code != 2 {
			t.Errorf("meshfed %v: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
}

// TestTokenNoAuth checks the error of token create on a server without --auth.
func TestTokenNoAuth(t *testing.T) {
	addr := testServer(t)
	_, errOut, code := cli(t, "", "--server", addr, "token", "create", "--subject", "a", "--role", "viewer")
	if code != 1 || !strings.Contains(errOut, "--auth") {
		t.Fatalf("exit %d, stderr %q; want 1 and a hint to start the servers with --auth", code, errOut)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRevokeEndsWatch checks that `get -w` with a token ends, saying why,
// when the token is revoked.
func TestRevokeEndsWatch(t *testing.T) {
	s := newSecureServer(t)
	s.must(tenantObjects, s.boot, "apply", "-f", "-")
	alice := createToken(s, s.boot, "--subject", "alice", "--role", "tenant-admin", "--tenant", "acme")

	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--server", s.addr, "--tls-cert", s.files.Cert, "--tls-key", s.files.Key, "--tls-ca", s.files.CA,
			"--token", alice.Secret, "get", "meshes", "-w"}, strings.NewReader(""), &out, &errOut)
	}()
	controlplane.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(out.String(), "No functionmeshes found.") {
			return fmt.Errorf("the watch has not listed yet: %q %q", out.String(), errOut.String())
		}
		return nil
	})
	// Revoke over the API: run, which the watch is inside, is not reentrant.
	conn := s.pki.Dial(s.addr, s.files, s.boot)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := meshfedv1.NewTokenServiceClient(conn).RevokeToken(ctx, &meshfedv1.RevokeTokenRequest{Id: alice.Token.ID}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if e := errOut.String(); code != 1 || !strings.Contains(e, "watch functionmeshes: token") || !strings.Contains(e, "revoked") {
			t.Fatalf("get -w after the revocation: exit %d, stderr %q", code, e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("get -w still running 10s after its token was revoked")
	}
}
