package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/dev"
	"github.com/meshfed/meshfed/dev/devtest"
	"github.com/meshfed/meshfed/drill"
	"github.com/meshfed/meshfed/federation"
)

func TestDrillUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no cluster", []string{"drill", "run"}, "--fail-cluster is required"},
		{"watch without cluster", []string{"drill", "run", "--fail-cluster", "a", "--watch", "persistent://public/default/words"}, "name the cluster"},
		{"bad produce", []string{"drill", "run", "--fail-cluster", "a", "--produce", "a,:t"}, "empty cluster"},
		{"no outputs", []string{"drill", "run", "--fail-cluster", "a", "--outputs", "0"}, "--outputs 0"},
		{"negative rate", []string{"drill", "run", "--fail-cluster", "a", "--rate", "-1"}, "--rate"},
		{"show without id", []string{"drill", "show"}, "takes 1 argument"},
		{"no subcommand", []string{"drill"}, "needs a subcommand"},
		{"positional run argument", []string{"drill", "run", "a"}, "takes 0 argument"},
		{"unknown mode", []string{"drill", "run", "--fail-cluster", "a", "--mode", "reboot"}, "--mode \"reboot\": use cordon or crash"},
		{"producer failover without crash", []string{"drill", "run", "--fail-cluster", "a", "--producer-failover"}, "--producer-failover applies to --mode crash"},
		{"negative burst", []string{"drill", "run", "--fail-cluster", "a", "--burst", "-2"}, "--burst -2: want 0 or more messages"},
		{"burst without stream", []string{"drill", "run", "--fail-cluster", "a", "--burst", "10", "--rate", "0"}, "--burst needs an input stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := cli(t, "", c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q: want 2 and %q", code, stderr, c.want)
			}
		})
	}
}

func savedReport(t *testing.T, dir, id string, started time.Time, recovery time.Duration, lost int) {
	t.Helper()
	r := &federation.DrillReport{ID: id, Cluster: "a", Duration: 10 * time.Second, Rate: 50,
		Affected: []federation.DrillInstance{{Assignment: "word-count.split.0", Tenant: "public", Namespace: "default",
			Guarantee: "effectively_once", MovedTo: "c", MovedAt: started.Add(recovery)}},
		Timeline: federation.DrillTimeline{Started: started, Failed: started.Add(time.Second), Detected: started.Add(time.Second + 40*time.Millisecond),
			Recovered: started.Add(time.Second + recovery), Restored: started.Add(11 * time.Second), FailedBack: started.Add(42 * time.Second)},
		FailbackStatus: federation.FailbackDone,
		Messages:       &federation.MessageAccount{Produced: 500, ExpectedOutputs: 1500, Consumed: 1500 - lost, Delivered: 1500 - lost, Lost: lost},
	}
	if lost > 0 {
		r.Messages.LostMessages, r.Messages.FirstLost = 1, []int64{7}
	}
	r.Finalize()
	if _, err := drill.Save(dir, r); err != nil {
		t.Fatal(err)
	}
}

func TestDrillListShowSummary(t *testing.T) {
	dir := t.TempDir()
	out, _, code := cli(t, "", "drill", "list", "--reports-dir", dir)
	if code != 0 || !strings.Contains(out, "no drill reports") {
		t.Fatalf("empty list: exit %d, %q", code, out)
	}
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	savedReport(t, dir, "20261126t120000-aaaa", base, 900*time.Millisecond, 0)
	savedReport(t, dir, "20261126t120100-bbbb", base.Add(time.Minute), 1500*time.Millisecond, 3)

	out, _, code = cli(t, "", "drill", "list", "--reports-dir", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[1], "aaaa") || !strings.Contains(lines[1], "PASSED") ||
		!strings.Contains(lines[2], "bbbb") || !strings.Contains(lines[2], "FAILED") || !strings.Contains(lines[1], "0.900s") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}

	out, _, code = cli(t, "", "drill", "show", "20261126t120100-bbbb", "--reports-dir", dir)
	squeezed := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"cluster a cordoned for 10s — FAILED", "failover 1.500s", "lost 3", "problem", "first: [7]"} {
		if code != 0 || !strings.Contains(squeezed, want) {
			t.Errorf("show: exit %d, no %q in\n%s", code, want, out)
		}
	}
	out, _, code = cli(t, "", "drill", "show", "20261126t120000-aaaa", "--json", "--reports-dir", dir)
	var rep federation.DrillReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Figures.RecoverySeconds == nil || *rep.Figures.RecoverySeconds != 0.9 {
		t.Fatalf("show --json: exit %d\n%s", code, out)
	}
	_, stderr, code := cli(t, "", "drill", "show", "nope", "--reports-dir", dir)
	if code != 1 || !strings.Contains(stderr, "no such drill report") {
		t.Fatalf("show nope: exit %d, %q", code, stderr)
	}

	out, _, code = cli(t, "", "drill", "summary", "--json", "--reports-dir", dir)
	var s federation.DrillSummary
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("summary: exit %d\n%s", code, out)
	}
	if s.Runs != 2 || s.Passed != 1 || s.Recovery.P50 != 900*time.Millisecond || s.Recovery.P99 != 1500*time.Millisecond || s.Lost != 3 || s.Produced != 1000 {
		t.Fatalf("summary %+v", s)
	}
	out, _, code = cli(t, "", "drill", "summary", "--last", "1", "--reports-dir", dir)
	if code != 0 || !strings.Contains(out, " 1 (0 passed") || !strings.Contains(out, "1.500s") {
		t.Fatalf("summary --last 1: exit %d\n%s", code, out)
	}
}

