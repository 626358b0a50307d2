//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	brokerauth "github.com/meshfed/meshfed/broker/auth"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/security"
)

// securePulsar is the material of brokers secured as production Pulsar
// clusters are: a CA, a token secret key, and the tokens and certificates
// the test hands out.
type securePulsar struct {
	t      *testing.T
	dir    string
	caDir  string
	ca     string
	secret []byte
	// secretFile holds secret (tokenSecretKey).
	secretFile string
}

func newSecurePulsar(t *testing.T, dir string) *securePulsar {
	t.Helper()
	s := &securePulsar{t: t, dir: dir, caDir: filepath.Join(dir, "ca"), secret: make([]byte, 32), secretFile: filepath.Join(dir, "token-secret.key")}
	s.ca = filepath.Join(s.caDir, security.CACertFile)
	if err := security.CreateCA(s.caDir, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(s.secret); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.secretFile, s.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// token writes a token of role (no expiry) and returns its file.
func (s *securePulsar) token(role string) string {
	s.t.Helper()
	tok, err := brokerauth.NewTokenHS256(s.secret, role, time.Time{})
	if err != nil {
		s.t.Fatal(err)
	}
	f := filepath.Join(s.dir, role+".token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return f
}

// cert issues a certificate; a client certificate's CN is its role.
func (s *securePulsar) cert(role security.Role, name string) (certFile, keyFile string) {
	s.t.Helper()
	out := filepath.Join(s.dir, name)
	if err := security.IssueCert(s.caDir, out, security.CertRequest{Role: role, Name: name, Hosts: []string{"localhost"}, Validity: 24 * time.Hour}); err != nil {
		s.t.Fatal(err)
	}
	return out + ".pem", out + "-key.pem"
}

// credentials parses a ClusterAuth for the test's own clients.
func credentials(t *testing.T, a *meshfedv1.ClusterAuth) *pulsarauth.Credentials {
	t.Helper()
	p, err := objects.ParseClusterAuth(a, objects.AuthInObject)
	if err != nil {
		t.Fatal(err)
	}
	return pulsarauth.New(p)
}

// secureBroker is a `meshfed broker` with TLS listeners only, token and
// TLS authentication, authorization, and superuser role admin.
type secureBroker struct {
	*daemon
	cluster             string
	servicePort, hPort  string
	admin               pulsaradmin.Client
	serviceURL, httpURL string
}

func (f *fed) addSecureBroker(s *securePulsar, name string, adminCreds *pulsarauth.Credentials) *secureBroker {
	f.t.Helper()
	addrs := freeAddrs(f.t, 2)
	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	certFile, keyFile := s.cert(security.RoleServer, "broker-"+name)
	dir := filepath.Join(f.dir, "broker-"+name)
	b := &secureBroker{cluster: name, servicePort: port(addrs[0]), hPort: port(addrs[1])}
	b.serviceURL, b.httpURL = "pulsar+ssl://localhost:"+b.servicePort, "https://localhost:"+b.hPort
	b.daemon = &daemon{t: f.t, name: "broker-" + name, logPath: dir + ".log",
		args: []string{"broker", "--data-dir", dir, "--cluster-name", name, "--deduplication",
			"--bindAddress", "127.0.0.1", "--brokerServicePort=", "--webServicePort=",
			"--brokerServicePortTls", b.servicePort, "--webServicePortTls", b.hPort, "--advertisedAddress", "localhost",
			"--tlsCertificateFilePath", certFile, "--tlsKeyFilePath", keyFile, "--tlsTrustCertsFilePath", s.ca,
			"--authenticationEnabled=true", "--authenticationProviders", "token,tls", "--tokenSecretKey", "file://" + s.secretFile,
			"--authorizationEnabled=true", "--superUserRoles", "admin"}}
	f.order = append(f.order, b.daemon)
	b.start()
	adm, err := adminCreds.AdminClient(b.httpURL)
	if err != nil {
		f.t.Fatal(err)
	}
	b.admin = adm
	testkit.Eventually(f.t, readyTimeout, "secure broker "+name+" to answer its admin API over HTTPS", func() (bool, string) {
		if !b.running() {
			f.t.Fatalf("broker %s exited: %v\n%s", name, b.p.err, b.logTail())
		}
		if _, err := adm.Clusters().List(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	// The test's own client, as the superuser.
	opts, err := adminCreds.ClientOptions(b.serviceURL)
	if err != nil {
		f.t.Fatal(err)
	}
	opts.OperationTimeout, opts.ConnectionTimeout = 30*time.Second, 5*time.Second
	opts.Logger = plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := pulsar.NewClient(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.pc.mu.Lock()
	f.pc.clients[name] = c
	f.pc.mu.Unlock()
	return b
}

// grant gives role produce, consume and functions on public/default.
func (b *secureBroker) grant(role string) {
	b.t.Helper()
	ns, _ := utils.GetNamespaceName("public/default")
	if err := b.admin.Namespaces().GrantNamespacePermission(*ns, role, []utils.AuthAction{"produce", "consume", "functions"}); err != nil {
		b.t.Fatalf("grant %s on cluster %s: %v", role, b.cluster, err)
	}
}

func (b *secureBroker) revoke(role string) {
	b.t.Helper()
	ns, _ := utils.GetNamespaceName("public/default")
	if err := b.admin.Namespaces().RevokeNamespacePermission(*ns, role); err != nil {
		b.t.Fatalf("revoke %s on cluster %s: %v", role, b.cluster, err)
	}
}

// oauth2Server is an OAuth2 authorization server for the client
// credentials flow: its token endpoint issues JWTs of role sub, signed
// with the brokers' token secret key, to the one client it knows.
type oauth2Server struct {
	url                  string
	clientID, secret     string
	issued, refusedCalls atomic.Int64
}

func startOAuth2Server(t *testing.T, s *securePulsar, clientID, clientSecret, role string) *oauth2Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &oauth2Server{url: "http://" + lis.Addr().String(), clientID: clientID, secret: clientSecret}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": o.url, "token_endpoint": o.url + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" ||
			r.Form.Get("client_id") != o.clientID || r.Form.Get("client_secret") != o.secret {
			o.refusedCalls.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "unknown client or wrong secret"})
			return
		}
		tok, err := brokerauth.NewTokenHS256(s.secret, role, time.Now().Add(time.Hour))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		o.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return o
}

// TestSecureFederation: three clusters whose brokers require TLS and
// authentication; agent-a attaches to a with a token file, agent-b to b
// with OAuth2 client credentials (the test's token endpoint issues JWTs
// signed with the brokers' key), agent-c to c with a TLS client
// certificate. A mesh runs a → b → c, so each credential carries data.
// Revoking agent-a's permission on a's namespace makes a Degraded naming
// agent-a's token file; granting it back makes a Healthy again, and every
// input, including those sent while it was revoked, has its output in c.
func TestSecureFederation(t *testing.T) {
	n := messageCount(t, 300) / 2
	f := newFed(t, fedOptions{servers: 1, noAgents: true})
	s := newSecurePulsar(t, filepath.Join(f.dir, "secure"))
	adminCreds := credentials(t, &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + s.token("admin"), TlsTrustCertsFilePath: s.ca})
	brokers := map[string]*secureBroker{}
	for _, c := range []string{"a", "b", "c"} {
		brokers[c] = f.addSecureBroker(s, c, adminCreds)
		if err := brokers[c].admin.Namespaces().CreateNamespace("public/default"); err != nil && !strings.Contains(err.Error(), "409") {
			t.Fatalf("create public/default on %s: %v", c, err)
		}
	}
	// a: a token file. b: OAuth2 client credentials. c: mutual TLS (role = CN).
	tokenA := s.token("agent-a")
	oauth := startOAuth2Server(t, s, "meshfed-agent-b", "s3cret", "agent-b")
	credsB := filepath.Join(s.dir, "agent-b-credentials.json")
	if err := os.WriteFile(credsB, []byte(`{"type":"client_credentials","client_id":"meshfed-agent-b","client_secret":"s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	certC, keyC := s.cert(security.RoleClient, "agent-c")
	brokers["a"].grant("agent-a")
	brokers["b"].grant("agent-b")
	brokers["c"].grant("agent-c")
	auth := map[string]string{
		"a": fmt.Sprintf(`{authPlugin: token, authParams: "file://%s", tlsTrustCertsFilePath: %q}`, tokenA, s.ca),
		"b": fmt.Sprintf(`{authPlugin: oauth2, authParams: '{"issuerUrl":"%s","audience":"meshfed-e2e","privateKey":"file://%s"}', tlsTrustCertsFilePath: %q}`, oauth.url, credsB, s.ca),
		"c": fmt.Sprintf(`{authPlugin: tls, authParams: "tlsCertFile:%s,tlsKeyFile:%s", tlsTrustCertsFilePath: %q}`, certC, keyC, s.ca),
	}
	var docs []string
	for _, c := range []string{"a", "b", "c"} {
		docs = append(docs, fmt.Sprintf("apiVersion: meshfed.io/v1\nkind: Cluster\nmetadata: {name: %s}\nspec:\n  region: region-%s\n  serviceURL: %q\n  adminURL: %q\n  auth: %s\n",
			c, c, brokers[c].serviceURL, brokers[c].httpURL, auth[c]))
	}
	f.apply(strings.Join(docs, "---\n"))
	for _, c := range []string{"a", "b", "c"} {
		f.addAgent("agent-"+c, c, f.srv())
	}
	for _, c := range []string{"a", "b", "c"} {
		f.waitAgentReady("agent-" + c)
	}
	waitHealth := func(cluster, want string, timeout time.Duration) (reason string) {
		t.Helper()
		testkit.Eventually(t, timeout, "cluster "+cluster+" "+want, func() (bool, string) {
			cl, err := f.list(objects.KindCluster)
			if err != nil {
				return false, err.Error()
			}
			for _, o := range cl {
				if c := o.GetCluster(); c.GetMetadata().GetName() == cluster {
					reason = c.GetStatus().GetReason()
					return c.GetStatus().GetHealth() == want, c.GetStatus().GetHealth() + ": " + reason
				}
			}
			return false, "no cluster " + cluster
		})
		return reason
	}
	for _, c := range []string{"a", "b", "c"} {
		waitHealth(c, "Healthy", convergeTimeout)
	}
	f.apply(meshYAML("chain",
		meshFn{name: "ab", runtime: "{builtin: exclamation}", inCluster: "a", inTopic: topicURL("in"), outCluster: "b", outTopic: topicURL("mid")},
		meshFn{name: "bc", runtime: "{builtin: exclamation}", inCluster: "b", inTopic: topicURL("mid"), outCluster: "c", outTopic: topicURL("out")}))
	f.waitRunning("chain", convergeTimeout, map[string]int{"ab": 1, "bc": 1}, map[string]string{"ab": "a", "bc": "b"})
	f.produce(topicURL("in"), 0, n, "a")
	waitOutputs := func(want int, timeout time.Duration) map[string]int {
		t.Helper()
		var got map[string]int
		testkit.Eventually(t, timeout, fmt.Sprintf("%d distinct outputs in c", want), func() (bool, string) {
			got = multiset(f.readAll("c", topicURL("out")))
			return len(got) >= want, fmt.Sprintf("%d distinct outputs", len(got))
		})
		return got
	}
	waitOutputs(n, drainTimeout(n))
	if oauth.issued.Load() == 0 {
		t.Fatal("agent-b never fetched an OAuth2 token")
	}

	// Revoke agent-a's permission on a, keep producing, grant it back.
	revoked := time.Now()
	brokers["a"].revoke("agent-a")
	f.produce(topicURL("in"), n, 2*n, "a")
	reason := waitHealth("a", "Degraded", convergeTimeout)
	toDegraded := time.Since(revoked)
	if !strings.Contains(reason, "token from file://"+tokenA) || !strings.Contains(reason, "refused") {
		t.Fatalf("cluster a Degraded with reason %q: it does not name agent-a's token file and the refusal", reason)
	}
	for _, c := range []string{"b", "c"} {
		waitHealth(c, "Healthy", convergeTimeout)
	}
	// What a processed of the inputs sent after the revocation, before the
	// grant (prefetched ones may be; their acknowledgements are refused).
	whileRevoked := len(multiset(f.readAll("c", topicURL("out")))) - n
	granted := time.Now()
	brokers["a"].grant("agent-a")
	waitHealth("a", "Healthy", 2*time.Minute)
	toHealthy := time.Since(granted)
	got := waitOutputs(2*n, 2*time.Minute+drainTimeout(n))
	resumed := time.Since(granted)
	lost, dups := 0, 0
	for i := 0; i < 2*n; i++ {
		switch c := got[sentence(i)+"!!"]; {
		case c == 0:
			lost++
		case c > 1:
			dups += c - 1
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d inputs have no output in c", lost, 2*n)
	}
	t.Logf("secured federation (token a, OAuth2 b, mutual TLS c; %d OAuth2 tokens issued): %d inputs, %d outputs in c, %d lost, %d duplicates (at-least-once); "+
		"revoked -> a Degraded in %s (%q), %d of the %d inputs sent after the revocation had outputs before the grant; granted -> a Healthy in %s, every output in c %s after the grant",
		oauth.issued.Load(), 2*n, 2*n+dups, lost, dups, toDegraded.Round(time.Millisecond), reason, whileRevoked, n, toHealthy.Round(time.Millisecond), resumed.Round(time.Millisecond))
}
