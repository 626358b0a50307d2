package controlplane

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/security"
)

func TestCheckAddrs(t *testing.T) {
	for _, tc := range []struct {
		name          string
		raft, raftAdv string
		grpc, grpcAdv string
		wantErr       string // "" for no error
	}{
		{name: "loopback defaults", raft: "127.0.0.1:7000", grpc: "127.0.0.1:7100"},
		{name: "a name as bind address", raft: "localhost:7000", grpc: "localhost:7100"},
		{name: "every interface with names", raft: "0.0.0.0:7000", raftAdv: "meshfed-0.meshfed-headless.ns.svc.cluster.local:7000",
			grpc: "[::]:7100", grpcAdv: "meshfed-0.meshfed-headless.ns.svc.cluster.local:7100"},
		{name: "every interface, no raft advertise", raft: "0.0.0.0:7000", grpc: "127.0.0.1:7100",
			wantErr: "--raft-addr 0.0.0.0:7000 listens on every interface, which other servers cannot dial: set --raft-advertise-addr"},
		{name: "empty host, no grpc advertise", raft: "127.0.0.1:7000", grpc: ":7100",
			wantErr: "--grpc-addr :7100 listens on every interface, which other servers cannot dial: set --grpc-advertise-addr"},
		{name: "ipv6 any, no grpc advertise", raft: "127.0.0.1:7000", grpc: "[::]:7100", wantErr: "set --grpc-advertise-addr"},
		{name: "advertise without port", raft: "0.0.0.0:7000", raftAdv: "meshfed-0", grpc: "127.0.0.1:7100",
			wantErr: `--raft-advertise-addr "meshfed-0"`},
		{name: "advertise port zero", raft: "0.0.0.0:7000", raftAdv: "meshfed-0:0", grpc: "127.0.0.1:7100",
			wantErr: "port must be a number from 1 to 65535"},
		{name: "advertise every interface", raft: "127.0.0.1:7000", grpc: "127.0.0.1:7100", grpcAdv: "0.0.0.0:7100",
			wantErr: `--grpc-advertise-addr "0.0.0.0:7100": 0.0.0.0 is not an address peers can dial`},
		{name: "advertise without host", raft: "127.0.0.1:7000", raftAdv: ":7000", grpc: "127.0.0.1:7100",
			wantErr: "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{RaftAddr: tc.raft, RaftAdvertiseAddr: tc.raftAdv, GRPCAddr: tc.grpc, GRPCAdvertiseAddr: tc.grpcAdv}
			err := c.CheckAddrs()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckAddrs: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("CheckAddrs: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAdvertisedKeepsBindHost(t *testing.T) {
	lis := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	for _, tc := range []struct{ bind, advertise, want string }{
		{"127.0.0.1:0", "", "127.0.0.1:41234"},
		{"localhost:0", "", "localhost:41234"},
		{"0.0.0.0:7000", "meshfed-1.meshfed-headless:7000", "meshfed-1.meshfed-headless:7000"},
	} {
		if got := advertised(tc.bind, tc.advertise, lis).String(); got != tc.want {
			t.Errorf("advertised(%q, %q) = %q, want %q", tc.bind, tc.advertise, got, tc.want)
		}
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := testkit.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// TestRaftDialVerifiesName: over TLS, a peer is dialled by the host of its
// stored address, and its certificate must be valid for that host.
func TestRaftDialVerifiesName(t *testing.T) {
	pki := NewTestPKI(t)
	listen, dial, err := pki.Files(security.RoleServer, "s1", "").ServerOnlyConfigs()
	if err != nil {
		t.Fatal(err)
	}
	serve := func(bind string) (*raftStream, string) {
		lis, err := net.Listen("tcp", bind)
		if err != nil {
			t.Skipf("listen on %s: %v", bind, err)
		}
		s := newRaftStream(lis, hostPort(lis.Addr().String()), listen, dial)
		t.Cleanup(func() { s.Close() })
		go func() {
			for {
				c, err := s.Accept()
				if err != nil {
					return
				}
				go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		_, port, _ := net.SplitHostPort(lis.Addr().String())
		return s, port
	}
	s, port := serve("127.0.0.1:0")
	// The test certificate is valid for localhost and 127.0.0.1.
	conn, err := s.Dial(raft.ServerAddress("localhost:"+port), 5e9)
	if err != nil {
		t.Fatalf("dial localhost:%s: %v", port, err)
	}
	conn.Close()
	_, port2 := serve("127.0.0.2:0")
	if _, err := s.Dial(raft.ServerAddress("127.0.0.2:"+port2), 5e9); err == nil || !strings.Contains(err.Error(), "certificate is valid for") {
		t.Fatalf("dial 127.0.0.2, which the certificate does not name: %v, want a verification error", err)
	}
}

// TestAdvertisedNamesInRaftConfiguration: servers advertising DNS names
// form a group whose Raft configuration and member records hold the names,
// forward writes to each other by name, and keep the names across a restart.
func TestAdvertisedNamesInRaftConfiguration(t *testing.T) {
	pki := NewTestPKI(t)
	ports := freePorts(t, 6)
	initial := map[string]string{}
	for i := range 3 {
		initial[fmt.Sprintf("s%d", i+1)] = fmt.Sprintf("localhost:%d", ports[2*i])
	}
	cfgs := make([]Config, 3)
	for i := range cfgs {
		c := TestConfig(t, fmt.Sprintf("s%d", i+1))
		c.RaftAddr = fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		c.RaftAdvertiseAddr = fmt.Sprintf("localhost:%d", ports[2*i])
		c.GRPCAddr = fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		c.GRPCAdvertiseAddr = fmt.Sprintf("localhost:%d", ports[2*i+1])
		c.InitialCluster = initial
		c.TLS = pki.Files(security.RoleServer, c.NodeID, "")
		cfgs[i] = c
	}
	start := func() []*Server {
		var servers []*Server
		for _, c := range cfgs {
			s, err := NewServer(c)
			if err != nil {
				t.Fatalf("start %s: %v", c.NodeID, err)
			}
			servers = append(servers, s)
		}
		return servers
	}
	check := func(servers []*Server) {
		t.Helper()
		leader := WaitForLeader(t, servers...)
		WaitFor(t, 15e9, func() error {
			for _, s := range servers {
				f := s.Raft().GetConfiguration()
				if err := f.Error(); err != nil {
					return err
				}
				for _, srv := range f.Configuration().Servers {
					if want := initial[string(srv.ID)]; string(srv.Address) != want {
						return fmt.Errorf("%s: raft configuration has %s at %s, want %s", s.NodeID(), srv.ID, srv.Address, want)
					}
				}
				for i, c := range cfgs {
					m := s.State().Member(c.NodeID)
					if m == nil || m.GetGrpcAddress() != cfgs[i].GRPCAdvertiseAddr || m.GetRaftAddress() != cfgs[i].RaftAdvertiseAddr {
						return fmt.Errorf("%s: member %s is %v, want raft %s grpc %s", s.NodeID(), c.NodeID, m, cfgs[i].RaftAdvertiseAddr, cfgs[i].GRPCAdvertiseAddr)
					}
				}
			}
			return nil
		})
		// A write through a follower reaches the leader at its gRPC name.
		follower := followers(leader, servers)[0]
		conn := pki.Dial(follower.GRPCAddr(), pki.Files(security.RoleClient, "cli", ""), "")
		mustApply(t, meshfedv1.NewObjectServiceClient(conn), clusterObj(fmt.Sprintf("c-%d", leader.State().Revision())))
		resp, err := meshfedv1.NewOperatorServiceClient(conn).ListPeers(testCtx(t), &meshfedv1.ListPeersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetPeers() {
			if p.GetRaftAddress() != initial[p.GetId()] || !strings.HasPrefix(p.GetGrpcAddress(), "localhost:") {
				t.Errorf("ListPeers: %s at raft %s grpc %s, want names", p.GetId(), p.GetRaftAddress(), p.GetGrpcAddress())
			}
		}
	}
	servers := start()
	check(servers)
	for _, s := range servers {
		if err := s.Shutdown(); err != nil {
			t.Fatalf("shutdown %s: %v", s.NodeID(), err)
		}
	}
	servers = start()
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
	})
	check(servers)
}
