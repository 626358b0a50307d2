package pulsarauth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func parse(t *testing.T, a *meshfedv1.ClusterAuth) *objects.PulsarAuth {
	t.Helper()
	p, err := objects.ParseClusterAuth(a, objects.AuthInObject)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// jwt builds an unsigned JWT with the given claims (only its exp is read).
func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestTokenReadForEveryConnection(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	c := New(parse(t, &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + f}))
	if _, err := c.token(); err == nil || !strings.Contains(err.Error(), "file://"+f) {
		t.Fatalf("missing file: err %v, want one naming file://%s", err, f)
	}
	if err := os.WriteFile(f, []byte(" first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.token(); err != nil || tok != "first" {
		t.Fatalf("token = %q, %v", tok, err)
	}
	if err := os.WriteFile(f, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, _ := c.token(); tok != "second" {
		t.Fatalf("token after rewrite = %q, want second", tok)
	}
	o, err := c.ClientOptions("pulsar://127.0.0.1:6650")
	if err != nil || o.Authentication == nil || o.TLSConfig != nil {
		t.Fatalf("ClientOptions = %+v, %v: want a token authentication and no TLS", o, err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	expired := write("expired", jwt(fmt.Sprintf(`{"sub":"a","exp":%d}`, now.Add(-time.Minute).Unix())))
	valid := write("valid", jwt(fmt.Sprintf(`{"sub":"a","exp":%d}`, now.Add(time.Hour).Unix())))
	opaque := write("opaque", "not-a-jwt")
	keyOK := write("key.json", `{"type":"client_credentials","client_id":"agent","client_secret":"s"}`)
	keyBad := write("bad.json", `{"type":"client_credentials"}`)
	cases := []struct {
		name string
		auth *meshfedv1.ClusterAuth
		env  map[string]string
		want string // substring of the error; empty: no error
	}{
		{"valid jwt", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + valid}, nil, ""},
		{"opaque token", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + opaque}, nil, ""},
		{"expired jwt", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + expired}, nil,
			"token from file://" + expired + ": expired at 2026-12-03T11:59:00Z"},
		{"missing file", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file:///nonexistent/t"}, nil,
			"file:///nonexistent/t: open: no such file or directory"},
		{"env unset", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "env:PULSAR_TOKEN"}, nil,
			"env:PULSAR_TOKEN: the environment variable is not set on this host"},
		{"env set", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "env:PULSAR_TOKEN"}, map[string]string{"PULSAR_TOKEN": "t"}, ""},
		{"oauth2 ok", &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: `{"issuerUrl":"https://auth.example","privateKey":"file://` + keyOK + `"}`}, nil, ""},
		{"oauth2 no client id", &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: `{"issuerUrl":"https://auth.example","privateKey":"file://` + keyBad + `"}`}, nil,
			`OAuth2 client credentials file://` + keyBad + `: no "client_id"`},
		{"trust file missing", &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: "/nonexistent/ca.pem"}, nil,
			"trusted CA file /nonexistent/ca.pem: open: no such file or directory"},
		{"trust file not PEM", &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: opaque}, nil, "no PEM certificate in it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(parse(t, tc.auth))
			c.getenv = func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			err := c.Check(now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
			if k, ok := Refused(err); !ok || k != KindCredential {
				t.Fatalf("Refused(%v) = %q, %v; want %q", err, k, ok, KindCredential)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	cases := []struct {
		err  error
		kind string
	}{
		{errors.New("server error: AuthorizationError: role agent-a may not consume public/default"), KindAuthorization},
		{fmt.Errorf("subscribe: %w", errors.New("AuthorizationError")), KindAuthorization},
		{errors.New("server error: AuthenticationError: token expired"), KindAuthentication},
		{fmt.Errorf("health: %w", rest.Error{Code: 401, Reason: "token expired"}), KindAuthentication},
		{rest.Error{Code: 403, Reason: "not authorized"}, KindAuthorization},
		{&CredentialError{Credential: "x", Err: errors.New("gone")}, KindCredential},
		{fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), KindTLS},
		{errors.New("remote error: tls: unknown certificate authority"), KindTLS},
		{errors.New("connection error"), ""},
		{rest.Error{Code: 500}, ""},
		{nil, ""},
	}
	for _, tc := range cases {
		k, ok := Refused(tc.err)
		if ok != (tc.kind != "") || k != tc.kind {
			t.Errorf("Refused(%v) = %q, %v; want %q", tc.err, k, ok, tc.kind)
		}
	}
}

// TestAdminClientPresentsCredential runs pulsaradmin calls against an HTTPS
// server that records the Authorization header and client certificate.
func TestAdminClientPresentsCredential(t *testing.T) {
	var gotAuth string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if gotAuth == "Bearer bad" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"reason":"token refused"}`)
			return
		}
		fmt.Fprint(w, `["public/default"]`)
	}))
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(parse(t, &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + tokenFile, TlsTrustCertsFilePath: ca}))
	adm, err := c.AdminClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := adm.Namespaces().GetNamespacesWithContext(ctx, "public"); err != nil {
		t.Fatalf("GetNamespaces: %v", err)
	}
	if gotAuth != "Bearer good" {
		t.Fatalf("Authorization = %q, want Bearer good", gotAuth)
	}
	// The token is read for every request: a rewritten file is used next.
	if err := os.WriteFile(tokenFile, []byte("bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = adm.Namespaces().GetNamespacesWithContext(ctx, "public")
	if k, ok := Refused(err); !ok || k != KindAuthentication {
		t.Fatalf("with a refused token: err %v (kind %q), want %s", err, k, KindAuthentication)
	}
	// httptest's certificate names 127.0.0.1 and example.com, not localhost.
	local := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	strict, _ := New(parse(t, &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: ca})).AdminClient(local)
	_, err = strict.Namespaces().GetNamespacesWithContext(ctx, "public")
	if k, ok := Refused(err); !ok || k != KindTLS {
		t.Fatalf("hostname verification: err %v (kind %q), want %s", err, k, KindTLS)
	}
	off := false
	lax, _ := New(parse(t, &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: ca, TlsEnableHostnameVerification: &off})).AdminClient(local)
	if _, err := lax.Namespaces().GetNamespacesWithContext(ctx, "public"); err != nil {
		t.Fatalf("without hostname verification: %v", err)
	}
	// Without the CA the chain does not verify, hostname verification or not.
	untrusted, _ := New(parse(t, &meshfedv1.ClusterAuth{TlsEnableHostnameVerification: &off})).AdminClient(local)
	if _, err := untrusted.Namespaces().GetNamespacesWithContext(ctx, "public"); err == nil {
		t.Fatal("an untrusted broker certificate was accepted")
	}
}
