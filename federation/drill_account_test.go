package federation

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUnreplicated(t *testing.T) {
	// Cutoff at 100 ms; the fallback's copy held 1 and 3 when a returned.
	inFallback := map[int64]bool{1: true, 3: true}
	cases := []struct {
		name     string
		produced []ProducedMessage
		want     []int64
	}{
		{"nothing produced", nil, nil},
		{"acknowledged by the home before the cutoff and not replicated",
			[]ProducedMessage{{Seq: 0, Acked: at(10), Cluster: "a"}, {Seq: 1, Acked: at(20), Cluster: "a"}, {Seq: 2, Acked: at(90), Cluster: "a"}},
			[]int64{0, 2}},
		{"replicated inputs are not stranded", []ProducedMessage{{Seq: 1, Acked: at(10), Cluster: "a"}, {Seq: 3, Acked: at(20), Cluster: "a"}}, nil},
		{"acknowledged at or after the cutoff: not stranded by it (sent again after the home returned)",
			[]ProducedMessage{{Seq: 4, Acked: at(100), Cluster: "a"}, {Seq: 5, Acked: at(5000), Cluster: "a"}}, nil},
		{"written to the fallback while the home was down", []ProducedMessage{{Seq: 6, Acked: at(50), Cluster: "c"}}, nil},
		{"no cluster is the home", []ProducedMessage{{Seq: 7, Acked: at(50)}}, []int64{7}},
		{"listed twice, returned once, in order",
			[]ProducedMessage{{Seq: 9, Acked: at(50), Cluster: "a"}, {Seq: 8, Acked: at(40), Cluster: "a"}, {Seq: 9, Acked: at(50), Cluster: "a"}},
			[]int64{8, 9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Unreplicated(c.produced, "a", at(100), inFallback); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Unreplicated = %v, want %v", got, c.want)
			}
		})
	}
}

func TestAccountDrill(t *testing.T) {
	produced := prod(4, 2) // 0..3, two items each
	seen := obs(
		[3]int{0, 0, 5}, [3]int{0, 1, 5}, // 0: once
		[3]int{1, 0, 15}, [3]int{1, 1, 15}, [3]int{1, 1, 16}, // 1: an item twice
		[3]int{2, 0, 30}, [3]int{2, 1, 30}, // 2 (stranded): once
		[3]int{3, 0, 40}, // 3 (stranded): an item lost
	)
	t.Run("not measured", func(t *testing.T) {
		main, tail := AccountDrill(produced, seen, nil)
		if tail != nil || main.Produced != 4 || main.Duplicated != 1 || main.Lost != 1 {
			t.Fatalf("main %+v, tail %+v: want everything in main, no tail", main, tail)
		}
	})
	t.Run("stranded tail accounted apart", func(t *testing.T) {
		main, tail := AccountDrill(produced, seen, []int64{2, 3})
		if main.Produced != 2 || main.ExactlyOnce != 1 || main.Duplicated != 1 || main.DuplicatedMessages != 1 || main.Lost != 0 || main.Unexpected != 0 {
			t.Errorf("main %+v: want inputs 0 and 1, one duplicated item, nothing lost or unexpected", main)
		}
		if tail == nil || tail.Produced != 2 || tail.ExactlyOnce != 1 || tail.LostMessages != 1 || !reflect.DeepEqual(tail.FirstLost, []int64{3}) ||
			tail.Duplicated != 0 || tail.Unexpected != 0 {
			t.Errorf("tail %+v: want inputs 2 (once) and 3 (lost)", tail)
		}
	})
	t.Run("measured, nothing stranded", func(t *testing.T) {
		main, tail := AccountDrill(produced, seen, []int64{})
		if tail == nil || tail.Produced != 0 || main.Produced != 4 {
			t.Fatalf("main %+v, tail %+v: want an empty tail", main, tail)
		}
	})
}

