//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/internal/testkit"
)

// TestServersAdvertiseNames: three servers bind every interface (0.0.0.0)
// and advertise DNS names (localhost:PORT), as StatefulSet pods advertise
// their stable names. The Raft configuration and list-peers hold the names,
// writes forward between the servers by name, and the names survive a
// restart of all three (clean, then kill -9).
func TestServersAdvertiseNames(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	type names struct{ raft, grpc string }
	adv := map[string]names{}
	var initial, grpcNames []string
	for i := 1; i <= 3; i++ {
		s := c.add(fmt.Sprintf("node%d", i))
		_, rp, _ := net.SplitHostPort(s.raftAddr)
		_, gp, _ := net.SplitHostPort(s.grpcAddr)
		// Bind every interface; the CLI and the other servers dial names.
		s.raftAddr, s.grpcAddr = "0.0.0.0:"+rp, "0.0.0.0:"+gp
		adv[s.id] = names{raft: "localhost:" + rp, grpc: "localhost:" + gp}
		initial = append(initial, s.id+"="+adv[s.id].raft)
		grpcNames = append(grpcNames, adv[s.id].grpc)
		groups.Store(adv[s.id].grpc, c)
		t.Cleanup(func() { groups.Delete(adv[s.id].grpc) })
	}
	all := strings.Join(grpcNames, ",")
	advFlags := func(s *server) []string {
		return []string{"--raft-advertise-addr", adv[s.id].raft, "--grpc-advertise-addr", adv[s.id].grpc}
	}
	for _, s := range c.servers {
		s.flags = append(advFlags(s), "--initial-cluster", strings.Join(initial, ","))
		s.start()
	}
	waitNamedPeers := func(when string) {
		t.Helper()
		for _, s := range c.servers {
			s.waitReady()
		}
		testkit.Eventually(t, convergeTimeout, "list-peers to show the advertised names "+when, func() (bool, string) {
			rows, r := listPeers(t, all)
			if r.code != 0 {
				return false, r.String()
			}
			leaders := 0
			for _, row := range rows {
				want, ok := adv[row["ID"]]
				if !ok || row["RAFT ADDRESS"] != want.raft || row["GRPC ADDRESS"] != want.grpc || row["VOTER"] != "true" {
					return false, r.stdout
				}
				if row["STATE"] == "leader" {
					leaders++
				}
			}
			return len(rows) == 3 && leaders == 1, r.stdout
		})
	}
	waitNamedPeers("after the bootstrap")

	// A write through a follower only: it forwards to the leader's gRPC name.
	lead := leader(t, all, 3)
	var follower string
	for _, s := range c.servers {
		if s.id != lead {
			follower = adv[s.id].grpc
			break
		}
	}
	mustCLI(t, follower, "apply", "-f", "testdata/federation.yaml")

	for _, s := range c.servers {
		s.stop()
	}
	for _, s := range c.servers {
		s.flags = advFlags(s) // resumes from the data dir: no bootstrap flags
		s.start()
	}
	waitNamedPeers("after a restart of all three")
	mustCLI(t, all, "apply", "-f", "testdata/federation-v2.yaml")

	for _, s := range c.servers {
		s.kill9()
	}
	for _, s := range c.servers {
		s.start()
	}
	waitNamedPeers("after kill -9 of all three")
	for _, o := range append(federationObjects, v2Objects...) {
		if _, ok, r := getRV(t, all, o, false); !ok {
			t.Errorf("after the restarts: %s", r)
		}
	}
}

// TestServerNeedsAdvertiseAddr: binding every interface without an
// advertise address is a usage error that names the flag to set.
func TestServerNeedsAdvertiseAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--raft-addr", "0.0.0.0:7000"}, "set --raft-advertise-addr"},
		{[]string{"--grpc-addr", "0.0.0.0:7100", "--raft-advertise-addr", "localhost:7000"}, "set --grpc-advertise-addr"},
	} {
		r := cli(t, append([]string{"server", "--node-id", "n1", "--data-dir", t.TempDir()}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("want exit 2 and %q, got %s", tc.want, r)
		}
	}
}
