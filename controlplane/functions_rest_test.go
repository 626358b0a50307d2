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
)

// The HTTP address of a server with TLS answers TLS and plaintext on one
// port; the functions API authenticates a bearer token over TLS only.
func TestFunctionsAPIOverSniffedTLS(t *testing.T) {
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
	plainClient := &http.Client{Timeout: 10 * time.Second}
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
	addr := s.HTTPAddr()
	if code, _ := get(plainClient, "http://"+addr+"/healthz", ""); code != http.StatusOK {
		t.Errorf("plaintext /healthz: %d", code)
	}
	if code, _ := get(tlsClient, "https://"+addr+"/healthz", ""); code != http.StatusOK {
		t.Errorf("TLS /healthz: %d", code)
	}
	list := "/admin/v3/functions/public/default"
	for _, tt := range []struct {
		name       string
		client     *http.Client
		scheme     string
		token      string
		code       int
		wantReason string
	}{
		{"token in plaintext", plainClient, "http://", token, http.StatusUnauthorized, "requires TLS"},
		{"no token", tlsClient, "https://", "", http.StatusUnauthorized, "bearer token"},
		{"forged token", tlsClient, "https://", "mft1.forged", http.StatusUnauthorized, "token refused"},
		{"bootstrap token", tlsClient, "https://", token, http.StatusOK, ""},
	} {
		code, body := get(tt.client, tt.scheme+addr+list, tt.token)
		if code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
			continue
		}
		if tt.wantReason != "" {
			var e struct{ Reason string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Reason, tt.wantReason) {
				t.Errorf("%s: body %s, want a reason containing %q", tt.name, body, tt.wantReason)
			}
		} else if strings.TrimSpace(body) != "[]" {
			t.Errorf("%s: list %s, want []", tt.name, body)
		}
	}
}
