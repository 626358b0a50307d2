//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/internal/testkit"
)

func TestSnapshotSaveRestoreCLI(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 3)
	mustCLI(t, c.all(), "apply", "-f", "testdata/federation.yaml")
	mustCLI(t, c.all(), "apply", "-f", "testdata/federation-v2.yaml")
	north := objectRef{"cluster", "north"}
	mesh := objectRef{"mesh", "acme/prod/pipeline"}
	all := append(append([]objectRef{}, federationObjects...), north)
	saved := settle(t, c.all(), all...)

	file := filepath.Join(t.TempDir(), "state.snap")
	out := mustCLI(t, c.all(), "operator", "snapshot", "save", file)
	if !strings.Contains(out, file) {
		t.Errorf("save output does not name the file: %q", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("snapshot file: %v (size %v)", err, fi)
	}

	// north is used by no mesh once the mesh is back at version 1, so first
	// put the mesh back, then delete north.
	mustCLI(t, c.all(), "apply", "-f", "testdata/federation.yaml")
	mustCLI(t, c.all(), "delete", "cluster", "north")
	for _, s := range c.servers {
		s := s
		testkit.Eventually(t, convergeTimeout, s.id+" to lose cluster north", func() (bool, string) {
			r := cli(t, "--server", s.grpcAddr, "get", "cluster", "north", "--stale")
			return r.code == 1 && strings.Contains(r.stderr, "not found"), r.String()
		})
	}

	// Restore through a follower while the other follower is down: the
	// snapshot must reach the whole group, including the server that
	// missed the restore and comes back afterwards.
	lead := c.byID(leader(t, c.all(), 3))
	var followers []*server
	for _, s := range c.servers {
		if s != lead {
			followers = append(followers, s)
		}
	}
	down := followers[1]
	down.kill9()
	mustCLI(t, followers[0].grpcAddr, "operator", "snapshot", "restore", file)
	down.start()
	// Every object is back at the version it had in the snapshot, on every
	// server; the mesh has its failover to north again.
	for _, s := range c.servers {
		for _, o := range all {
			waitRV(t, s, o, saved[o])
		}
	}
	out = mustCLI(t, c.all(), "get", "mesh", mesh.name, "-o", "yaml")
	if !strings.Contains(out, "north") {
		t.Errorf("restored mesh lacks its failover to north:\n%s", out)
	}
	// Writes go on after the restore.
	out = mustCLI(t, c.all(), "apply", "-f", "testdata/federation.yaml")
	if !strings.Contains(out, "functionmesh/acme/prod/pipeline configured") {
		t.Errorf("apply after restore did not change the mesh back:\n%s", out)
	}

	// After a restart every server loads the restored snapshot from its
	// disk and replays the log after it: the same objects and versions.
	want := settle(t, c.all(), all...)
	for _, s := range c.servers {
		s.stop()
	}
	for _, s := range c.servers {
		s.start()
	}
	for _, s := range c.servers {
		for _, o := range all {
			if rv := waitRV(t, s, o, want[o]); rv != want[o] {
				t.Errorf("%s after the restart: %s at resourceVersion %d, want %d", s.id, o, rv, want[o])
			}
		}
	}
}
