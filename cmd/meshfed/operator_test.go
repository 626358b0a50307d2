package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestOperatorListPeersAndSnapshot(t *testing.T) {
	addr := testServer(t)
	out, errOut, code := cli(t, "", "--server", addr, "operator", "raft", "list-peers")
	if code != 0 || !strings.Contains(out, "leader") || !strings.Contains(out, addr) {
		t.Fatalf("list-peers: exit %d: %s %s", code, out, errOut)
	}
	if _, errOut, code := cli(t, baseObjects, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	file := filepath.Join(t.TempDir(), "state.snap")
	if _, errOut, code := cli(t, "", "--server", addr, "operator", "snapshot", "save", file); code != 0 {
		t.Fatalf("save: %s", errOut)
	}
	if _, errOut, code := cli(t, "", "--server", addr, "delete", "ns", "public/default"); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	if _, errOut, code := cli(t, "", "--server", addr, "operator", "snapshot", "restore", file); code != 0 {
		t.Fatalf("restore: %s", errOut)
	}
	out, _, _ = cli(t, "", "--server", addr, "get", "ns", "public/default")
	if !strings.Contains(out, "public/default") {
		t.Fatalf("namespace not restored:\n%s", out)
	}
	_, errOut, code = cli(t, "", "--server", addr, "operator", "raft", "remove-peer", "nope")
	if code != 1 || !strings.Contains(errOut, "not in the raft configuration") {
		t.Fatalf("remove unknown peer: exit %d %s", code, errOut)
	}
}
