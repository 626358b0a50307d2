package main

// The files in deploy/ besides the chart (chart_test.go): the Dockerfile
// builds with the Go release go.mod names, .dockerignore keeps the sources
// in the build context, and the systemd units' command lines parse with
// this binary's flags.

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// goModVersion is the Go release go.mod names: its toolchain line, else
// its go line.
func goModVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Toolchain != nil {
		return strings.TrimPrefix(f.Toolchain.Name, "go")
	}
	if f.Go == nil {
		t.Fatal("go.mod has no go line")
	}
	return f.Go.Version
}

var (
	fromLine   = regexp.MustCompile(`(?i)^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$`)
	goImageTag = regexp.MustCompile(`^(?:docker\.io/(?:library/)?)?golang:([0-9][^@-]*)(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$`)
)

// TestDockerfileGoVersion: every Go image the Dockerfile builds with is the
// exact release go.mod names, the build may not fetch another toolchain
// or change go.mod, and it stamps the version variables `meshfed version`
// prints.
func TestDockerfileGoVersion(t *testing.T) {
	want := goModVersion(t)
	if strings.Count(want, ".") != 2 {
		t.Fatalf("go.mod names Go %s: name a full release (1.N.P) so the image can be pinned to it", want)
	}
	data, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var goImages int
	stages := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		m := fromLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		stages[strings.ToLower(m[2])] = m[1]
		if !strings.Contains(m[1], "golang") {
			continue
		}
		goImages++
		tag := goImageTag.FindStringSubmatch(m[1])
		if tag == nil {
			t.Errorf("%q: want golang:%s-<variant> (optionally @sha256:<digest>)", line, want)
			continue
		}
		if tag[1] != want {
			t.Errorf("%q builds with Go %s; go.mod names %s: update deploy/Dockerfile", line, tag[1], want)
		}
	}
	if goImages == 0 {
		t.Error("deploy/Dockerfile has no golang build stage")
	}
	for _, s := range []string{"build", "server", "agent"} {
		if stages[s] == "" {
			t.Errorf("deploy/Dockerfile has no stage %q", s)
		}
	}
	if !strings.Contains(stages["agent"], "python3") {
		t.Errorf("the agent image (%s) has no python3 for exec functions", stages["agent"])
	}
	for _, s := range []string{"GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly", "-trimpath",
		"-X main.version=", "-X main.commit=", "-X main.buildTime="} {
		if !strings.Contains(text, s) {
			t.Errorf("deploy/Dockerfile lacks %q", s)
		}
	}
	// The variables the -X flags set.
	_ = []*string{&version, &commit, &buildTime}
}

// TestDockerignoreKeepsSources: no .dockerignore pattern leaves out a
// directory with Go sources, go.mod, go.sum or a file the Dockerfile
// copies.
func TestDockerignoreKeepsSources(t *testing.T) {
	f, err := os.Open("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not leave out .git")
	}
	need := []string{"go.mod", "go.sum", "sdk/python/meshfed_function.py"}
	err = filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", p)
		if d.IsDir() && (rel == ".git" || strings.HasPrefix(rel, ".")) && rel != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			need = append(need, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range need {
		for _, pat := range patterns {
			if dockerignoreMatches(pat, p) {
				t.Errorf(".dockerignore pattern %q leaves out %s, which the image build needs", pat, p)
			}
		}
	}
}

// dockerignoreMatches reports whether pattern (Docker's syntax, without !
// exceptions) matches path or one of its parent directories.
func dockerignoreMatches(pattern, path string) bool {
	pattern = strings.TrimPrefix(pattern, "/")
	parts := strings.Split(path, "/")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], "/")
		if ok, _ := filepath.Match(pattern, prefix); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			if m, _ := filepath.Match(rest, parts[i-1]); m {
				return true
			}
		}
	}
	return false
}

// TestSystemdUnitsParse: the units' ExecStart lines, with the variables of
// the example environment files, parse with meshfed's flags.
func TestSystemdUnitsParse(t *testing.T) {
	for unit, env := range map[string]string{
		"meshfed-server.service": "server.env",
		"meshfed-agent.service":  "agent.env",
	} {
		data, err := os.ReadFile("../../deploy/systemd/" + unit)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "\\\n", " ")
		if !strings.Contains(text, "EnvironmentFile=/etc/meshfed/"+env) {
			t.Errorf("%s does not read /etc/meshfed/%s", unit, env)
		}
		vars := readEnvFile(t, "../../deploy/config/"+env)
		var exec string
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
				exec = v
			}
		}
		var unresolved []string
		args := strings.Fields(os.Expand(exec, func(name string) string {
			v, ok := vars[name]
			if !ok {
				unresolved = append(unresolved, name)
			}
			return v
		}))
		if len(unresolved) > 0 {
			t.Errorf("%s: ${%s} is not in deploy/config/%s", unit, strings.Join(unresolved, "}, ${"), env)
		}
		if len(args) == 0 || filepath.Base(args[0]) != "meshfed" {
			t.Fatalf("%s: ExecStart %q does not run meshfed", unit, exec)
		}
		if _, err := parseCommandLine(args[1:]); err != nil {
			t.Errorf("%s: ExecStart does not parse: %v", unit, err)
		}
		for _, d := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
			"PrivateDevices=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "StateDirectory=", "ReadWritePaths="} {
			if !strings.Contains(text, "\n"+d) {
				t.Errorf("%s lacks %s", unit, strings.TrimSpace(d))
			}
		}
	}
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not NAME=value", path, line)
		}
		out[k] = v
	}
	return out
}
