package main

import (
	"strings"
	"testing"
)

func TestApplyGetDescribeDelete(t *testing.T) {
	addr := testServer(t)
	out, errOut, code := cli(t, baseObjects+"---"+meshDoc, "--server", addr, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"cluster/a created", "namespace/public/default created", "functionmesh/public/default/wc created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("apply output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = cli(t, baseObjects, "--server", addr, "apply", "-f", "-")
	if strings.Count(out, "unchanged") != 4 {
		t.Fatalf("reapply should report unchanged:\n%s", out)
	}
	out, _, code = cli(t, "", "--server", addr, "get", "clusters")
	if code != 0 || !strings.Contains(out, "pulsar://127.0.0.1:6651") {
		t.Fatalf("get clusters: %d\n%s", code, out)
	}
	out, _, code = cli(t, "", "--server", addr, "get", "mesh", "wc", "-o", "json")
	if code != 0 || !strings.Contains(out, `"resourceVersion"`) || !strings.Contains(out, `"word-split"`) {
		t.Fatalf("get mesh -o json: %d\n%s", code, out)
	}
	out, _, code = cli(t, "", "--server", addr, "describe", "mesh", "public/default/wc")
	if code != 0 || !strings.Contains(out, "Functions:") || !strings.Contains(out, "split") {
		t.Fatalf("describe: %d\n%s", code, out)
	}
	_, errOut, code = cli(t, "", "--server", addr, "delete", "cluster", "a")
	if code != 1 || !strings.Contains(errOut, "used by FunctionMesh") {
		t.Fatalf("delete used cluster: exit %d: %s", code, errOut)
	}
	out, errOut, code = cli(t, "", "--server", addr, "delete", "mesh", "wc")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete mesh: exit %d: %s %s", code, out, errOut)
	}
	_, errOut, code = cli(t, "", "--server", addr, "get", "mesh", "wc")
	if code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("get deleted mesh: exit %d: %s", code, errOut)
	}
}

func TestApplyInvalidThirdDocumentChangesNothing(t *testing.T) {
	addr := testServer(t)
	doc := `apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: x}
spec: {serviceURL: "pulsar://127.0.0.1:6650"}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: acme}
---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: y}
spec: {serviceURL: "pulsar://127.0.0.1:6650", replicas: 3}
`
	_, errOut, code := cli(t, doc, "--server", addr, "apply", "-f", "-")
	if code != 1 || !strings.Contains(errOut, "doc 3") || !strings.Contains(errOut, "spec.replicas") {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming doc 3 and spec.replicas", code, errOut)
	}
	// A reference error (checked by the server) also changes nothing.
	_, errOut, code = cli(t, baseObjects+"---"+strings.Replace(meshDoc, "cluster: b", "cluster: eu-west", 1), "--server", addr, "apply", "-f", "-")
	if code != 1 || !strings.Contains(errOut, `unknown cluster "eu-west"`) || !strings.Contains(errOut, "output.cluster") {
		t.Fatalf("exit %d, stderr %q: want the unknown cluster named with its field", code, errOut)
	}
	out, _, _ := cli(t, "", "--server", addr, "get", "clusters")
	if !strings.Contains(out, "No clusters found") {
		t.Fatalf("something was applied:\n%s", out)
	}
}

func TestServerFailoverInServerList(t *testing.T) {
	addr := testServer(t)
	// The first address refuses connections; the client moves on.
	out, errOut, code := cli(t, baseObjects, "--server", "127.0.0.1:1,"+addr, "apply", "-f", "-")
	if code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("apply with a dead first server: exit %d: %s", code, errOut)
	}
}
