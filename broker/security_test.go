package broker

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/meshfed/meshfed/broker/auth"
	"github.com/meshfed/meshfed/internal/testkit"
)

func sendOne(t *testing.T, c pulsar.Client, topic string) error {
	t.Helper()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, SendTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer p.Close()
	_, err = p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("x")})
	return err
}

// TestAuthenticationMethods connects over pulsar+ssl:// with each
// provider and checks refused credentials are refused.
func TestAuthenticationMethods(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, nil)
	adminCert, adminKey := pki.issue(t, "admin", "admin", x509.ExtKeyUsageClientAuth)
	other := newTestPKI(t)
	strangerCert, strangerKey := other.issue(t, "stranger", "admin", x509.ExtKeyUsageClientAuth)
	otherKey, err := auth.NewTokenHS256([]byte("another-key-another-key-another!!"), "admin", time.Time{})
	must(t, "token", err)
	for _, tc := range []struct {
		name string
		url  string
		auth pulsar.Authentication
		ok   bool
	}{
		{"token over TLS", b.ServiceURLTLS(), pulsar.NewAuthenticationToken(testToken(t, "admin", time.Now().Add(time.Hour))), true},
		{"token over plaintext", b.ServiceURL(), pulsar.NewAuthenticationToken(testToken(t, "admin", time.Time{})), true},
		{"client certificate", b.ServiceURLTLS(), pulsar.NewAuthenticationTLS(adminCert, adminKey), true},
		{"basic", b.ServiceURLTLS(), basicAuth(t, "carol", "carol-pw"), false}, // carol has no permission
		{"expired token", b.ServiceURLTLS(), pulsar.NewAuthenticationToken(testToken(t, "admin", time.Now().Add(-time.Minute))), false},
		{"token of another key", b.ServiceURL(), pulsar.NewAuthenticationToken(otherKey), false},
		{"basic wrong password", b.ServiceURL(), basicAuth(t, "carol", "nope"), false},
		{"no credentials", b.ServiceURL(), nil, false},
		{"untrusted certificate", b.ServiceURLTLS(), pulsar.NewAuthenticationTLS(strangerCert, strangerKey), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := 5 * time.Second
			if !tc.ok {
				timeout = time.Second // the client retries a refused connection until then
			}
			err := sendOne(t, secureClientTimeout(t, tc.url, pki, tc.auth, timeout), "persistent://public/default/auth-methods")
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// Basic authentication gives the role its permissions.
	admin := secureAdmin(t, b, pki, testToken(t, "admin", time.Time{}))
	ns, _ := utils.GetNamespaceName("public/default")
	must(t, "grant carol", admin.Namespaces().GrantNamespacePermission(*ns, "carol", []utils.AuthAction{"produce"}))
	must(t, "basic after grant", sendOne(t, secureClient(t, b.ServiceURLTLS(), pki, basicAuth(t, "carol", "carol-pw")),
		"persistent://public/default/auth-methods"))
}

// TestLookupReturnsTLSURL checks binary and HTTP lookups name the TLS
// listener.
func TestLookupReturnsTLSURL(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, nil)
	if !strings.HasPrefix(b.ServiceURLTLS(), "pulsar+ssl://127.0.0.1:") || !strings.HasPrefix(b.AdminURLTLS(), "https://127.0.0.1:") {
		t.Fatalf("TLS URLs %q %q", b.ServiceURLTLS(), b.AdminURLTLS())
	}
	// The client over https:// looks up through HTTP and then dials the
	// brokerUrlTls it is given.
	c := secureClient(t, b.AdminURLTLS(), pki, pulsar.NewAuthenticationToken(testToken(t, "admin", time.Time{})))
	must(t, "produce via HTTP lookup", sendOne(t, c, "persistent://public/default/lookup-tls"))
	req, _ := http.NewRequest(http.MethodGet, b.AdminURL()+"/lookup/v2/topic/persistent/public/default/x", nil)
	req.Header.Set("Authorization", "Bearer "+testToken(t, "admin", time.Time{}))
	resp, err := http.DefaultClient.Do(req)
	must(t, "lookup", err)
	var lr map[string]string
	must(t, "decode", json.NewDecoder(resp.Body).Decode(&lr))
	resp.Body.Close()
	if lr["brokerUrlTls"] != b.ServiceURLTLS() || lr["httpUrlTls"] != b.AdminURLTLS() {
		t.Fatalf("lookup answer %v", lr)
	}
}