func TestFirstOutputFrom(t *testing.T) {
	seen := []Observation{
		{Seq: 0, At: at(50), Cluster: "c"},   // before the failure
		{Seq: 1, At: at(150), Cluster: "a"},  // the failed cluster
		{Seq: 2, At: at(160)},                // no property
		{Seq: 4, At: at(900), Cluster: "c"},  // later
		{Seq: 3, At: at(700), Cluster: "c"},  // first, read out of order
		{Seq: 5, At: at(1000), Cluster: "b"}, // another fallback, later
	}
	got, cluster := FirstOutputFrom(seen, at(100), "a")
	if !got.Equal(at(700)) || cluster != "c" {
		t.Fatalf("FirstOutputFrom = %v %q, want +700ms from c", got.Sub(drillT0), cluster)
	}
	if got, cluster := FirstOutputFrom(seen[:3], at(100), "a"); !got.IsZero() || cluster != "" {
		t.Fatalf("FirstOutputFrom without a fallback output = %v %q", got, cluster)
	}
	if !OutputsCarryCluster(seen) || OutputsCarryCluster(seen[2:3]) || OutputsCarryCluster(nil) {
		t.Fatal("OutputsCarryCluster")
	}
}

func TestDrillProblemsOfCrashDrills(t *testing.T) {
	full := DrillTimeline{Started: at(0), Failed: at(10), Detected: at(1500), Recovered: at(2200), FallbackOutput: at(2400),
		Restored: at(5000), FailedBack: at(36000)}
	noOutput := full
	noOutput.FallbackOutput = time.Time{}
	eo := []DrillInstance{{Assignment: "m.split.0", Guarantee: "effectively_once", MovedTo: "c", MovedAt: at(2200)}}
	alo := []DrillInstance{{Assignment: "m.split.0", Guarantee: "atleast_once", MovedTo: "c", MovedAt: at(2200)}}
	msgs := &MessageAccount{Produced: 10}
	cases := []struct {
		name string
		r    DrillReport
		want []string
	}{
		{"clean crash", DrillReport{Cluster: "a", Mode: DrillModeCrash, Affected: eo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: msgs, OutputsCarryCluster: true, Stranded: &MessageAccount{Produced: 3, ExactlyOnce: 3}}, nil},
		{"no output from the fallback", DrillReport{Cluster: "a", Affected: eo, Timeline: noOutput, FailbackStatus: FailbackDone,
			Messages: msgs, OutputsCarryCluster: true}, []string{"no output produced in a fallback cluster"}},
		{"no output from a crash drill's fallback with a backlog", DrillReport{Cluster: "a", Mode: DrillModeCrash, FallbackBacklog: 1000, Affected: eo,
			Timeline: noOutput, FailbackStatus: FailbackDone, Messages: msgs, OutputsCarryCluster: true}, []string{"no output produced in a fallback cluster"}},
		{"no output from a crash drill's fallback left nothing to do", DrillReport{Cluster: "a", Mode: DrillModeCrash, Affected: eo,
			Timeline: noOutput, FailbackStatus: FailbackDone, Messages: msgs, OutputsCarryCluster: true}, nil},
		{"outputs without the property cannot tell", DrillReport{Cluster: "a", Affected: eo, Timeline: noOutput, FailbackStatus: FailbackDone,
			Messages: msgs}, nil},
		{"stranded inputs lost after failback", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: msgs, OutputsCarryCluster: true, Stranded: &MessageAccount{Produced: 3, ExactlyOnce: 1, LostMessages: 2, Lost: 4, FirstLost: []int64{7, 8}}},
			[]string{"stranded tail: 2 of 3 unreplicated inputs lost after failback (first: [7 8])"}},
		{"stranded inputs not yet processed without failback", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackSkipped,
			Messages: msgs, OutputsCarryCluster: true, Stranded: &MessageAccount{Produced: 3, LostMessages: 3, Lost: 9}}, nil},
		{"stranded duplicates under effectively_once", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: msgs, OutputsCarryCluster: true, Stranded: &MessageAccount{Produced: 3, Duplicated: 2, DuplicatedMessages: 1, FirstDuplicated: []int64{5}}},
			[]string{"stranded tail: 2 duplicated output items"}},
		{"stranded duplicates allowed under atleast_once", DrillReport{Cluster: "a", Affected: alo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: msgs, OutputsCarryCluster: true, Stranded: &MessageAccount{Produced: 3, Duplicated: 2, DuplicatedMessages: 1}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantProblems(t, &c.r, c.want) })
	}
}

