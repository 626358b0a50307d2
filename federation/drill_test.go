package federation

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var drillT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return drillT0.Add(time.Duration(ms) * time.Millisecond) }

func dur(ms int) *time.Duration {
	d := time.Duration(ms) * time.Millisecond
	return &d
}

func TestDrillTimes(t *testing.T) {
	cases := []struct {
		name string
		tl   DrillTimeline
		want DrillTimes
	}{
		{"nothing reached", DrillTimeline{Started: at(0)}, DrillTimes{}},
		{"full drill",
			DrillTimeline{Started: at(0), Failed: at(1000), Detected: at(1120), Recovered: at(2500),
				Restored: at(11000), Healthy: at(11200), FailedBack: at(42000), Finished: at(43000)},
			DrillTimes{Detection: dur(120), Recovery: dur(1500), Outage: dur(10000), Failback: dur(31000)}},
		{"never recovered", DrillTimeline{Failed: at(1000), Detected: at(1100), Restored: at(5000)},
			DrillTimes{Detection: dur(100), Outage: dur(4000)}},
		{"failback not waited for", DrillTimeline{Failed: at(0), Detected: at(50), Recovered: at(900), Restored: at(3000)},
			DrillTimes{Detection: dur(50), Recovery: dur(900), Outage: dur(3000)}},
		{"end before start (clock step) clamps to zero", DrillTimeline{Failed: at(1000), Detected: at(900)},
			DrillTimes{Detection: dur(0)}},
		{"no cordon: nothing measured", DrillTimeline{Detected: at(10), Recovered: at(20)}, DrillTimes{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.tl.Times(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Times() = %s, want %s", show(got), show(c.want))
			}
		})
	}
}

func show(t DrillTimes) string {
	f := func(d *time.Duration) string {
		if d == nil {
			return "nil"
		}
		return d.String()
	}
	return "{det " + f(t.Detection) + " rec " + f(t.Recovery) + " out " + f(t.Outage) + " fb " + f(t.Failback) + "}"
}

// obs builds observations: each entry is seq, output, read time in ms.
func obs(v ...[3]int) []Observation {
	var out []Observation
	for _, o := range v {
		out = append(out, Observation{Seq: int64(o[0]), Output: o[1], At: at(o[2])})
	}
	return out
}

// prod builds n messages with k outputs each, message i acknowledged at i*10 ms.
func prod(n, k int) []ProducedMessage {
	var out []ProducedMessage
	for i := 0; i < n; i++ {
		out = append(out, ProducedMessage{Seq: int64(i), Outputs: k, Acked: at(i * 10)})
	}
	return out
}