// TestHTTPErrors checks the admin API answers 401 and 403 with Pulsar's
// {"reason": ...} body.
func TestHTTPErrors(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, nil)
	for _, tc := range []struct {
		name, header string
		code         int
		reason       string
	}{
		{"no credentials", "", 401, "credentials required"},
		{"bad token", "Bearer abc.def.ghi", 401, "malformed token"},
		{"expired token", "Bearer " + testToken(t, "admin", time.Now().Add(-time.Second)), 401, "expired"},
		{"not a tenant admin", "Bearer " + testToken(t, "bob", time.Time{}), 403, `role "bob"`},
		{"superuser", "Bearer " + testToken(t, "admin", time.Time{}), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, b.AdminURL()+"/admin/v2/namespaces/public", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, "get", err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, body, tc.code)
			}
			if tc.reason != "" {
				var e struct{ Reason string }
				if json.Unmarshal(body, &e) != nil || !strings.Contains(e.Reason, tc.reason) {
					t.Fatalf("body %s, want a reason with %q", body, tc.reason)
				}
			}
		})
	}
}

// TestPermissionsGrantRevoke grants a role produce and consume with
// pulsaradmin, revokes it while its producer and consumer are connected
// (they are closed and their reconnection refused), and grants it back
// (the same producer resumes).
func TestPermissionsGrantRevoke(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, nil)
	admin := secureAdmin(t, b, pki, testToken(t, "admin", time.Time{}))
	ns, _ := utils.GetNamespaceName("public/default")
	const topic = "persistent://public/default/perm"
	alice := secureClient(t, b.ServiceURLTLS(), pki, pulsar.NewAuthenticationToken(testToken(t, "alice", time.Time{})))

	_, err := alice.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err == nil || !strings.Contains(err.Error(), "AuthorizationError") {
		t.Fatalf("producer before the grant: %v, want an authorization error", err)
	}
	must(t, "grant", admin.Namespaces().GrantNamespacePermission(*ns, "alice",
		[]utils.AuthAction{"produce", "consume"}))
	perms, err := admin.Namespaces().GetNamespacePermissions(*ns)
	must(t, "get permissions", err)
	if len(perms["alice"]) != 2 {
		t.Fatalf("permissions %v", perms)
	}
	p, err := alice.CreateProducer(pulsar.ProducerOptions{Topic: topic, SendTimeout: 30 * time.Second})
	must(t, "producer", err)
	defer p.Close()
	cons, err := alice.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
	must(t, "subscribe", err)
	defer cons.Close()
	_, err = p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("before")})
	must(t, "send", err)

	must(t, "revoke", admin.Namespaces().RevokeNamespacePermission(*ns, "alice"))
	testkit.Eventually(t, waitTimeout, "producer and consumer closed", func() bool {
		st, err := b.Stats(topic)
		return err == nil && len(st.Publishers) == 0 && st.Subscriptions["s"] != nil && len(st.Subscriptions["s"].Consumers) == 0
	})
	if _, err := alice.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), "AuthorizationError") {
		t.Fatalf("producer after revoke: %v, want an authorization error", err)
	}
	// The closed producer keeps retrying; granted again, it resumes.
	must(t, "grant again", admin.Namespaces().GrantNamespacePermission(*ns, "alice", []utils.AuthAction{"produce", "consume"}))
	_, err = p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("after")})
	must(t, "send after grant", err)
	// "before" may come twice: it was in the closed consumer's queue,
	// unacknowledged, and is redelivered (at least once, as in Pulsar).
	seen := map[string]int{}
	for seen["after"] == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := cons.Receive(ctx)
		cancel()
		must(t, "receive", err)
		seen[string(m.Payload())]++
		must(t, "ack", cons.Ack(m))
	}
	if seen["before"] == 0 {
		t.Fatalf("received %v, want before and after", seen)
	}
	// A role without tenant admin cannot change permissions.
	bob := secureAdmin(t, b, pki, testToken(t, "bob", time.Time{}))
	wantCode(t, "bob grants", bob.Namespaces().GrantNamespacePermission(*ns, "bob", []utils.AuthAction{"produce"}), 403)
}

