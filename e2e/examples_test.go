//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestExamplesApplyAndDelete applies the shipped examples through the CLI,
// reads every object back, applies again (nothing changes) and deletes them
// with `delete -f`.
func TestExamplesApplyAndDelete(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 1)
	srv := c.all()
	for _, file := range []string{"../examples/word-count.yaml", "../examples/federated-learning.yaml"} {
		t.Run(strings.TrimPrefix(file, "../examples/"), func(t *testing.T) {
			out := mustCLI(t, srv, "apply", "-f", file)
			var objs []objectRef
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				// "functionmesh/public/default/word-count created"
				ref, result, ok := strings.Cut(line, " ")
				kind, name, ok2 := strings.Cut(ref, "/")
				if !ok || !ok2 || result != "created" {
					t.Fatalf("apply output line %q: want KIND/NAME created", line)
				}
				objs = append(objs, objectRef{kind, name})
			}
			if len(objs) < 3 {
				t.Fatalf("apply of %s created only %d objects:\n%s", file, len(objs), out)
			}
			for _, o := range objs {
				if _, ok, r := getRV(t, srv, o, false); !ok {
					t.Errorf("get after apply: %s", r)
				}
				if d := mustCLI(t, srv, "describe", o.kind, o.name); !strings.Contains(d, o.name[strings.LastIndex(o.name, "/")+1:]) {
					t.Errorf("describe %s does not name the object:\n%s", o, d)
				}
			}

			again := mustCLI(t, srv, "apply", "-f", file)
			for _, line := range strings.Split(strings.TrimSpace(again), "\n") {
				if !strings.HasSuffix(line, " unchanged") {
					t.Errorf("second apply of the same file changed something: %q", line)
				}
			}

			// A cluster that a mesh uses is not deleted.
			if r := cli(t, "--server", srv, "delete", "cluster", "a"); file == "../examples/word-count.yaml" && r.code != 1 {
				t.Errorf("delete of a cluster the mesh uses: want exit 1, got %s", r)
			}

			mustCLI(t, srv, "delete", "-f", file)
			for _, o := range objs {
				r := cli(t, "--server", srv, "get", o.kind, o.name)
				if r.code != 1 || !strings.Contains(r.stderr, "not found") {
					t.Errorf("%s after delete -f: want exit 1 and \"not found\", got %s", o, r)
				}
			}
		})
	}
}
