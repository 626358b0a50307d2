package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMutualTLS runs a server with mutual TLS and checks who gets in: the
// CLI with a client certificate; an agent only in the cluster its
// certificate names; nobody without a certificate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := cli(t, "", "tls", "ca", "create", "--dir", dir); code != 0 {
		t.Fatal(errOut)
	}
	for _, args := range [][]string{
		{"--server", "s1", "--out", filepath.Join(dir, "server")},
		{"--client", "alice", "--out", filepath.Join(dir, "alice")},
		{"--agent", "agent-a1", "--cluster", "a", "--out", filepath.Join(dir, "agent")},
	} {
		if _, errOut, code := cli(t, "", append([]string{"tls", "cert", "create", "--ca-dir", dir}, args...)...); code != 0 {
			t.Fatalf("cert create %v: %s", args, errOut)
		}
	}
	ca := filepath.Join(dir, security.CACertFile)
	files := func(name string) security.Files {
		return security.Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"), CA: ca}
	}
	s := controlplane.TestServer(t, func(c *controlplane.Config) { c.TLS = files("server") })
	controlplane.WaitForLeader(t, s)
	addr := s.GRPCAddr()
	tlsArgs := func(name string) []string {
		f := files(name)
		return []string{"--server", addr, "--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA, "--timeout", "5s"}
	}

	// A client certificate: the CLI works.
	if _, errOut, code := cli(t, baseObjects, append(tlsArgs("alice"), "apply", "-f", "-")...); code != 0 {
		t.Fatalf("apply with a client certificate: %s", errOut)
	}
	// No certificate: refused.
	if _, _, code := cli(t, "", "--server", addr, "--timeout", "2s", "get", "clusters"); code == 0 {
		t.Fatal("a client without a certificate was served")
	}

	register := func(f security.Files, name, cluster string) error {
		opts, err := dialOptions(f, "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New([]string{addr}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(conn).Register(ctx, &meshfedv1.RegisterRequest{Name: name, Cluster: cluster, Capacity: 1})
			return err
		})
	}
	if err := register(files("agent"), "agent-a1", "a"); err != nil {
		t.Fatalf("agent registering in its own cluster: %v", err)
	}
	err := register(files("agent"), "agent-a1", "b")
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), `cluster "a" cannot register in cluster "b"`) {
		t.Fatalf("agent certificate for a registering in b: %v", err)
	}
	if err := register(files("alice"), "agent-a1", "a"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("client certificate registering an agent: %v", err)
	}

	// Servers join and forward to each other over mutual TLS too: an agent
	// registering through a follower is checked there and forwarded.
	for _, id := range []string{"s2", "s3"} {
		if _, errOut, code := cli(t, "", "tls", "cert", "create", "--ca-dir", dir, "--server", id, "--out", filepath.Join(dir, id)); code != 0 {
			t.Fatal(errOut)
		}
	}
	follower := controlplane.TestServer(t, func(c *controlplane.Config) {
		c.NodeID, c.TLS, c.Join = "s2", files("s2"), []string{addr}
	})
	controlplane.WaitFor(t, 15*time.Second, func() error {
		if m := follower.State().Member("s1"); m == nil {
			return status.Error(codes.Unavailable, "follower does not know the leader yet")
		}
		if len(s.State().Members()) != 2 {
			return status.Error(codes.Unavailable, "join not recorded yet")
		}
		return nil
	})
	addr = follower.GRPCAddr()
	if err := register(files("agent"), "agent-a1", "a"); err != nil {
		t.Fatalf("agent registering through a follower: %v", err)
	}
	if err := register(files("agent"), "agent-a1", "b"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("agent certificate for a registering in b through a follower: %v", err)
	}
}
