package main

import (
	"strings"
	"testing"
)

func TestClusterCordonUncordonAndStatus(t *testing.T) {
	addr := testServer(t)
	if _, errOut, code := cli(t, baseObjects, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := cli(t, "", "--server", addr, "cluster", "cordon", "a")
	if code != 0 || !strings.Contains(out, "cluster a cordoned") {
		t.Fatalf("cordon: exit %d: %s %s", code, out, errOut)
	}
	out, _, _ = cli(t, "", "--server", addr, "cluster", "cordon", "a")
	if !strings.Contains(out, "already cordoned") {
		t.Fatalf("second cordon: %s", out)
	}
	out, _, code = cli(t, "", "--server", addr, "get", "cluster", "a", "-o", "json")
	if code != 0 || !strings.Contains(out, `"cordoned": true`) {
		t.Fatalf("cordoned flag not stored: %s", out)
	}
	out, errOut, code = cli(t, "", "--server", addr, "status")
	if code != 0 || !strings.Contains(out, "CLUSTERS") || !strings.Contains(out, "leader") {
		t.Fatalf("status: exit %d: %s %s", code, out, errOut)
	}
	if out, _, code = cli(t, "", "--server", addr, "cluster", "uncordon", "a"); code != 0 || !strings.Contains(out, "uncordoned") {
		t.Fatalf("uncordon: %s", out)
	}
	if _, errOut, code = cli(t, "", "--server", addr, "cluster", "cordon", "nope"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("cordon unknown cluster: exit %d %s", code, errOut)
	}
	if _, _, code = cli(t, "", "--server", addr, "cluster", "cordon"); code != 2 {
		t.Fatalf("cordon without a name: exit %d, want 2", code)
	}
}

func TestFailbackRecordsARequest(t *testing.T) {
	addr := testServer(t)
	if _, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := cli(t, "", "--server", addr, "failback", "wc")
	if code != 0 || !strings.Contains(out, "failback of public/default/wc requested") {
		t.Fatalf("failback: exit %d: %s %s", code, out, errOut)
	}
	out, _, _ = cli(t, "", "--server", addr, "get", "mesh", "wc", "-o", "yaml")
	if !strings.Contains(out, "meshfed.io/failback-requested") {
		t.Fatalf("request not recorded:\n%s", out)
	}
}

func TestPolicyCheckExplainsWithoutApplying(t *testing.T) {
	addr := testServer(t)
	if _, errOut, code := cli(t, baseObjects, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := cli(t, meshDoc, "--server", addr, "policy", "check", "-f", "-")
	if code != 0 || !strings.Contains(out, "allowed") {
		t.Fatalf("allowed mesh: exit %d: %s %s", code, out, errOut)
	}
	// A namespace that forbids the builtin runtime refuses the mesh, naming the rule.
	restrict := `apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: default, tenant: public}
spec: {allowedRuntimes: [wasm]}
`
	if _, errOut, code := cli(t, restrict, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code = cli(t, meshDoc, "--server", addr, "policy", "check", "-f", "-")
	if code != 1 || !strings.Contains(out, "refused (PermissionDenied)") || !strings.Contains(errOut, "namespace.allowedRuntimes") {
		t.Fatalf("refused mesh: exit %d: %s %s", code, out, errOut)
	}
	if out, _, _ := cli(t, "", "--server", addr, "get", "meshes"); !strings.Contains(out, "No functionmeshes found") {
		t.Fatalf("policy check applied something:\n%s", out)
	}
}
