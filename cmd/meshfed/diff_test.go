package main

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "x\ny", "x\ny", ""},
		{"created", "", "x\ny", "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"one line changed, context 3", "1\n2\n3\n4\n5\n6\n7\n8\n9", "1\n2\n3\n4\nfive\n6\n7\n8\n9",
			"--- A\n+++ B\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12", "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve",
			"--- A\n+++ B\n@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+twelve\n"},
	} {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		if got := unifiedDiff(split(c.a), split(c.b), "A", "B", 3); got != c.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

// TestDiff: differences exit 1 and print a diff, none exit 0, errors 2.
func TestDiff(t *testing.T) {
	addr := testServer(t)
	out, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "diff", "-f", "-")
	if code != 1 || !strings.Contains(out, "+++ functionmesh/public/default/wc (<stdin> doc 5)") || !strings.Contains(out, "+kind: FunctionMesh") {
		t.Fatalf("diff before apply: exit %d:\n%s%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	if out, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "diff", "-f", "-"); code != 0 || out != "" {
		t.Fatalf("diff after apply: exit %d:\n%s%s", code, out, errOut)
	}
	changed := strings.Replace(meshDoc, "runtime: {builtin: word-split}", "runtime: {builtin: word-split}\n      replicas: 3", 1)
	out, _, code = cli(t, changed, "--server", addr, "diff", "-f", "-")
	if code != 1 || !strings.Contains(out, "--- functionmesh/public/default/wc (stored)") || !strings.Contains(out, "+    replicas: 3") || strings.Contains(out, "resourceVersion") {
		t.Fatalf("diff of a change: exit %d:\n%s", code, out)
	}
	// Nothing was written by diff.
	if out, _, _ := cli(t, "", "--server", addr, "get", "mesh", "wc", "-o", "yaml"); strings.Contains(out, "replicas: 3") {
		t.Fatalf("diff wrote the change:\n%s", out)
	}
	bad := strings.Replace(meshDoc, "tenant: public", "tenant: nosuch", 1)
	if _, errOut, code := cli(t, bad, "--server", addr, "diff", "-f", "-"); code != 2 || !strings.Contains(errOut, "<stdin>: doc 1:") {
		t.Fatalf("diff of a refused file: exit %d: %s", code, errOut)
	}
}