func TestDrillCrashNeedsDevFederation(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := cli(t, "", "drill", "run", "--fail-cluster", "a", "--mode", "crash", "--dev-dir", dir)
	if code != 1 || !strings.Contains(stderr, "--mode crash needs a meshfed dev federation (or use --mode cordon)") || !strings.Contains(stderr, "dev.json not found") {
		t.Fatalf("no dev.json: exit %d, stderr %q", code, stderr)
	}
	// dev.json left behind by a meshfed dev that is gone.
	if err := os.WriteFile(filepath.Join(dir, dev.InfoFile), []byte(`{"server":"127.0.0.1:1","control":"http://127.0.0.1:1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = cli(t, "", "drill", "run", "--fail-cluster", "a", "--mode", "crash", "--dev-dir", dir)
	if code != 1 || !strings.Contains(stderr, "needs a running meshfed dev federation") || !strings.Contains(stderr, "does not answer") {
		t.Fatalf("stale dev.json: exit %d, stderr %q", code, stderr)
	}
}

// TestDrillRunAgainstDev runs a crash drill through the command against a
// dev federation found through --dev-dir, without waiting for failback.
func TestDrillRunAgainstDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	devDir := t.TempDir()
	f, err := dev.Start(ctx, dev.Config{DataDir: devDir, Clusters: 3, GRPCAddr: "127.0.0.1:0", Binary: devtest.Binary(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	_, stderr, code := cli(t, "", "--server", "127.0.0.1:1", "drill", "run", "--fail-cluster", "a", "--mode", "crash", "--dev-dir", devDir)
	if code != 2 || !strings.Contains(stderr, "is not the control plane of the meshfed dev federation") {
		t.Fatalf("other --server: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = cli(t, "", "drill", "run", "--fail-cluster", "z", "--mode", "crash", "--dev-dir", devDir)
	if code != 2 || !strings.Contains(stderr, "has clusters a, b, c") {
		t.Fatalf("unknown cluster: exit %d, stderr %q", code, stderr)
	}

	dir := t.TempDir()
	out, stderr, code := cli(t, "", "--server", f.Info.Server, "drill", "run", "--fail-cluster", "a", "--mode", "crash", "--dev-dir", devDir,
		"--duration", "3s", "--rate", "30", "--failback-timeout", "0", "--json", "--reports-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	for _, want := range []string{"crash", "detected", "moved", "recovered", "restart"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress on stderr lacks %q:\n%s", want, stderr)
		}
	}
	var rep federation.DrillReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, out)
	}
	if rep.Mode != federation.DrillModeCrash || rep.Figures.DetectionSeconds == nil || rep.Figures.RecoverySeconds == nil ||
		rep.Messages == nil || rep.Messages.Produced == 0 || rep.Messages.Lost != 0 {
		t.Fatalf("report %s", out)
	}
	if st := f.Status()[0]; !st.Broker.Running || !st.Agent.Running || st.Broker.Starts != 2 {
		t.Fatalf("cluster a after the drill: %+v, want restarted and running", st)
	}
	if _, err := drill.Load(dir, rep.ID); err != nil {
		t.Fatalf("report not kept: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(matches) != 1 {
		t.Fatalf("reports dir holds %v", matches)
	}
}
