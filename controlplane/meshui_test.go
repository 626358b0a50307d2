package controlplane

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane/meshui"
)

// The mesh page's data is served to the callers the Functions REST API
// accepts (a bearer token over TLS with --auth); the page itself holds no
// data and is served to anyone.
func TestMeshPageAuthenticatesAsTheRESTAPI(t *testing.T) {
	pki := NewTestPKI(t)
	s := TestServer(t, pki.SecureConfig)
	WaitForLeader(t, s)
	token := BootstrapToken(t, s)
	caPEM, err := os.ReadFile(s.cfg.TLS.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := "https://" + s.HTTPAddr()
	if code, body := get(tlsClient, base+meshui.Prefix, ""); code != http.StatusOK || !strings.Contains(body, "app.js") {
		t.Errorf("the page without a token: %d %.80s", code, body)
	}
	for _, tt := range []struct {
		name   string
		client *http.Client
		url    string
		token  string
		code   int
		reason string
	}{
		{"token in plaintext", &http.Client{Timeout: 10 * time.Second}, "http://" + s.HTTPAddr() + meshui.APIPath, token, http.StatusUnauthorized, "requires TLS"},
		{"no token", tlsClient, base + meshui.APIPath, "", http.StatusUnauthorized, "bearer token"},
		{"forged token", tlsClient, base + meshui.APIPath, "mft1.forged", http.StatusUnauthorized, "token refused"},
		{"bootstrap token", tlsClient, base + meshui.APIPath, token, http.StatusOK, ""},
	} {
		code, body := get(tt.client, tt.url, tt.token)
		if code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
			continue
		}
		if tt.reason != "" {
			var e struct{ Reason string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("%s: %s, want a reason containing %q", tt.name, body, tt.reason)
			}
			continue
		}
		var v meshui.View
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Meshes == nil || len(v.Hidden) != 0 {
			t.Errorf("%s: view %s (%v)", tt.name, body, err)
		}
	}
}
