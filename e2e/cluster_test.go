//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/meshfed/meshfed/internal/testkit"
)

// federationObjects are the objects of testdata/federation.yaml.
var federationObjects = []objectRef{
	{"cluster", "east"},
	{"cluster", "west"},
	{"tenant", "acme"},
	{"namespace", "acme/prod"},
	{"mesh", "acme/prod/pipeline"},
}

// v2Objects are the objects testdata/federation-v2.yaml creates or changes.
var v2Objects = []objectRef{
	{"cluster", "north"},
	{"mesh", "acme/prod/pipeline"},
}

func TestThreeServersSurviveLeaderKill(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 3)
	waitPeers(t, c.all(), c.servers...)

	out := mustCLI(t, c.all(), "apply", "-f", "testdata/federation.yaml")
	for _, want := range []string{"cluster/east created", "functionmesh/acme/prod/pipeline created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("apply output lacks %q:\n%s", want, out)
		}
	}
	meshRV1, ok, r := getRV(t, c.all(), objectRef{"mesh", "acme/prod/pipeline"}, false)
	if !ok {
		t.Fatalf("get the applied mesh: %s", r)
	}

	dead := c.byID(leader(t, c.all(), 3))
	t.Logf("killing leader %s with SIGKILL", dead.id)
	dead.kill9()

	// The dead node first: the CLI must move on to a live one, which must
	// reach (or become) the new leader.
	var live []*server
	for _, s := range c.servers {
		if s != dead {
			live = append(live, s)
		}
	}
	out = mustCLI(t, addrs(append([]*server{dead}, live...)...), "apply", "-f", "testdata/federation-v2.yaml")
	for _, want := range []string{"cluster/north created", "functionmesh/acme/prod/pipeline configured"} {
		if !strings.Contains(out, want) {
			t.Fatalf("second apply output lacks %q:\n%s", want, out)
		}
	}
	meshRV2, ok, r := getRV(t, addrs(live...), objectRef{"mesh", "acme/prod/pipeline"}, false)
	if !ok {
		t.Fatalf("get the changed mesh: %s", r)
	}
	if meshRV2 <= meshRV1 {
		t.Fatalf("mesh resourceVersion after the second apply is %d, want more than %d", meshRV2, meshRV1)
	}
	if newLeader := leader(t, addrs(live...), 3); newLeader == dead.id {
		t.Fatalf("list-peers names the killed node %s as leader", dead.id)
	}

	// Restart the killed node with the same flags: its data dir holds the
	// Raft state, and it must catch up with what it missed, including the
	// status the new leader wrote.
	all := append(append([]objectRef{}, federationObjects...), v2Objects[0])
	before := settle(t, addrs(live...), all...)
	dead.start()
	dead.waitReady()
	for _, o := range all {
		waitRV(t, dead, o, before[o])
	}

	// Stop all three cleanly, start them again: every object must be back
	// with the resourceVersion it had.
	for _, s := range c.servers {
		s.stop()
	}
	// No bootstrap flags this time: a server with Raft state in its data
	// dir needs none.
	for _, s := range c.servers {
		s.flags = nil
		s.start()
	}
	for _, s := range c.servers {
		s.waitReady()
	}
	for _, o := range all {
		rv, ok, r := getRV(t, c.all(), o, false)
		if !ok {
			t.Errorf("after the full restart: %s", r)
			continue
		}
		if rv != before[o] {
			t.Errorf("after the full restart %s has resourceVersion %d, want %d as before", o, rv, before[o])
		}
	}
	// And each node, read on its own, has caught up to the same state.
	for _, s := range c.servers {
		for _, o := range all {
			waitRV(t, s, o, before[o])
		}
	}

	// The same after kill -9 of all three: what was acknowledged is on disk.
	for _, s := range c.servers {
		s.kill9()
	}
	for _, s := range c.servers {
		s.start()
	}
	for _, s := range c.servers {
		s.waitReady()
	}
	for _, o := range all {
		rv, ok, r := getRV(t, c.all(), o, false)
		if !ok {
			t.Errorf("after kill -9 of every server: %s", r)
			continue
		}
		if rv != before[o] {
			t.Errorf("after kill -9 of every server %s has resourceVersion %d, want %d", o, rv, before[o])
		}
	}
	waitPeers(t, c.all(), c.servers...)
}

// waitRV polls `get --stale` against s alone until the object exists (and,
// when want is not 0, has resourceVersion want); it returns the version.
func waitRV(t *testing.T, s *server, o objectRef, want uint64) uint64 {
	t.Helper()
	var got uint64
	testkit.Eventually(t, convergeTimeout, s.id+" to serve "+o.String(), func() (bool, string) {
		rv, ok, r := getRV(t, s.grpcAddr, o, true)
		if !ok {
			return false, r.String()
		}
		got = rv
		if want != 0 && rv != want {
			return false, "resourceVersion " + r.stdout
		}
		return true, ""
	})
	return got
}

func TestJoinAddsServer(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	first := c.add("first")
	first.start()
	first.waitReady()

	second := c.add("second", "--join", first.grpcAddr)
	third := c.add("third", "--join", first.grpcAddr)
	second.start()
	third.start()

	waitPeers(t, first.grpcAddr, first, second, third)
	second.waitReady()
	third.waitReady()

	// Through the third server alone: a follower that joined must forward
	// the write to the leader.
	mustCLI(t, third.grpcAddr, "apply", "-f", "testdata/federation.yaml")
	for _, o := range federationObjects {
		if _, ok, r := getRV(t, first.grpcAddr, o, false); !ok {
			t.Errorf("after applying through the joined server: %s", r)
		}
	}
	for _, s := range []*server{second, third} {
		waitRV(t, s, objectRef{"mesh", "acme/prod/pipeline"}, 0)
	}

	// Take the third server out for good: stop it, remove it, and the
	// remaining two still take writes.
	third.stop()
	out := mustCLI(t, addrs(third, first, second), "operator", "raft", "remove-peer", "third")
	if !strings.Contains(out, "third") {
		t.Errorf("remove-peer output does not name the peer: %q", out)
	}
	waitPeers(t, addrs(first, second), first, second)
	mustCLI(t, addrs(first, second), "apply", "-f", "testdata/federation-v2.yaml")
	waitRV(t, second, objectRef{"cluster", "north"}, 0)
}