func TestAccountMessages(t *testing.T) {
	cases := []struct {
		name     string
		produced []ProducedMessage
		seen     []Observation
		want     MessageAccount
	}{
		{"empty", nil, nil, MessageAccount{}},
		{"everything once, in time",
			prod(3, 2),
			obs([3]int{0, 0, 5}, [3]int{0, 1, 5}, [3]int{1, 0, 15}, [3]int{1, 1, 16}, [3]int{2, 1, 25}, [3]int{2, 0, 27}),
			MessageAccount{Produced: 3, ExpectedOutputs: 6, Consumed: 6, Delivered: 6, ExactlyOnce: 3, PeakLag: 1, PeakLagAt: at(0), MaxDelay: 7 * time.Millisecond}},
		{"one item of one message lost",
			prod(3, 2),
			obs([3]int{0, 0, 5}, [3]int{0, 1, 5}, [3]int{1, 0, 15}, [3]int{2, 0, 25}, [3]int{2, 1, 25}),
			MessageAccount{Produced: 3, ExpectedOutputs: 6, Consumed: 5, Delivered: 5, ExactlyOnce: 2, Lost: 1, LostMessages: 1, FirstLost: []int64{1},
				PeakLag: 2, PeakLagAt: at(20), MaxDelay: 5 * time.Millisecond}},
		{"duplicates counted per extra read",
			prod(2, 1),
			obs([3]int{0, 0, 1}, [3]int{0, 0, 3}, [3]int{0, 0, 4}, [3]int{1, 0, 12}),
			MessageAccount{Produced: 2, ExpectedOutputs: 2, Consumed: 4, Delivered: 2, ExactlyOnce: 1, Duplicated: 2, DuplicatedMessages: 1, FirstDuplicated: []int64{0},
				PeakLag: 1, PeakLagAt: at(0), MaxDelay: 2 * time.Millisecond}},
		{"the earliest read counts for delay even when seen out of order",
			prod(1, 1),
			obs([3]int{0, 0, 90}, [3]int{0, 0, 30}),
			MessageAccount{Produced: 1, ExpectedOutputs: 1, Consumed: 2, Delivered: 1, Duplicated: 1, DuplicatedMessages: 1, FirstDuplicated: []int64{0},
				PeakLag: 1, PeakLagAt: at(0), MaxDelay: 30 * time.Millisecond}},
		{"unknown sequence and out-of-range output are unexpected, not duplicates",
			prod(1, 2),
			obs([3]int{0, 0, 1}, [3]int{0, 1, 1}, [3]int{7, 0, 2}, [3]int{0, 2, 2}, [3]int{0, -1, 2}),
			MessageAccount{Produced: 1, ExpectedOutputs: 2, Consumed: 2, Delivered: 2, ExactlyOnce: 1, Unexpected: 3,
				PeakLag: 1, PeakLagAt: at(0), MaxDelay: time.Millisecond}},
		{"read before the ack callback ran: zero delay, no lag",
			[]ProducedMessage{{Seq: 0, Outputs: 1, Acked: at(10)}},
			obs([3]int{0, 0, 8}),
			MessageAccount{Produced: 1, ExpectedOutputs: 1, Consumed: 1, Delivered: 1, ExactlyOnce: 1}},
		{"a stall builds lag that drains after failover",
			// 0..4 acked at 0,10,..40; 0 delivered at 2; 1..4 stall until 1000.
			prod(5, 1),
			obs([3]int{0, 0, 2}, [3]int{1, 0, 1000}, [3]int{2, 0, 1000}, [3]int{3, 0, 1001}, [3]int{4, 0, 1001}),
			MessageAccount{Produced: 5, ExpectedOutputs: 5, Consumed: 5, Delivered: 5, ExactlyOnce: 5, PeakLag: 4, PeakLagAt: at(40), MaxDelay: 990 * time.Millisecond}},
		{"a produced sequence listed twice counts once",
			append(prod(1, 1), ProducedMessage{Seq: 0, Outputs: 1, Acked: at(0)}),
			obs([3]int{0, 0, 1}),
			MessageAccount{Produced: 1, ExpectedOutputs: 1, Consumed: 1, Delivered: 1, ExactlyOnce: 1, PeakLag: 1, PeakLagAt: at(0), MaxDelay: time.Millisecond}},
		{"nothing read: all lost, lag is every message",
			prod(3, 3), nil,
			MessageAccount{Produced: 3, ExpectedOutputs: 9, Lost: 9, LostMessages: 3, FirstLost: []int64{0, 1, 2}, PeakLag: 3, PeakLagAt: at(20)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := AccountMessages(c.produced, c.seen)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("AccountMessages:\n got  %+v\n want %+v", got, c.want)
			}
		})
	}
}

func TestAccountMessagesListsAtMostMaxListed(t *testing.T) {
	got := AccountMessages(prod(25, 1), nil)
	if got.LostMessages != 25 || len(got.FirstLost) != MaxListed || got.FirstLost[MaxListed-1] != MaxListed-1 {
		t.Fatalf("lost %d, listed %v", got.LostMessages, got.FirstLost)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	cases := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 20 is the maximum", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 99, 20 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100", ms(hundred...), 100, 100 * time.Millisecond},
		{"tiny p is the minimum", ms(9, 8, 7), 0.1, 7 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.in, c.p); got != c.want {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
			}
		})
	}
}

