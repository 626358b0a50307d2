package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestApplyDirectoryInAnyOrder applies a directory whose files list a mesh
// before its namespace and a tenant before the clusters it allows: objects
// go in dependency order, whatever the file order.
func TestApplyDirectoryInAnyOrder(t *testing.T) {
	addr := testServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "1-mesh.yaml"), meshDoc)
	writeFile(t, filepath.Join(dir, "2-tenant.yaml"), `apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: public}
spec: {allowedClusters: [a, b]}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: default, tenant: public}
`)
	writeFile(t, filepath.Join(dir, "README.md"), "not a manifest")
	writeFile(t, filepath.Join(dir, "clusters", "ab.yml"), twoClusters)

	// Without -R the subdirectory is skipped, so the clusters are missing.
	_, errOut, code := cli(t, "", "--server", addr, "apply", "-f", dir)
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "2-tenant.yaml")+": doc 1:") {
		t.Fatalf("apply without -R: exit %d, want the tenant's file and doc named: %s", code, errOut)
	}
	out, errOut, code := cli(t, "", "--server", addr, "apply", "-f", dir, "-R")
	if code != 0 {
		t.Fatalf("apply -R: exit %d: %s", code, errOut)
	}
	want := []string{"cluster/a created", "cluster/b created", "tenant/public created", "namespace/public/default created", "functionmesh/public/default/wc created"}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("apply -R wrote, in order:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// Two -f files: an error names the file and document as written.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, `apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: ok, tenant: public}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: orphan, tenant: nosuchtenant}
`)
	_, errOut, code = cli(t, "", "--server", addr, "apply", "-f", filepath.Join(dir, "1-mesh.yaml"), "-f", bad)
	if code != 1 || !strings.Contains(errOut, bad+": doc 2:") || !strings.Contains(errOut, "nosuchtenant") {
		t.Fatalf("apply of two files: exit %d: %s", code, errOut)
	}

	empty := t.TempDir()
	if _, errOut, code := cli(t, "", "--server", addr, "apply", "-f", empty); code != 1 || !strings.Contains(errOut, "no .yaml, .yml, .json files") {
		t.Fatalf("apply of an empty directory: exit %d: %s", code, errOut)
	}
}

// TestApplyWaitGivesUp: without agents the mesh never gets Ready; --wait
// reports progress and gives up at --wait-timeout, naming the mesh.
func TestApplyWaitGivesUp(t *testing.T) {
	addr := testServer(t)
	out, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "apply", "-f", "-", "--wait", "--wait-timeout", "1s")
	if code != 1 || !strings.Contains(errOut, "not Ready yet: functionmesh/public/default/wc: 0/1 running") {
		t.Fatalf("apply --wait: exit %d:\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "functionmesh/public/default/wc: 0/1 running") {
		t.Fatalf("apply --wait printed no progress:\n%s", out)
	}
	if _, errOut, code := cli(t, meshDoc, "--server", addr, "apply", "-f", "-", "--wait", "--dry-run"); code != 2 {
		t.Fatalf("--wait --dry-run: exit %d %s", code, errOut)
	}
}
