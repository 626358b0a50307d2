package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	"github.com/meshfed/meshfed/broker"
	brokerauth "github.com/meshfed/meshfed/broker/auth"
	"github.com/meshfed/meshfed/controlplane"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/security"
)

// secureBroker is a broker that speaks only TLS and requires tokens, with
// authorization on and superuser "admin"; dir holds its CA (ca.pem) and
// token secret.
type secureBroker struct {
	b      *broker.Broker
	dir    string
	ca     string
	secret []byte
}

func startSecureBroker(t *testing.T, cluster string) *secureBroker {
	t.Helper()
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	if err := security.CreateCA(caDir, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := security.IssueCert(caDir, filepath.Join(dir, "broker"), security.CertRequest{Role: security.RoleServer, Name: "broker-" + cluster, Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	s := &secureBroker{dir: dir, ca: filepath.Join(caDir, security.CACertFile), secret: make([]byte, 32)}
	if _, err := rand.Read(s.secret); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(secretFile, s.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{DataDir: filepath.Join(dir, "data"), DisablePlaintext: true, HTTPAddr: "",
		TLSListenAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", AdvertisedAddr: "localhost", ClusterName: cluster, DeduplicationDefault: true,
		TLS:           broker.TLSConfig{CertFile: filepath.Join(dir, "broker.pem"), KeyFile: filepath.Join(dir, "broker-key.pem"), TrustCertsFile: s.ca},
		Auth:          broker.AuthConfig{Enabled: true, Providers: brokerauth.Config{Providers: []string{"token", "tls"}, TokenSecretKey: "file://" + secretFile}},
		Authorization: broker.AuthorizationConfig{Enabled: true, SuperUserRoles: []string{"admin"}},
		Logger:        quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s.b = b
	return s
}

// tokenFile writes a token of role into the broker's dir.
func (s *secureBroker) tokenFile(t *testing.T, role string) string {
	t.Helper()
	tok, err := brokerauth.NewTokenHS256(s.secret, role, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(s.dir, role+".token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// adminCreds are the superuser's credentials.
func (s *secureBroker) adminCreds(t *testing.T) *pulsarauth.Credentials {
	t.Helper()
	a, err := objects.ParseClusterAuth(&meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + s.tokenFile(t, "admin"), TlsTrustCertsFilePath: s.ca}, objects.AuthInObject)
	if err != nil {
		t.Fatal(err)
	}
	return pulsarauth.New(a)
}

// TestSecuredClusterDegradedWhenPermissionRevoked runs a function on a
// cluster whose broker requires TLS and tokens, with the agent's token
// from a file; revoking the agent role's namespace permission makes the
// cluster Degraded naming the token file, granting it back resumes, and
// every input has its output.
func TestSecuredClusterDegradedWhenPermissionRevoked(t *testing.T) {
	sb := startSecureBroker(t, "a")
	agentToken := sb.tokenFile(t, "agent-a")
	srv := controlplane.TestServer(t, func(c *controlplane.Config) {
		c.AgentLease, c.AgentTTL = 2*time.Second, 3*time.Second
		c.HeartbeatInterval, c.SchedulerInterval = 200*time.Millisecond, 200*time.Millisecond
	})
	controlplane.WaitForLeader(t, srv)
	f := &testFed{srv: srv, brokers: map[string]*broker.Broker{"a": sb.b}}
	f.apply(t,
		objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}, Spec: &meshfedv1.ClusterSpec{
			ServiceUrl: sb.b.ServiceURLTLS(), AdminUrl: sb.b.AdminURLTLS(),
			Auth: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + agentToken, TlsTrustCertsFilePath: sb.ca}}}),
		objects.Wrap(&meshfedv1.Tenant{Metadata: &meshfedv1.ObjectMeta{Name: "public"}}),
		objects.Wrap(&meshfedv1.Namespace{Metadata: &meshfedv1.ObjectMeta{Name: "default", Tenant: "public"}}))
	admin := sb.adminCreds(t)
	adm, err := admin.AdminClient(sb.b.AdminURLTLS())
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := utils.GetNamespaceName("public/default")
	all := []utils.AuthAction{"produce", "consume", "functions"}
	grant := func() {
		t.Helper()
		if err := adm.Namespaces().GrantNamespacePermission(*ns, "agent-a", all); err != nil {
			t.Fatalf("grant: %v", err)
		}
	}
	grant()
	opts, err := admin.ClientOptions(sb.b.ServiceURLTLS())
	if err != nil {
		t.Fatal(err)
	}
	opts.OperationTimeout, opts.Logger = 10*time.Second, plog.NewLoggerWithSlog(quiet())
	client, err := pulsar.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	f.startAgent(t, "agent-a", "a", t.TempDir())
	f.apply(t, meshObj("m", builtinFn("excl", "exclamation", "a", "persistent://public/default/in", "a", "persistent://public/default/out", "atleast_once")))
	produce(t, client, "persistent://public/default/in", 0, 100)
	if got := distinct(drain(t, client, "persistent://public/default/out", 100, 30*time.Second)); got != 100 {
		t.Fatalf("%d distinct outputs before the revocation, want 100", got)
	}
	health := func() (string, string) {
		o, _, err := srv.State().Get("Cluster", "", "", "a")
		if err != nil {
			return "", err.Error()
		}
		return o.GetCluster().GetStatus().GetHealth(), o.GetCluster().GetStatus().GetReason()
	}
	if h, why := health(); h != federation.Healthy {
		t.Fatalf("cluster a is %s (%s) before the revocation", h, why)
	}

	revoked := time.Now()
	if err := adm.Namespaces().RevokeNamespacePermission(*ns, "agent-a"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	produce(t, client, "persistent://public/default/in", 100, 100)
	var reason string
	controlplane.WaitFor(t, 60*time.Second, func() error {
		h, why := health()
		if h != federation.Degraded {
			return fmt.Errorf("cluster a is %s (%s), want Degraded", h, why)
		}
		reason = why
		return nil
	})
	toDegraded := time.Since(revoked)
	if !strings.Contains(reason, "token from file://"+agentToken) || !strings.Contains(reason, "authorization refused") {
		t.Fatalf("Degraded reason %q does not name the token file and the refusal", reason)
	}
	granted := time.Now()
	grant()
	controlplane.WaitFor(t, 120*time.Second, func() error {
		if h, why := health(); h != federation.Healthy {
			return fmt.Errorf("cluster a is %s (%s), want Healthy", h, why)
		}
		return nil
	})
	toHealthy := time.Since(granted)
	out := drain(t, client, "persistent://public/default/out", 200, 120*time.Second)
	resumed := time.Since(granted)
	if got := distinct(out); got != 200 {
		t.Fatalf("%d distinct outputs after the grant, want 200 (nothing lost)", got)
	}
	t.Logf("revoked -> Degraded in %s (reason %q); granted -> Healthy in %s, all 200 outputs in %s (%d outputs read, duplicates included)",
		toDegraded.Round(time.Millisecond), reason, toHealthy.Round(time.Millisecond), resumed.Round(time.Millisecond), len(out))
}

func distinct(s []string) int {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return len(m)
}

// TestOAuth2RefusedByIssuerDegrades: an agent whose OAuth2 issuer refuses
// its client credentials reports its cluster Degraded, naming the
// credentials file and the issuer; once the issuer accepts them, the
// cluster is Healthy again.
func TestOAuth2RefusedByIssuerDegrades(t *testing.T) {
	sb := startSecureBroker(t, "a")
	var accept atomic.Bool
	mux := http.NewServeMux()
	var issuer string
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, issuer, issuer+"/token")
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() || r.FormValue("client_secret") != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"client disabled"}`)
			return
		}
		tok, _ := brokerauth.NewTokenHS256(sb.secret, "agent-a", time.Now().Add(time.Hour))
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	issuer = hs.URL
	creds := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(creds, []byte(`{"type":"client_credentials","client_id":"agent-a","client_secret":"s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := controlplane.TestServer(t, func(c *controlplane.Config) {
		c.AgentLease, c.AgentTTL = 2*time.Second, 3*time.Second
		c.HeartbeatInterval, c.SchedulerInterval = 200*time.Millisecond, 200*time.Millisecond
	})
	controlplane.WaitForLeader(t, srv)
	f := &testFed{srv: srv, brokers: map[string]*broker.Broker{"a": sb.b}}
	f.apply(t, objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: "a"}, Spec: &meshfedv1.ClusterSpec{
		ServiceUrl: sb.b.ServiceURLTLS(),
		Auth: &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: fmt.Sprintf(`{"issuerUrl":%q,"privateKey":"file://%s"}`, issuer, creds),
			TlsTrustCertsFilePath: sb.ca}}}))
	adm, err := sb.adminCreds(t).AdminClient(sb.b.AdminURLTLS())
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := utils.GetNamespaceName("public/default")
	if err := adm.Namespaces().GrantNamespacePermission(*ns, "agent-a", []utils.AuthAction{"produce", "consume"}); err != nil {
		t.Fatal(err)
	}
	f.startAgent(t, "agent-a", "a", t.TempDir())
	health := func(want string) string {
		var reason string
		controlplane.WaitFor(t, 30*time.Second, func() error {
			o, _, err := srv.State().Get("Cluster", "", "", "a")
			if err != nil {
				return err
			}
			st := o.GetCluster().GetStatus()
			reason = st.GetReason()
			if st.GetHealth() != want {
				return fmt.Errorf("cluster a is %s (%s), want %s", st.GetHealth(), st.GetReason(), want)
			}
			return nil
		})
		return reason
	}
	reason := health(federation.Degraded)
	if !strings.Contains(reason, "OAuth2 client credentials from file://"+creds+" (issuer "+issuer+")") {
		t.Fatalf("Degraded reason %q does not name the credentials file and the issuer", reason)
	}
	accept.Store(true)
	health(federation.Healthy)
	t.Logf("refused: %s", reason)
}

