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
	"github.com/meshfed/meshfed/dev/devtest"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// TestDrillAgainstDevFederation runs real drills against a dev federation
// of three clusters, each a broker and an agent process (word-count: split
// in a with failover to c, effectively_once, writing to b), with a 2 s
// failback hold-down: a cordon drill, a crash drill, an interrupted drill
// and a refused one.
func TestDrillAgainstDevFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f, err := dev.Start(ctx, dev.Config{DataDir: t.TempDir(), Clusters: 3, GRPCAddr: "127.0.0.1:0", Binary: devtest.Binary(t),
		FailbackHoldDown: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
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

	for _, mode := range []string{federation.DrillModeCordon, federation.DrillModeCrash} {
		t.Run(mode+" of a: word-count split fails over to c and back", func(t *testing.T) {
			var phases []string
			cfg := Config{Client: c, Cluster: "a", Mode: mode, Duration: 4 * time.Second, Rate: 40, FailbackTimeout: 40 * time.Second,
				PollInterval: 25 * time.Millisecond, Progress: func(e Event) { phases = append(phases, e.Phase); logf(e) }}
			if mode == federation.DrillModeCrash {
				// The stream stays on a, which dies working through a
				// burst: c's first outputs come from its replicated copy.
				cfg.Crash, cfg.Burst = f, 400
			}
			before := f.Status()[0]
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("drill: %v", err)
			}
			var sb strings.Builder
			if err := WriteText(&sb, rep); err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", sb.String())
			checkDrill(t, rep, mode)
			want := []string{PhasePreflight, PhaseStream, PhaseDetected, PhaseMoved, PhaseRecovered, PhaseHealthy, PhaseBack, PhaseFailedBack, PhaseDrain, PhaseDone}
			if mode == federation.DrillModeCrash {
				want = append(want, PhaseCrash, PhaseRestart)
				after := f.Status()[0]
				if after.Broker.Starts != before.Broker.Starts+1 || after.Agent.Starts != before.Agent.Starts+1 || !after.Broker.Running || !after.Agent.Running {
					t.Errorf("cluster a's processes before %+v, after %+v: want each killed and started once", before, after)
				}
			} else {
				want = append(want, PhaseCordon, PhaseUncordon)
			}
			for _, w := range want {
				if !contains(phases, w) {
					t.Errorf("no %q progress event in %v", w, phases)
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
			if back.Mode != mode || back.Messages.Produced != rep.Messages.Produced || !back.Timeline.Recovered.Equal(rep.Timeline.Recovered) {
				t.Errorf("loaded report differs: %+v", back)
			}
		})
	}

	t.Run("crash of a with a stranded tail: processed once after failback", func(t *testing.T) {
		rep, err := Run(ctx, Config{Client: c, Cluster: "a", Mode: federation.DrillModeCrash, Crash: f, StrandFor: time.Second,
			Duration: 4 * time.Second, Rate: 40, FailbackTimeout: 40 * time.Second, PollInterval: 25 * time.Millisecond, Progress: logf})
		if err != nil {
			t.Fatalf("drill: %v", err)
		}
		var sb strings.Builder
		if err := WriteText(&sb, rep); err != nil {
			t.Fatal(err)
		}
		t.Logf("report:\n%s", sb.String())
		checkDrill(t, rep, federation.DrillModeCrash)
		// About a second of the stream could not replicate to c.
		if rep.Unreplicated == nil || *rep.Unreplicated < 10 {
			t.Fatalf("unreplicated %v, want the ~40 inputs of the strand", rep.Unreplicated)
		}
		if st := rep.Stranded; st == nil || st.Produced != *rep.Unreplicated || st.ExactlyOnce != st.Produced || st.Lost != 0 || st.Duplicated != 0 {
			t.Fatalf("stranded tail %+v: want each of the %d inputs processed exactly once", st, *rep.Unreplicated)
		}
		if st := f.Status()[2]; !st.Broker.Running || st.Broker.Starts < 2 {
			t.Fatalf("cluster c's broker after the drill: %+v, want killed and started again", st)
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
		got, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: "b"})
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

// checkDrill checks what every drill of cluster a in the dev federation
// must show, whatever its mode.
func checkDrill(t *testing.T, rep *federation.DrillReport, mode string) {
	t.Helper()
	if len(rep.Problems) != 0 {
		t.Errorf("problems %q", rep.Problems)
	}
	if rep.Mode != mode {
		t.Errorf("mode %q, want %q", rep.Mode, mode)
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
	// A crash is seen by missed heartbeats: not before the agent TTL has
	// run from the last heartbeat, at most an interval before the kill.
	if earliest := dev.DefaultAgentTTL - 2*dev.DefaultHeartbeatInterval; mode == federation.DrillModeCrash && *tm.Detection < earliest {
		t.Errorf("crash detected after %v: before the agent TTL %v can have run out", *tm.Detection, dev.DefaultAgentTTL)
	}
	// The goal is 5 s; leave room for a loaded machine.
	if *tm.Recovery > 20*time.Second {
		t.Errorf("failover took %v", *tm.Recovery)
	}
	if tm.Outage == nil || *tm.Outage < 4*time.Second {
		t.Errorf("outage %v, want at least the 4s duration", tm.Outage)
	}
	if rep.Timeline.Healthy.IsZero() || rep.FailbackStatus != federation.FailbackDone || tm.Failback == nil || rep.Affected[0].BackAt.IsZero() {
		t.Errorf("healthy at %v, failback %q after %v: want healthy seen and failback done", rep.Timeline.Healthy, rep.FailbackStatus, tm.Failback)
	}
	m := rep.Messages
	if m == nil || m.Produced < 80 || m.Lost != 0 || m.Duplicated != 0 || m.ExactlyOnce != m.Produced || m.ExpectedOutputs != 3*m.Produced {
		t.Fatalf("messages %+v: want >= 80 produced, 3 items each, all delivered once", m)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