func TestTimelineReadsReportsOfCordonOnlyDrills(t *testing.T) {
	var r DrillReport
	old := `{"id":"x","cluster":"a","timeline":{"started":"2026-11-26T12:00:00Z","cordoned":"2026-11-26T12:00:01Z",` +
		`"detected":"2026-11-26T12:00:01.05Z","recovered":"2026-11-26T12:00:02Z","uncordoned":"2026-11-26T12:00:11Z"}}`
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	tm := r.Timeline.Times()
	if tm.Detection == nil || *tm.Detection != 50*time.Millisecond || tm.Outage == nil || *tm.Outage != 10*time.Second || r.ModeOrDefault() != DrillModeCordon {
		t.Fatalf("timeline %+v, mode %q: want the cordon read as the failure", r.Timeline, r.ModeOrDefault())
	}
	b, err := json.Marshal(r.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"failed":"2026-11-26T12:00:01Z"`) || strings.Contains(s, "cordoned") {
		t.Fatalf("re-encoded timeline %s", s)
	}
}

func TestSummarizeCrashDrills(t *testing.T) {
	mk := func(firstMs, unrepl int, stranded *MessageAccount) *DrillReport {
		r := &DrillReport{Cluster: "a", Mode: DrillModeCrash, Affected: []DrillInstance{{Assignment: "x", Guarantee: "effectively_once", MovedAt: at(1)}},
			Timeline: DrillTimeline{Failed: at(0), Detected: at(1500), Recovered: at(2000), Restored: at(10000)}, FailbackStatus: FailbackSkipped,
			Messages: &MessageAccount{Produced: 100}, Stranded: stranded}
		if firstMs >= 0 {
			r.Timeline.FallbackOutput = at(firstMs)
		}
		if unrepl >= 0 {
			r.Unreplicated = &unrepl
		}
		r.Finalize()
		return r
	}
	s := SummarizeDrills([]*DrillReport{
		mk(2100, 2, &MessageAccount{Produced: 2, ExactlyOnce: 2}),
		mk(2500, 3, &MessageAccount{Produced: 3, ExactlyOnce: 1, LostMessages: 1, DuplicatedMessages: 1}),
		mk(-1, -1, nil), // cordon-era or simulated: nothing measured
	})
	if s.FirstOutput != (DurationStats{N: 2, P50: 2100 * time.Millisecond, P99: 2500 * time.Millisecond, Max: 2500 * time.Millisecond}) {
		t.Errorf("first output %+v", s.FirstOutput)
	}
	if s.UnreplicatedDrills != 2 || s.Unreplicated != 5 || s.StrandedOnce != 3 || s.StrandedLost != 1 || s.StrandedDuplicated != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestNotWrittenBy(t *testing.T) {
	seen := []Observation{
		{Seq: 9, Cluster: "a"},                           // before the burst
		{Seq: 10, Cluster: "a"}, {Seq: 10, Cluster: "a"}, // two items of one input
		{Seq: 11, Cluster: "c"}, // written by the fallback
		{Seq: 12, Cluster: "a"},
		{Seq: 13},               // no property
		{Seq: 14, Cluster: "a"}, // after the burst
	}
	if got := NotWrittenBy(seen, 10, 4, "a"); got != 2 {
		t.Fatalf("NotWrittenBy = %d, want 2 (inputs 11 and 13)", got)
	}
	if got := NotWrittenBy(seen, 10, 3, "a"); got != 1 {
		t.Fatalf("NotWrittenBy of [10, 13) = %d, want 1", got)
	}
	if got := NotWrittenBy(nil, 10, 4, "a"); got != 4 {
		t.Fatalf("NotWrittenBy of nothing read = %d, want 4", got)
	}
}