// TestHealthCheckSecured runs the health check's round trip on a broker
// that has only a TLS listener requiring trusted client certificates, with
// authentication and authorization on.
func TestHealthCheckSecured(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, func(c *Config) {
		c.DisablePlaintext = true
		c.TLS.RequireTrustedClientCert = true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, "health check", b.HealthCheck(ctx))
}

func basicAuth(t *testing.T, user, pw string) pulsar.Authentication {
	t.Helper()
	a, err := pulsar.NewAuthenticationBasic(user, pw)
	must(t, "basic auth", err)
	return a
}

// TestTokenExpiryOnOpenConnection checks a connection whose token expires
// is challenged: a client with a fresh token keeps its connection, one
// that can only offer the expired token loses it.
func TestTokenExpiryOnOpenConnection(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, nil)
	const topic = "persistent://public/default/expiry"
	fresh := secureClient(t, b.ServiceURL(), pki, pulsar.NewAuthenticationTokenFromSupplier(func() (string, error) {
		return testToken(t, "admin", time.Now().Add(2*time.Second)), nil
	}))
	stale := secureClient(t, b.ServiceURL(), pki, pulsar.NewAuthenticationToken(testToken(t, "admin", time.Now().Add(2*time.Second))))
	pf, err := fresh.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "fresh"})
	must(t, "fresh producer", err)
	defer pf.Close()
	ps, err := stale.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "stale"})
	must(t, "stale producer", err)
	defer ps.Close()
	// Once the stale token expired, only the fresh producer stays.
	testkit.Eventually(t, 15*time.Second, "the stale connection closed", func() bool {
		st, err := b.Stats(topic)
		if err != nil || len(st.Publishers) != 1 {
			return false
		}
		return st.Publishers[0].ProducerName == "fresh"
	})
	_, err = pf.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("still here")})
	must(t, "send with refreshed token", err)
}

// TestTenantAdminRemoved checks a role dropped from a tenant's adminRoles
// loses its producers there.
func TestTenantAdminRemoved(t *testing.T) {
	pki := newTestPKI(t)
	b := secureBroker(t, pki, nil)
	admin := secureAdmin(t, b, pki, testToken(t, "admin", time.Time{}))
	must(t, "tenant", admin.Tenants().Create(utils.TenantData{Name: "t2", AdminRoles: []string{"dave"}, AllowedClusters: []string{"standalone"}}))
	must(t, "namespace", admin.Namespaces().CreateNamespace("t2/ns"))
	dave := secureClient(t, b.ServiceURL(), pki, pulsar.NewAuthenticationToken(testToken(t, "dave", time.Time{})))
	const topic = "persistent://t2/ns/x"
	p, err := dave.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	must(t, "tenant admin produces", err)
	defer p.Close()
	must(t, "drop dave", admin.Tenants().Update(utils.TenantData{Name: "t2", AdminRoles: []string{}, AllowedClusters: []string{"standalone"}}))
	testkit.Eventually(t, waitTimeout, "dave's producer closed", func() bool {
		st, err := b.Stats(topic)
		return err == nil && len(st.Publishers) == 0
	})
}