// TestProbeNamesRefusedCredentials: against a broker requiring TLS and
// tokens, each wrong credential is a refusal (the broker counts as
// reachable) whose text names the credential and says what went wrong.
func TestProbeNamesRefusedCredentials(t *testing.T) {
	sb := startSecureBroker(t, "a")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other, _ := brokerauth.NewTokenHS256([]byte("another-secret-another-secret-32"), "agent-a", time.Time{})
	expired, _ := brokerauth.NewTokenHS256(sb.secret, "agent-a", time.Now().Add(-time.Minute))
	otherCA := filepath.Join(dir, "other-ca")
	if err := security.CreateCA(otherCA, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := security.IssueCert(otherCA, filepath.Join(dir, "stranger"), security.CertRequest{Role: security.RoleClient, Name: "agent-a", Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		auth *meshfedv1.ClusterAuth
		want []string
	}{
		{"token signed with another key", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + write("other.token", other), TlsTrustCertsFilePath: sb.ca},
			[]string{"token from file://" + filepath.Join(dir, "other.token"), "authentication refused by cluster a"}},
		{"expired token", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + write("expired.token", expired), TlsTrustCertsFilePath: sb.ca},
			[]string{"token from file://" + filepath.Join(dir, "expired.token") + ": expired at"}},
		{"broker certificate not trusted", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + sb.tokenFile(t, "agent-a")},
			[]string{"TLS handshake failed with cluster a", "unknown authority"}},
		{"client certificate of another CA", &meshfedv1.ClusterAuth{AuthPlugin: "tls",
			AuthParams: fmt.Sprintf("tlsCertFile:%s,tlsKeyFile:%s", filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger-key.pem")), TlsTrustCertsFilePath: sb.ca},
			[]string{"TLS client certificate file://" + filepath.Join(dir, "stranger.pem"), "TLS handshake failed with cluster a", "unknown certificate authority"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := probeAgent(t, sb.b.ServiceURLTLS(), sb.b.AdminURLTLS())
			a.clusters["a"].Spec.Auth = c.auth
			a.probe.timeout = 3 * time.Second
			if !a.probe.check(context.Background()) {
				t.Fatal("a refused credential made the broker unreachable")
			}
			got := a.refusals.reason("a")
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Fatalf("refusal %q does not contain %q", got, w)
				}
			}
			t.Logf("%s", got)
		})
	}
}
