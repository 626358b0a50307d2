package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPackagePushPrintsContentAddress(t *testing.T) {
	addr := testServer(t)
	data := []byte("\x00asm\x01\x00\x00\x00 pretend module")
	file := filepath.Join(t.TempDir(), "fn.wasm")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])
	for i := 0; i < 2; i++ { // pushing twice is a no-op with the same answer
		out, errOut, code := cli(t, "", "--server", addr, "package", "push", file)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Fatalf("push %d: exit %d, out %q (want %s), err %s", i, code, out, want, errOut)
		}
	}
	if _, errOut, code := cli(t, "", "--server", addr, "package", "push", filepath.Join(t.TempDir(), "missing")); code != 1 || !strings.Contains(errOut, "read package") {
		t.Fatalf("missing file: exit %d %s", code, errOut)
	}
}

func TestAgentAndDevFlagErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"agent", "--server", "127.0.0.1:1", "--data-dir", t.TempDir()}, // no --cluster
		{"agent", "--cluster", "a", "--server", "127.0.0.1:1", "--data-dir", t.TempDir(), "--runtimes", "jvm"},
		{"dev", "--clusters", "0", "--data-dir", t.TempDir(), "--log-level", "loud"},
	} {
		if _, errOut, code := cli(t, "", args...); code != 2 {
			t.Errorf("meshfed %v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}