func TestDrillProblems(t *testing.T) {
	full := DrillTimeline{Started: at(0), Failed: at(10), Detected: at(20), Recovered: at(900), Restored: at(5000), FailedBack: at(36000)}
	eo := []DrillInstance{{Assignment: "m.split.0", Guarantee: "effectively_once", MovedTo: "c", MovedAt: at(900)}}
	alo := []DrillInstance{{Assignment: "m.split.0", Guarantee: "atleast_once", MovedTo: "c", MovedAt: at(900)}}
	cases := []struct {
		name string
		r    DrillReport
		want []string // substrings, one per problem, in order
	}{
		{"clean", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: &MessageAccount{Produced: 10}}, nil},
		{"no affected instances", DrillReport{Cluster: "a", Timeline: full, FailbackStatus: FailbackDone}, []string{"ran no instance"}},
		{"not detected, not recovered",
			DrillReport{Cluster: "a", Affected: []DrillInstance{{Assignment: "m.split.0"}}, Timeline: DrillTimeline{Failed: at(1)}, FailbackStatus: FailbackSkipped},
			[]string{"never seen Cordoned", "m.split.0"}},
		{"failback pending", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackPending}, []string{"failback did not complete"}},
		{"skipped failback is not a problem", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackSkipped}, nil},
		{"loss", DrillReport{Cluster: "a", Affected: alo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: &MessageAccount{Produced: 10, Lost: 2, LostMessages: 1, FirstLost: []int64{4}}}, []string{"lost 2 output items of 1 input messages (first: [4])"}},
		{"duplicates fail effectively_once", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: &MessageAccount{Produced: 10, Duplicated: 3}}, []string{"3 duplicated output items under effectively_once"}},
		{"duplicates are allowed under atleast_once", DrillReport{Cluster: "a", Affected: alo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: &MessageAccount{Produced: 10, Duplicated: 3}}, nil},
		{"nothing produced", DrillReport{Cluster: "a", Affected: eo, Timeline: full, FailbackStatus: FailbackDone,
			Messages: &MessageAccount{}}, []string{"no input message"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantProblems(t, &c.r, c.want) })
	}
}

func TestSummarizeDrills(t *testing.T) {
	mk := func(recMs int, lost, dup int) *DrillReport {
		r := &DrillReport{Cluster: "a", Affected: []DrillInstance{{Assignment: "x", Guarantee: "effectively_once", MovedAt: at(1)}},
			Timeline: DrillTimeline{Failed: at(0), Detected: at(30), Restored: at(10000)}, FailbackStatus: FailbackSkipped,
			Messages: &MessageAccount{Produced: 100, Lost: lost, Duplicated: dup, PeakLag: recMs / 10, MaxDelay: time.Duration(max(recMs, 0)) * time.Millisecond}}
		if recMs >= 0 {
			r.Timeline.Recovered = at(recMs)
		}
		r.Finalize()
		return r
	}
	var rs []*DrillReport
	for i := 1; i <= 19; i++ {
		rs = append(rs, mk(i*100, 0, 0))
	}
	rs = append(rs, mk(-1, 3, 1))
	s := SummarizeDrills(rs)
	want := DrillSummary{Runs: 20, Passed: 19, NotRecovered: 1,
		Detection: DurationStats{N: 20, P50: 30 * time.Millisecond, P99: 30 * time.Millisecond, Max: 30 * time.Millisecond},
		Recovery:  DurationStats{N: 19, P50: time.Second, P99: 1900 * time.Millisecond, Max: 1900 * time.Millisecond},
		Produced:  2000, Lost: 3, Duplicated: 1, PeakLag: 190,
		// Every drill with a stream counts, recovered or not (0 ms for the last).
		SlowestMessage: DurationStats{N: 20, P50: 900 * time.Millisecond, P99: 1900 * time.Millisecond, Max: 1900 * time.Millisecond}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("summary\n got  %+v\n want %+v", s, want)
	}
}

func TestReportJSONHasFiguresAndOmitsUnreached(t *testing.T) {
	r := &DrillReport{ID: "x", Cluster: "a", Affected: []DrillInstance{{Assignment: "m.f.0", MovedAt: at(800)}},
		Timeline: DrillTimeline{Started: at(0), Failed: at(100), Detected: at(150), Recovered: at(900)}, FailbackStatus: FailbackSkipped}
	r.Finalize()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"detectionSeconds":0.05`, `"recoverySeconds":0.8`, `"failbackSeconds":null`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, `"failedBack"`) || strings.Contains(s, `"problems"`) {
		t.Errorf("JSON shows unreached moments or empty problems: %s", s)
	}
	var back DrillReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Timeline.Recovered.Equal(r.Timeline.Recovered) || back.Figures.RecoverySeconds == nil || *back.Figures.RecoverySeconds != 0.8 {
		t.Fatalf("round trip lost data: %+v", back)
	}
}

// wantProblems checks that DrillProblems finds in r one problem per entry
// of want, in order, each containing that entry.
func wantProblems(t *testing.T, r *DrillReport, want []string) {
	t.Helper()
	got := DrillProblems(r)
	if len(got) != len(want) {
		t.Fatalf("problems %q, want %d matching %q", got, len(want), want)
	}
	for i := range got {
		if !strings.Contains(got[i], want[i]) {
			t.Fatalf("problem %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}
