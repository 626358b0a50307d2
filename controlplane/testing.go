package controlplane

// Test servers for this package's tests and other packages' tests. The
// helpers take a testkit.TB, which *testing.T and *testing.B satisfy, so the
// package does not import testing and the binary does not link it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestConfig returns a configuration for an in-process test server: a
// temporary data dir, loopback port 0 everywhere and millisecond Raft timeouts.
func TestConfig(t testkit.TB, id string) Config {
	t.Helper()
	return Config{
		NodeID:   id,
		DataDir:  t.TempDir(),
		RaftAddr: "127.0.0.1:0",
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		RaftTweak: func(c *raft.Config) {
			c.HeartbeatTimeout = 150 * time.Millisecond
			c.ElectionTimeout = 150 * time.Millisecond
			c.LeaderLeaseTimeout = 100 * time.Millisecond
			c.CommitTimeout = 5 * time.Millisecond
		},
		ForwardHold: 3 * time.Second,
		Logger:      testLogger(),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("MESHFED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestServer starts one server, letting cb adjust its configuration, and
// shuts it down when the test ends.
func TestServer(t testkit.TB, cb func(*Config)) *Server {
	t.Helper()
	cfg := TestConfig(t, "s1")
	if cb != nil {
		cb(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("start test server %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	return s
}

// TestCluster starts n servers: the first bootstraps, the others join it.
// cbs, if any, adjust every server's configuration (after its node ID is
// set). It returns once all n are voters and a leader is ready.
func TestCluster(t testkit.TB, n int, cbs ...func(*Config)) []*Server {
	t.Helper()
	adjust := func(c *Config) {
		for _, cb := range cbs {
			cb(c)
		}
	}
	first := TestServer(t, adjust)
	servers := []*Server{first}
	for i := 2; i <= n; i++ {
		servers = append(servers, TestServer(t, func(c *Config) {
			c.NodeID = fmt.Sprintf("s%d", i)
			c.Join = []string{first.GRPCAddr()}
			adjust(c)
		}))
	}
	WaitFor(t, 15*time.Second, func() error {
		f := first.Raft().GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		if got := len(f.Configuration().Servers); got != n {
			return fmt.Errorf("%d of %d voters", got, n)
		}
		for _, s := range servers {
			if len(s.State().Members()) != n {
				return fmt.Errorf("%s knows %d of %d members", s.NodeID(), len(s.State().Members()), n)
			}
		}
		return nil
	})
	WaitForLeader(t, servers...)
	return servers
}

// WaitForLeader polls until one of servers is the ready leader and returns it.
func WaitForLeader(t testkit.TB, servers ...*Server) *Server {
	t.Helper()
	var leader *Server
	WaitFor(t, 15*time.Second, func() error {
		for _, s := range servers {
			if s.IsLeader() {
				leader = s
				return nil
			}
		}
		return fmt.Errorf("no ready leader among %d servers", len(servers))
	})
	return leader
}

// WaitFor polls cond until it returns nil or the timeout passes.
func WaitFor(t testkit.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	testkit.Eventually(t, timeout, "condition", cond)
}

// TestClient dials a server's gRPC API and closes the connection at the end of the test.
func TestClient(t testkit.TB, addr string) (meshfedv1.ObjectServiceClient, meshfedv1.OperatorServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return meshfedv1.NewObjectServiceClient(conn), meshfedv1.NewOperatorServiceClient(conn)
}

// TestAgents dials a server's agent API without credentials, registers
// the agents reqs describe, and returns the client for their heartbeats and
// reports. The connection closes when the test ends.
func TestAgents(t testkit.TB, addr string, reqs ...*meshfedv1.RegisterRequest) meshfedv1.AgentServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	agents := meshfedv1.NewAgentServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, r := range reqs {
		if _, err := agents.Register(ctx, r); err != nil {
			t.Fatalf("register agent %s: %v", r.GetName(), err)
		}
	}
	return agents
}

// TestPKI is a certificate authority in a temporary directory for tests of
// mutual TLS and authentication.
type TestPKI struct {
	t   testkit.TB
	Dir string
}

// NewTestPKI creates a CA.
func NewTestPKI(t testkit.TB) *TestPKI {
	t.Helper()
	dir := t.TempDir()
	if err := security.CreateCA(dir, 24*time.Hour); err != nil {
		t.Fatalf("create CA: %v", err)
	}
	return &TestPKI{t: t, Dir: dir}
}

// Files issues a certificate (role server, agent or client; cluster for
// agents) and returns the files to configure TLS with.
func (p *TestPKI) Files(role security.Role, name, cluster string) security.Files {
	p.t.Helper()
	out := filepath.Join(p.Dir, string(role)+"-"+cluster+"-"+name)
	if _, err := os.Stat(out + ".pem"); err != nil {
		if err := security.IssueCert(p.Dir, out, security.CertRequest{Role: role, Name: name, Cluster: cluster, Validity: time.Hour}); err != nil {
			p.t.Fatalf("issue %s certificate %s: %v", role, name, err)
		}
	}
	return security.Files{Cert: out + ".pem", Key: out + "-key.pem", CA: filepath.Join(p.Dir, security.CACertFile)}
}

// Dial connects with the certificate files and, if token is set, presents it.
func (p *TestPKI) Dial(addr string, files security.Files, token string) *grpc.ClientConn {
	p.t.Helper()
	creds, err := files.ClientCredentials()
	if err != nil {
		p.t.Fatalf("client credentials: %v", err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(security.BearerToken(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		p.t.Fatalf("dial %s: %v", addr, err)
	}
	p.t.Cleanup(func() { conn.Close() })
	return conn
}

// SecureConfig turns on mutual TLS and authentication for a test server.
func (p *TestPKI) SecureConfig(c *Config) {
	c.TLS = p.Files(security.RoleServer, c.NodeID, "")
	c.Auth = true
}

// BootstrapToken waits for one of servers to have written the bootstrap
// superuser token and returns it.
func BootstrapToken(t testkit.TB, servers ...*Server) string {
	t.Helper()
	var tok string
	WaitFor(t, 15*time.Second, func() error {
		for _, s := range servers {
			b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, BootstrapTokenFile))
			if err == nil {
				tok = strings.TrimSpace(string(b))
				return nil
			}
		}
		return fmt.Errorf("no server wrote %s yet", BootstrapTokenFile)
	})
	return tok
}
