package drill

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/dev"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// TestDrillAgainstDevFederation runs real drills in process against a dev
// federation of three clusters (word-count: split in a with failover to c,
// effectively_once, writing to b). The server's failback hold-down is 30 s
// in dev, longer than these drills wait for failback: the first drill's
// failback is pending, the CLI test's is skipped, and scripts/drill-bench.sh
// waits for it.
func TestDrillAgainstDevFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f, err := dev.Start(ctx, dev.Config{DataDir: t.TempDir(), Clusters: 3, GRPCAddr: "127.0.0.1:0", Binary: meshfedBinary(t),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	c, err := client.New([]string{f.Info.Server})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logf := func(e Event) { t.Log(e.String()) }

	t.Run("failover of word-count split from a to c", func(t *testing.T) {
		var phases []string
		rep, err := Run(ctx, Config{Client: c, Cluster: "a", Duration: 3 * time.Second, Rate: 40, FailbackTimeout: 1500 * time.Millisecond,
			PollInterval: 25 * time.Millisecond, Progress: func(e Event) { phases = append(phases, e.Phase); logf(e) }})
		if err != nil {
			t.Fatalf("drill: %v", err)
		}
		var sb strings.Builder
		if err := WriteText(&sb, rep); err != nil {
			t.Fatal(err)
		}
		t.Logf("report:\n%s", sb.String())
		// Everything but the failback, which the hold-down keeps waiting.
		if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "failback did not complete") {
			t.Errorf("problems %q, want only the pending failback", rep.Problems)
		}
		if len(rep.Affected) != 1 || rep.Affected[0].Assignment != "word-count.split.0" || rep.Affected[0].MovedTo != "c" {
			t.Fatalf("affected = %+v, want word-count.split.0 moved to c", rep.Affected)
		}
		if got := rep.Inputs; len(got) != 1 || got[0].String() != "a,c:"+dev.SentencesTopic {
			t.Errorf("inputs = %v, want a,c:%s", got, dev.SentencesTopic)
		}
		if got := rep.Watched; len(got) != 1 || got[0].String() != "b:"+dev.WordsTopic {
			t.Errorf("watched = %v, want b:%s", got, dev.WordsTopic)
		}
		tm := rep.Timeline.Times()
		if tm.Detection == nil || tm.Recovery == nil || *tm.Recovery < *tm.Detection {
			t.Fatalf("detection %v, recovery %v: want both, detection first", tm.Detection, tm.Recovery)
		}
		// The goal is 5 s; leave room for a loaded machine.
		if *tm.Recovery > 20*time.Second {
			t.Errorf("failover took %v", *tm.Recovery)
		}
		if tm.Outage == nil || *tm.Outage < 3*time.Second {
			t.Errorf("outage %v, want at least the 3s duration", tm.Outage)
		}
		if rep.Timeline.Healthy.IsZero() || rep.FailbackStatus != federation.FailbackPending || !rep.Timeline.FailedBack.IsZero() {
			t.Errorf("healthy at %v, failback %q at %v: want healthy seen and failback pending", rep.Timeline.Healthy, rep.FailbackStatus, rep.Timeline.FailedBack)
		}
		if d := rep.Timeline.Finished.Sub(rep.Timeline.Restored); d < 1500*time.Millisecond {
			t.Errorf("finished %v after the uncordon: did not wait for failback", d)
		}
		m := rep.Messages
		if m == nil || m.Produced < 40 || m.Lost != 0 || m.Duplicated != 0 || m.Delivered != m.ExpectedOutputs || m.ExpectedOutputs != 3*m.Produced {
			t.Fatalf("messages %+v: want >= 40 produced, 3 items each, all delivered once", m)
		}
		for _, want := range []string{PhasePreflight, PhaseStream, PhaseCordon, PhaseDetected, PhaseMoved, PhaseRecovered, PhaseUncordon, PhaseHealthy, PhaseDrain, PhaseDone} {
			if !contains(phases, want) {
				t.Errorf("no %q progress event in %v", want, phases)
			}
		}

		dir := t.TempDir()
		if _, err := Save(dir, rep); err != nil {
			t.Fatal(err)
		}
		back, err := Load(dir, rep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if back.Messages.Produced != m.Produced || !back.Timeline.Recovered.Equal(rep.Timeline.Recovered) {
			t.Errorf("loaded report differs: %+v", back)
		}
	})

	t.Run("an interrupted drill brings the cluster back", func(t *testing.T) {
		// b runs count, which has no failover cluster: the drill notes it.
		dctx, stop := context.WithCancel(ctx)
		defer stop()
		rep, err := Run(dctx, Config{Client: c, Cluster: "b", Duration: time.Minute, Progress: func(e Event) {
			logf(e)
			if e.Phase == PhaseCordon {
				stop()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if rep == nil || rep.Timeline.Restored.IsZero() || rep.Passed() {
			t.Fatalf("report %+v: want the uncordon recorded and the drill failed", rep)
		}
		if !strings.Contains(strings.Join(rep.Notes, "\n"), "no failover clusters") {
			t.Errorf("notes %q do not say count has no failover cluster", rep.Notes)
		}
		got, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: "Cluster", Name: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetObject().GetCluster().GetSpec().GetCordoned() {
			t.Fatal("cluster b left cordoned")
		}
	})

	t.Run("a cordoned cluster is refused", func(t *testing.T) {
		r := &runner{cfg: Config{Client: c, Cluster: "c"}, c: c}
		if err := r.setCordoned(ctx, true); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.setCordoned(ctx, false) }()
		_, err := Run(ctx, Config{Client: c, Cluster: "c", ReadyTimeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "already cordoned") {
			t.Fatalf("err = %v, want already cordoned", err)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
