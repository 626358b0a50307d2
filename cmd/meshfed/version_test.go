package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/meshfed/meshfed", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name          string
		bi            *debug.BuildInfo
		ok            bool
		ldV, ldC, ldT string
		want          buildVersion
	}{
		{name: "no build information", want: buildVersion{Version: "unknown", Commit: "unknown", BuildTime: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}},
		{name: "from the build information", bi: vcs, ok: true,
			want: buildVersion{Version: "(devel)", Commit: "0123abcd", Modified: true, BuildTime: "2026-11-30T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/arm64"}},
		{name: "go install at a version", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}}, ok: true,
			want: buildVersion{Version: "v0.4.0", Commit: "unknown", BuildTime: "unknown", GoVersion: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}},
		{name: "ldflags win", bi: vcs, ok: true, ldV: "v0.5.0", ldC: "feedbeef", ldT: "2026-12-01T00:00:00Z",
			want: buildVersion{Version: "v0.5.0", Commit: "feedbeef", BuildTime: "2026-12-01T00:00:00Z", GoVersion: "go1.26.8", Platform: "linux/arm64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.bi, tc.ok, tc.ldV, tc.ldC, tc.ldT); got != tc.want {
				t.Errorf("versionOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, errOut, code := cli(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "meshfed ") || !strings.Contains(out, "go version: "+runtime.Version()) {
		t.Fatalf("version: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = cli(t, "", "version", "-o", "json")
	var v buildVersion
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.GoVersion != runtime.Version() || v.Version == "" {
		t.Fatalf("version -o json: exit %d %q", code, out)
	}
	if _, errOut, code := cli(t, "", "version", "-o", "yaml"); code != 2 || !strings.Contains(errOut, "use text or json") {
		t.Fatalf("version -o yaml: exit %d %s", code, errOut)
	}
}

// TestVersionLdflags builds the binary with the -X flags the Dockerfile
// passes: a misspelt variable would be ignored silently by the linker.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "meshfed")
	ld := "-X main.version=v9.8.7 -X main.commit=c0ffee -X main.buildTime=2026-12-24T00:00:00Z"
	build := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v buildVersion
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != "v9.8.7" || v.Commit != "c0ffee" || v.BuildTime != "2026-12-24T00:00:00Z" || v.GoVersion == "" {
		t.Fatalf("version of a binary built with %s: %+v", ld, v)
	}
	_ = os.Remove(bin)
}
