package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/controlplane"
)

// cli runs the meshfed CLI in-process against servers, returning stdout,
// stderr and the exit code.
func cli(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	var in io.Reader = strings.NewReader(stdin)
	code := run(args, in, &out, &errb)
	return out.String(), errb.String(), code
}

// testServer starts an in-process single-node control plane.
func testServer(t *testing.T) string {
	t.Helper()
	s := controlplane.TestServer(t, nil)
	controlplane.WaitForLeader(t, s)
	return s.GRPCAddr()
}

// twoClusters are clusters a and b, the start of the tests' object files.
const twoClusters = `
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a}
spec: {serviceURL: "pulsar://127.0.0.1:6650", adminURL: "http://127.0.0.1:8080"}
---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: b}
spec: {serviceURL: "pulsar://127.0.0.1:6651", adminURL: "http://127.0.0.1:8081"}
---
`

// baseObjects are twoClusters, tenant public and its namespace default.
const baseObjects = twoClusters + `apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: public}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: default, tenant: public}
`

const meshDoc = `
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: wc, tenant: public, namespace: default}
spec:
  functions:
    - name: split
      runtime: {builtin: word-split}
      input: {cluster: a, topics: ["persistent://public/default/in"]}
      output: {cluster: b, topic: "persistent://public/default/out"}
`

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"no-such-command"}, 2},
		{[]string{"get"}, 2},
		{[]string{"get", "nokind"}, 2},
		{[]string{"apply"}, 2},
		{[]string{"get", "clusters", "--bogus-flag"}, 2},
		{[]string{"server"}, 2},
		{[]string{"server", "--node-id", "s1", "--data-dir", t.TempDir(), "--auth"}, 2},
		{[]string{"server", "--node-id", "s1", "--data-dir", t.TempDir(), "--audit-retention", "0"}, 2},
		{[]string{"--help"}, 0},
	} {
		if _, errOut, code := cli(t, "", c.args...); code != c.code {
			t.Errorf("meshfed %v: exit %d, want %d (stderr %q)", c.args, code, c.code, errOut)
		}
	}
}
