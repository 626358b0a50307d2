//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
)

// TestAuthRefusalsWithRealProcesses: against a real server run with mutual
// TLS and --auth, the CLI is refused without a certificate, without a
// token, with an expired, revoked or other tenant's token; an agent whose
// certificate binds it to cluster a cannot register as cluster b's agent.
func TestAuthRefusalsWithRealProcesses(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 1)
	srv := c.all()
	mustCLI(t, srv, "apply", "-f", writeCluster(t, "a"))
	mustCLI(t, srv, "apply", "-f", writeCluster(t, "b"))
	tenants := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(tenants, []byte(`apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: acme}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: other}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, srv, "apply", "-f", tenants)

	// run runs the CLI with exactly env (no token or certificate added).
	run := func(env []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"--server", srv, "--timeout", "5s"}, args...)...)
		cmd.Env = env
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{args: args, stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tlsEnv := append(cliEnv(), "MESHFED_TLS_CERT="+pki.clientCert, "MESHFED_TLS_KEY="+pki.clientKey, "MESHFED_TLS_CA="+pki.ca)
	refused := func(r result, want string) {
		t.Helper()
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("want exit 1 mentioning %q, got %s", want, r)
		}
	}
	// No certificate at all.
	if r := run(cliEnv(), "get", "clusters"); r.code == 0 {
		t.Fatalf("plaintext client served: %s", r)
	}
	// A certificate but no token.
	refused(run(tlsEnv, "get", "clusters"), "--token")
	// Tokens: created by the superuser, then used alone.
	token := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(mustCLI(t, srv, append([]string{"token", "create", "-o", "secret"}, args...)...))
	}
	with := func(tok string) []string { return append(tlsEnv[:len(tlsEnv):len(tlsEnv)], "MESHFED_TOKEN="+tok) }
	acme := token("--subject", "alice", "--role", "tenant-admin", "--tenant", "acme")
	if r := run(with(acme), "get", "tenant", "acme"); r.code != 0 {
		t.Fatalf("tenant-admin reading its tenant: %s", r)
	}
	refused(run(with(acme), "get", "tenant", "other"), "outside the principal's scope")
	brief := token("--subject", "brief", "--role", "viewer", "--tenant", "acme", "--ttl", "1s")
	testkit.Eventually(t, 10*time.Second, "the 1s token to expire", func() (bool, string) {
		r := run(with(brief), "get", "tenant", "acme")
		return r.code == 1 && strings.Contains(r.stderr, "expired"), r.String()
	})
	gone := token("--subject", "gone", "--role", "viewer", "--tenant", "acme")
	if r := run(with(gone), "get", "tenant", "acme"); r.code != 0 {
		t.Fatalf("fresh token: %s", r)
	}
	var id string
	for _, line := range strings.Split(mustCLI(t, srv, "token", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, "gone") {
			id = f[0]
		}
	}
	if id == "" {
		t.Fatalf("token list does not show the token of gone:\n%s", mustCLI(t, srv, "token", "list"))
	}
	mustCLI(t, srv, "token", "revoke", id)
	refused(run(with(gone), "get", "tenant", "acme"), "revoked")

	// An agent with a certificate for cluster a, started as cluster b's.
	dir := t.TempDir()
	agent := &daemon{t: t, name: "agent-x", logPath: filepath.Join(dir, "agent-x.log"),
		args: append([]string{"agent", "--cluster", "b", "--name", "agent-x", "--server", srv, "--data-dir", filepath.Join(dir, "data")}, agentTLSFlags(t, "a", "agent-x")...)}
	agent.start()
	t.Cleanup(func() {
		if agent.running() {
			agent.p.cmd.Process.Kill()
			<-agent.p.done
		}
	})
	testkit.Eventually(t, convergeTimeout, "the agent to be refused", func() (bool, string) {
		b, _ := os.ReadFile(agent.logPath)
		return strings.Contains(string(b), "PermissionDenied") && strings.Contains(string(b), `not \"b\"`), string(b)
	})
	if out := mustCLI(t, srv, "get", "agents"); strings.Contains(out, "agent-x") {
		t.Fatalf("the refused agent is registered:\n%s", out)
	}
	// Refusals reach the audit log through the leader's batched appends,
	// so the last one may land just after the agent logged it.
	testkit.Eventually(t, convergeTimeout, "every refusal in the audit log", func() (bool, string) {
		denied := mustCLI(t, srv, "audit", "--result", "denied")
		for _, who := range []string{"alice", "agent/a/agent-x", "unauthenticated"} {
			if !strings.Contains(denied, who) {
				return false, "audit --result denied does not show " + who + ":\n" + denied
			}
		}
		return true, ""
	})
}
