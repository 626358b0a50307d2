//go:build e2e

package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestFrozenLeaderDoesNotStallRequests stops the leader with SIGSTOP: its
// sockets stay open but it answers nothing, as in a long pause or a network
// partition. Unlike after kill -9, no connection to it breaks. Requests that
// reach a follower while the follower still takes the frozen server for the
// leader must still be answered once the others elect a new leader (within
// a few seconds), not hang until the client's deadline.
func TestFrozenLeaderDoesNotStallRequests(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 3)
	mustCLI(t, c.all(), "apply", "-f", "testdata/federation.yaml")
	frozen := c.byID(leader(t, c.all(), 3))
	var rest []*server
	for _, s := range c.servers {
		if s != frozen {
			rest = append(rest, s)
		}
	}
	// A linearizable read through each follower is forwarded to the leader,
	// so each follower has an open connection to it before it freezes.
	for _, s := range rest {
		mustCLI(t, s.grpcAddr, "get", "cluster", "east")
	}
	if err := frozen.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { frozen.p.cmd.Process.Signal(syscall.SIGCONT) })

	// A linearizable read sent at once to a follower: safe to serve from
	// the new leader, and it must be.
	start := time.Now()
	r := cli(t, "--server", rest[0].grpcAddr, "--timeout", "10s", "get", "cluster", "east")
	t.Logf("get through %s with the leader frozen: exit %d after %v", rest[0].id, r.code, time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Errorf("read through a follower while the leader is frozen: want exit 0, got %s", r)
	}

	// A write with the frozen server first in --server.
	start = time.Now()
	r = cli(t, "--server", addrs(append([]*server{frozen}, rest...)...), "--timeout", "15s", "apply", "-f", "testdata/federation-v2.yaml")
	t.Logf("apply with the frozen leader first: exit %d after %v", r.code, time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Errorf("apply with the frozen leader first in --server: want exit 0, got %s", r)
	}

	// Thawed, the old leader steps down and catches up.
	if err := frozen.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	north := objectRef{"cluster", "north"}
	want := settle(t, addrs(rest...), north)
	waitRV(t, frozen, north, want[north])
}

// TestWatchFailsOverFromFrozenServer stops (SIGSTOP) the server a
// `get -w` is connected to. Its stream breaks no connection, so only a
// liveness check (keepalive, or the server's periodic progress messages
// going missing) can tell the watch to move to another server in --server.
func TestWatchFailsOverFromFrozenServer(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 3)
	// A follower first, so that the others keep a leader when it freezes.
	lead := c.byID(leader(t, c.all(), 3))
	var first *server
	var rest []*server
	for _, s := range c.servers {
		if first == nil && s != lead {
			first = s
		} else {
			rest = append(rest, s)
		}
	}
	w := startWatcher(t, "--server", addrs(append([]*server{first}, rest...)...), "get", "clusters", "-w")
	w.waitLine(t, convergeTimeout, "No", "clusters", "found.")
	mustCLI(t, c.all(), "apply", "-f", writeCluster(t, "before-freeze"))
	w.waitLine(t, convergeTimeout, "PUT", "before-freeze")

	if err := first.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.p.cmd.Process.Signal(syscall.SIGCONT) })
	t.Logf("froze %s, the server the watch is connected to", first.id)
	mustCLI(t, addrs(rest...), "apply", "-f", writeCluster(t, "after-freeze"))
	w.waitLine(t, convergeTimeout, "PUT", "after-freeze")
}
