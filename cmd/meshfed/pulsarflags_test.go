package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/objects"
)

func TestPulsarClientFlags(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		flags   pulsarClientFlags
		url     string
		plugin  string // the parsed plugin, when no error
		wantErr string
	}{
		{"none", pulsarClientFlags{verifyHostname: true}, "pulsar://h:6650", "", ""},
		{"token", pulsarClientFlags{authToken: "abc", verifyHostname: true}, "pulsar://h:6650", objects.AuthToken, ""},
		{"token file", pulsarClientFlags{authTokenFile: tokenFile, verifyHostname: true}, "pulsar://h:6650", objects.AuthToken, ""},
		{"plugin class and params", pulsarClientFlags{authPlugin: "org.apache.pulsar.client.impl.auth.AuthenticationToken", authParams: "file://" + tokenFile, verifyHostname: true},
			"pulsar://h:6650", objects.AuthToken, ""},
		{"token and token file", pulsarClientFlags{authToken: "a", authTokenFile: tokenFile}, "pulsar://h:6650", "", "not both"},
		{"token and plugin", pulsarClientFlags{authToken: "a", authPlugin: "basic"}, "pulsar://h:6650", "", "give one or the other"},
		{"unknown plugin", pulsarClientFlags{authPlugin: "kerberos", verifyHostname: true}, "pulsar://h:6650", "", `--auth-plugin: "kerberos" is not a supported plugin`},
		{"cert without key", pulsarClientFlags{certFile: "c.pem", verifyHostname: true}, "pulsar+ssl://h:6651", "", "--tls-key-file: required with tlsCertificateFilePath"},
		{"tls flags on a plaintext URL", pulsarClientFlags{trustCerts: "ca.pem", verifyHostname: true}, "pulsar://h:6650", "", "not a pulsar+ssl:// URL"},
		{"oauth2 without issuer", pulsarClientFlags{authPlugin: "oauth2", authParams: `{"privateKey":"file:///k.json"}`, verifyHostname: true}, "pulsar://h:6650", "",
			`--auth-params: oauth2 needs "issuerUrl"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.flags.clientOptions(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			creds, _ := tc.flags.credentials()
			if creds.Auth().Plugin != tc.plugin {
				t.Fatalf("plugin %q, want %q", creds.Auth().Plugin, tc.plugin)
			}
		})
	}
}

// TestProduceConsumeWithToken: the token flags reach the broker (which,
// without authentication, accepts any token) and a missing token file is
// an error naming it.
func TestProduceConsumeWithToken(t *testing.T) {
	b := broker.TestBroker(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "produce", "persistent://public/default/tok", "--service-url", b.ServiceURL(), "--auth-token-file", tokenFile, "-m", "x")
	if code != 0 || !strings.Contains(out, "1 messages successfully produced") {
		t.Fatalf("produce: exit %d, output %s", code, out)
	}
	out, code = runCLI(t, "consume", "persistent://public/default/tok", "--service-url", b.ServiceURL(), "--auth-plugin", "token",
		"--auth-params", "token:tok", "-s", "s", "-p", "Earliest", "-n", "1", "--hide-properties")
	if code != 0 || !strings.Contains(out, "1 messages successfully consumed") {
		t.Fatalf("consume: exit %d, output %s", code, out)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	out, code = runCLI(t, "produce", "persistent://public/default/tok", "--service-url", b.ServiceURL(), "--auth-token-file", missing, "-m", "x")
	if code != 1 || !strings.Contains(out, "token from file://"+missing+": open: no such file or directory") {
		t.Fatalf("missing token file: exit %d, output %s", code, out)
	}
}

func TestExplainNamesTheCredential(t *testing.T) {
	p := pulsarClientFlags{authTokenFile: "/etc/t", verifyHostname: true}
	if _, err := p.clientOptions("pulsar://h:6650"); err == nil || !strings.Contains(err.Error(), "token from file:///etc/t") {
		t.Fatalf("unreadable token file: %v", err)
	}
	p = pulsarClientFlags{authToken: "x", verifyHostname: true}
	if _, err := p.clientOptions("pulsar://h:6650"); err != nil {
		t.Fatal(err)
	}
	got := p.explain(errors.New("subscribe: AuthorizationError")).Error()
	if got != "subscribe: AuthorizationError (authorization refused: token from a value given in clear)" {
		t.Fatalf("explain = %q", got)
	}
	if e := errors.New("connection closed"); p.explain(e) != e {
		t.Fatal("explain changed an error that is no refusal")
	}
}
