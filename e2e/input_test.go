//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	c := startBootstrapped(t, 1)
	srv := c.all()
	mustCLI(t, srv, "apply", "-f", "testdata/federation.yaml")
	before := settle(t, srv, federationObjects...)

	for _, tc := range []struct {
		name string
		file string
		// wantErr are substrings standard error must hold.
		wantErr []string
		// untouched are objects of the file's valid documents that must
		// not exist afterwards.
		untouched []objectRef
	}{
		{
			name:      "unknown field",
			file:      "testdata/bad-field.yaml",
			wantErr:   []string{"doc 3", "spec.colour"},
			untouched: []objectRef{{"cluster", "bad-field-one"}, {"tenant", "bad-field-tenant"}, {"cluster", "bad-field-two"}},
		},
		{
			name:      "unknown cluster reference",
			file:      "testdata/bad-ref.yaml",
			wantErr:   []string{"doc 3", "spec.functions[0].output.cluster", "no-such-cluster"},
			untouched: []objectRef{{"cluster", "bad-ref-one"}, {"namespace", "acme/staging"}, {"mesh", "acme/staging/bad-ref-mesh"}},
		},
		{
			name:      "stale resourceVersion",
			file:      "testdata/stale-version.yaml",
			wantErr:   []string{"east", "resourceVersion 2"},
			untouched: []objectRef{{"cluster", "stale-version-new"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dry := range []bool{true, false} {
				args := []string{"--server", srv, "apply", "-f", tc.file}
				if dry {
					args = append(args, "--dry-run")
				}
				r := cli(t, args...)
				if r.code != 1 {
					t.Errorf("want exit 1, got %s", r)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("stderr does not name %q:\n%s", want, r.stderr)
					}
				}
			}
			for _, o := range tc.untouched {
				r := cli(t, "--server", srv, "get", o.kind, o.name)
				if r.code != 1 || !strings.Contains(r.stderr, "not found") {
					t.Errorf("%s: want exit 1 and \"not found\" (nothing written), got %s", o, r)
				}
			}
		})
	}
	// The failed applies left the earlier objects alone.
	for _, o := range federationObjects {
		if rv, ok, r := getRV(t, srv, o, false); !ok || rv != before[o] {
			t.Errorf("after the failed applies: resourceVersion %d, want %d: %s", rv, before[o], r)
		}
	}

	for _, args := range [][]string{
		{"frobnicate"},
		{"get"},
		{"get", "clusters", "east", "extra"},
		{"get", "clusters", "-o", "xml"},
		{"apply"},
		{"apply", "--no-such-flag", "-f", "testdata/federation.yaml"},
		{"delete", "cluster"},
		{"operator", "raft", "remove-peer"},
		{"operator", "snapshot", "save"},
	} {
		r := cli(t, append([]string{"--server", srv}, args...)...)
		if r.code != 2 {
			t.Errorf("usage error: want exit 2, got %s", r)
		}
		if strings.TrimSpace(r.stderr) == "" {
			t.Errorf("usage error printed nothing on stderr: %s", r)
		}
	}
}
