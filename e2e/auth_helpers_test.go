//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
)

// Every e2e control plane runs as in production: mutual TLS on the gRPC
// API and --auth. One CA signs a certificate shared by the servers, one for
// the CLI, and one per agent (bound to its cluster); the CLI presents the
// bootstrap token the first leader of the test's group wrote.
var pki struct {
	dir                   string
	ca                    string
	serverCert, serverKey string
	clientCert, clientKey string
	mu                    sync.Mutex
	agents                map[string][2]string
}

// setupPKI creates the CA and the shared certificates in dir.
func setupPKI(dir string) error {
	pki.dir = dir
	pki.agents = map[string][2]string{}
	if err := security.CreateCA(dir, 24*time.Hour); err != nil {
		return err
	}
	pki.ca = filepath.Join(dir, security.CACertFile)
	if err := security.IssueCert(dir, filepath.Join(dir, "server"), security.CertRequest{Role: security.RoleServer, Name: "e2e-server", Validity: 24 * time.Hour}); err != nil {
		return err
	}
	pki.serverCert, pki.serverKey = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := security.IssueCert(dir, filepath.Join(dir, "cli"), security.CertRequest{Role: security.RoleClient, Name: "e2e-cli", Validity: 24 * time.Hour}); err != nil {
		return err
	}
	pki.clientCert, pki.clientKey = filepath.Join(dir, "cli.pem"), filepath.Join(dir, "cli-key.pem")
	return nil
}

// serverTLSFlags are the flags every e2e server runs with.
func serverTLSFlags() []string {
	return []string{"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-ca", pki.ca, "--auth"}
}

// agentTLSFlags issues (once) a certificate binding agent name to cluster.
func agentTLSFlags(t *testing.T, cluster, name string) []string {
	t.Helper()
	pki.mu.Lock()
	defer pki.mu.Unlock()
	key := cluster + "/" + name
	files, ok := pki.agents[key]
	if !ok {
		out := filepath.Join(pki.dir, "agent-"+cluster+"-"+name)
		if err := security.IssueCert(pki.dir, out, security.CertRequest{Role: security.RoleAgent, Name: name, Cluster: cluster, Validity: 24 * time.Hour}); err != nil {
			t.Fatalf("issue agent certificate %s: %v", key, err)
		}
		files = [2]string{out + ".pem", out + "-key.pem"}
		pki.agents[key] = files
	}
	return []string{"--tls-cert", files[0], "--tls-key", files[1], "--tls-ca", pki.ca}
}

// clientFiles are the CLI's TLS files.
func clientFiles() security.Files {
	return security.Files{Cert: pki.clientCert, Key: pki.clientKey, CA: pki.ca}
}

// groups maps every server's gRPC address to its cluster, so a CLI run
// can find the bootstrap token of the group its --server names.
var groups sync.Map

// tokenFile waits until one of the cluster's servers wrote the bootstrap
// token and returns its path.
func (c *cluster) tokenFile(t *testing.T) string {
	t.Helper()
	var path string
	testkit.Eventually(t, readyTimeout, "a server of the group to write its bootstrap token", func() bool {
		for _, s := range c.servers {
			p := filepath.Join(s.dataDir, "bootstrap-token")
			if st, err := os.Stat(p); err == nil && st.Size() > 0 {
				path = p
				return true
			}
		}
		return false
	})
	return path
}

// token returns the bootstrap token of the cluster.
func (c *cluster) token(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(c.tokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// serverArg returns the --server value in args, or "".
func serverArg(args []string) string {
	for i, a := range args {
		if a == "--server" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--server="); ok {
			return v
		}
	}
	return ""
}

// envFor is the environment of a CLI run with args: the client certificate
// and, when --server names an e2e group, its bootstrap token.
func envFor(t *testing.T, args []string) []string {
	t.Helper()
	env := append(cliEnv(), "MESHFED_TLS_CERT="+pki.clientCert, "MESHFED_TLS_KEY="+pki.clientKey, "MESHFED_TLS_CA="+pki.ca)
	for _, addr := range strings.Split(serverArg(args), ",") {
		if c, ok := groups.Load(strings.TrimSpace(addr)); ok {
			return append(env, "MESHFED_TOKEN_FILE="+c.(*cluster).tokenFile(t))
		}
	}
	return env
}

// dialOptions are what Go code in the tests dials the group with.
func (c *cluster) dialOptions(t *testing.T) []grpc.DialOption {
	t.Helper()
	creds, err := clientFiles().ClientCredentials()
	if err != nil {
		t.Fatal(fmt.Errorf("client credentials: %w", err))
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(security.BearerToken(c.token(t)))}
}
