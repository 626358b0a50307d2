package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContexts: a context names the servers; the current one fills
// --server, a flag or --context overrides it, and the file keeps paths
// absolute.
func TestContexts(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "sub", "config.yaml")
	t.Setenv("MESHFED_CONFIG", cfgPath)
	t.Setenv("MESHFED_SERVER", "")
	addr := testServer(t)
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, "", args...)
		if code != 0 {
			t.Fatalf("meshfed %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	if _, errOut, code := cli(t, "", "config", "current-context"); code != 1 || !strings.Contains(errOut, "no current context") {
		t.Fatalf("current-context of no config: exit %d %s", code, errOut)
	}
	must("config", "set-context", "dev", "--server", addr, "--timeout", "5s", "--token-file", "relative.token")
	must("config", "set-context", "down", "--server", "127.0.0.1:1")
	if out := must("config", "current-context"); out != "dev\n" {
		t.Fatalf("the first context is current: %q", out)
	}
	var ctxs []cliContext
	if err := json.Unmarshal([]byte(must("config", "get-contexts", "-o", "json")), &ctxs); err != nil || len(ctxs) != 2 ||
		ctxs[0].Name != "dev" || ctxs[0].Timeout != "5s" || !filepath.IsAbs(ctxs[0].TokenFile) {
		t.Fatalf("get-contexts -o json: %v %+v", err, ctxs)
	}
	if fi, err := os.Stat(cfgPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v %v", fi, err)
	}
	// The token file named does not exist: drop it from the context.
	must("config", "set-context", "dev", "--token-file", "")
	if out := must("get", "clusters"); !strings.Contains(out, "No clusters found") {
		t.Fatalf("get through the current context: %q", out)
	}
	if _, _, code := cli(t, "", "--context", "down", "--timeout", "1s", "get", "clusters"); code != 1 {
		t.Fatalf("--context down should fail to connect, exit %d", code)
	}
	if out := must("--context", "down", "--server", addr, "get", "clusters"); !strings.Contains(out, "No clusters found") {
		t.Fatalf("--server overrides the context: %q", out)
	}
	must("config", "use-context", "down")
	for _, line := range strings.Split(must("config", "get-contexts"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "*") != (f[1] == "down") {
			t.Fatalf("get-contexts should mark down, only down, as current: %q", line)
		}
	}
	t.Setenv("MESHFED_SERVER", addr)
	if out := must("get", "clusters"); !strings.Contains(out, "No clusters found") {
		t.Fatalf("MESHFED_SERVER overrides the context: %q", out)
	}
	if _, errOut, code := cli(t, "", "--context", "nope", "get", "clusters"); code != 2 || !strings.Contains(errOut, `context "nope" is not in`) {
		t.Fatalf("unknown --context: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, "", "config", "use-context", "nope"); code != 1 || !strings.Contains(errOut, "set-context") {
		t.Fatalf("use-context nope: exit %d %s", code, errOut)
	}
	must("config", "delete-context", "down")
	if out := must("config", "get-contexts", "-o", "name"); out != "context/dev\n" {
		t.Fatalf("after delete-context: %q", out)
	}
	if err := os.WriteFile(cfgPath, []byte("contexts: [{name: x, bogus: 1}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, "", "get", "clusters"); code != 2 || !strings.Contains(errOut, "bogus") {
		t.Fatalf("a config with an unknown field: exit %d %s", code, errOut)
	}
}
