package federation

import (
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func TestRecommend(t *testing.T) {
	now := time.Unix(1000, 0)
	p := ScalePolicy{Min: 1, Max: 4, BacklogPerReplica: 1000, CPUUtilization: 70, CPURequestMillis: 100}
	tests := []struct {
		name    string
		p       ScalePolicy
		s       ScaleSample
		current int
		want    int
		reason  string
	}{
		{"backlog within", p, ScaleSample{Backlog: 2500, Partitions: 4, CPUMillis: -1}, 1, 3, "backlog 2500 over 4 partitions at 1000 per replica wants 3"},
		{"backlog above max", p, ScaleSample{Backlog: 200000, Partitions: 4, CPUMillis: -1}, 1, 4, "within 1..4: 4"},
		{"no backlog", p, ScaleSample{Backlog: 0, Partitions: 4, CPUMillis: -1}, 4, 1, "wants 0"},
		{"partitions cap", ScalePolicy{Min: 1, Max: 8, BacklogPerReplica: 10}, ScaleSample{Backlog: 1000, Partitions: 2, PartitionsLimit: 2, CPUMillis: -1}, 1, 2, "capped at 2 partitions"},
		{"partitions cap under min", ScalePolicy{Min: 3, Max: 8, BacklogPerReplica: 10}, ScaleSample{Backlog: 1000, PartitionsLimit: 2, CPUMillis: -1}, 3, 3, "capped"},
		{"cpu hot", p, ScaleSample{Backlog: -1, CPUMillis: 180, Reporting: 2}, 2, 3, "cpu 180m over 2 replicas (90% of 100m, target 70%) wants 3"},
		{"cpu idle", p, ScaleSample{Backlog: -1, CPUMillis: 20, Reporting: 4}, 4, 1, "wants 1"},
		{"cpu larger than backlog", p, ScaleSample{Backlog: 500, CPUMillis: 270, Reporting: 3}, 3, 4, "wants 4"},
		{"cpu request", ScalePolicy{Min: 1, Max: 10, CPUUtilization: 50, CPURequestMillis: 1000}, ScaleSample{Backlog: -1, CPUMillis: 2600, Reporting: 2}, 2, 6, "wants 6"},
		{"cpu without reports", p, ScaleSample{Backlog: -1, CPUMillis: 0, Reporting: 0}, 2, 2, "no measurement"},
		{"nothing known", p, ScaleSample{Backlog: -1, CPUMillis: -1}, 3, 3, "no measurement"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Recommend(tc.p, tc.s, tc.current, now)
			if r.Replicas != tc.want || !strings.Contains(r.Reason, tc.reason) || !r.Time.Equal(now) {
				t.Errorf("Recommend = %d %q, want %d with %q", r.Replicas, r.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at   time.Duration // after t0
		rec  int
		want int
	}
	p := ScalePolicy{Min: 1, Max: 4, UpWindow: 0, DownWindow: 30 * time.Second}
	tests := []struct {
		name  string
		p     ScalePolicy
		start int
		steps []step
	}{
		{"up at once", p, 1, []step{{0, 4, 4}}},
		{"down waits for the window", p, 4, []step{{0, 4, 4}, {10 * time.Second, 1, 4}, {20 * time.Second, 1, 4}, {39 * time.Second, 1, 4}, {40 * time.Second, 1, 1}}},
		{"down to the window's highest", p, 4, []step{{0, 3, 4}, {10 * time.Second, 2, 4}, {20 * time.Second, 1, 4}, {30 * time.Second, 1, 3}, {40 * time.Second, 1, 2}, {50 * time.Second, 1, 1}}},
		{"new leader waits a full window", p, 4, []step{{0, 1, 4}, {29 * time.Second, 1, 4}, {30 * time.Second, 1, 1}}},
		{"a spike in the window holds", p, 4, []step{{0, 1, 4}, {20 * time.Second, 4, 4}, {35 * time.Second, 1, 4}, {51 * time.Second, 1, 4}, {65 * time.Second, 1, 1}}},
		{"up window", ScalePolicy{Min: 1, Max: 8, UpWindow: 20 * time.Second, DownWindow: time.Minute}, 1,
			[]step{{0, 4, 1}, {10 * time.Second, 6, 1}, {20 * time.Second, 8, 4}, {30 * time.Second, 8, 6}, {41 * time.Second, 8, 8}}},
		{"up window broken by a low sample", ScalePolicy{Min: 1, Max: 8, UpWindow: 20 * time.Second, DownWindow: time.Minute}, 2,
			[]step{{0, 4, 2}, {10 * time.Second, 1, 2}, {20 * time.Second, 4, 2}, {31 * time.Second, 4, 2}, {39 * time.Second, 4, 2}, {40 * time.Second, 4, 4}}},
		{"bounds first", ScalePolicy{Min: 2, Max: 3, DownWindow: time.Minute}, 5, []step{{0, 3, 3}}},
		{"below min", ScalePolicy{Min: 2, Max: 3, DownWindow: time.Minute}, 1, []step{{0, 2, 2}}},
		{"steady", p, 2, []step{{0, 2, 2}, {time.Minute, 2, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h ScaleHistory
			cur := tc.start
			for i, s := range tc.steps {
				got, why := Decide(tc.p, &h, Recommendation{Time: t0.Add(s.at), Replicas: s.rec, Reason: "r"}, cur)
				if got != s.want {
					t.Fatalf("step %d (%s, rec %d, current %d): got %d (%q), want %d", i, s.at, s.rec, cur, got, why, s.want)
				}
				if got != cur && why == "" {
					t.Errorf("step %d: a change without a reason", i)
				}
				cur = got
			}
			if keep := max(tc.p.UpWindow, tc.p.DownWindow); len(h.Recs) > 1 && tc.steps[len(tc.steps)-1].at-keep >= h.Recs[1].Time.Sub(t0) {
				t.Errorf("history keeps %v, no longer in effect %s before the last step", h.Recs[0].Time, keep)
			}
		})
	}
}

// TestDecideReason: a decision held back by an older recommendation says
// so, naming the count it goes to.
func TestDecideReason(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := ScalePolicy{Min: 1, Max: 4, DownWindow: 4 * time.Second}
	var h ScaleHistory
	Decide(p, &h, Recommendation{Time: t0, Replicas: 2, Reason: "wants 2"}, 3)
	Decide(p, &h, Recommendation{Time: t0.Add(2 * time.Second), Replicas: 1, Reason: "wants 1"}, 3)
	got, why := Decide(p, &h, Recommendation{Time: t0.Add(4 * time.Second), Replicas: 1, Reason: "wants 1"}, 3)
	if want := "wants 1 (below 3 for 4s); highest recommendation over 4s: 2"; got != 2 || why != want {
		t.Errorf("Decide = %d %q, want 2 %q", got, why, want)
	}
	got, why = Decide(p, &h, Recommendation{Time: t0.Add(7 * time.Second), Replicas: 1, Reason: "wants 1"}, 2)
	if want := "wants 1 (below 2 for 4s)"; got != 1 || why != want {
		t.Errorf("Decide = %d %q, want 1 %q", got, why, want)
	}
}

func TestDesiredReplicas(t *testing.T) {
	as := &meshfedv1.Autoscaling{BacklogPerReplica: 10}
	mesh := func(scale map[string]int32) *meshfedv1.FunctionMesh {
		return &meshfedv1.FunctionMesh{Status: &meshfedv1.FunctionMeshStatus{Scale: scale}}
	}
	tests := []struct {
		name string
		m    *meshfedv1.FunctionMesh
		f    *meshfedv1.FunctionSpec
		want int
	}{
		{"fixed", mesh(map[string]int32{"f": 3}), &meshfedv1.FunctionSpec{Name: "f", Replicas: 2}, 2},
		{"fixed default", mesh(nil), &meshfedv1.FunctionSpec{Name: "f"}, 1},
		{"no decision: min", mesh(nil), &meshfedv1.FunctionSpec{Name: "f", MinReplicas: 2, MaxReplicas: 5, Autoscaling: as}, 2},
		{"no decision: replicas", mesh(nil), &meshfedv1.FunctionSpec{Name: "f", Replicas: 3, MinReplicas: 2, MaxReplicas: 5, Autoscaling: as}, 3},
		{"decided", mesh(map[string]int32{"f": 4}), &meshfedv1.FunctionSpec{Name: "f", MinReplicas: 1, MaxReplicas: 5, Autoscaling: as}, 4},
		{"decided above a lowered max", mesh(map[string]int32{"f": 4}), &meshfedv1.FunctionSpec{Name: "f", MinReplicas: 1, MaxReplicas: 2, Autoscaling: as}, 2},
		{"other function's decision", mesh(map[string]int32{"g": 4}), &meshfedv1.FunctionSpec{Name: "f", MinReplicas: 1, MaxReplicas: 5, Autoscaling: as}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DesiredReplicas(tc.m, tc.f); got != tc.want {
				t.Errorf("DesiredReplicas = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPolicyOf(t *testing.T) {
	p := PolicyOf(&meshfedv1.FunctionSpec{MinReplicas: 1, MaxReplicas: 4, Resources: &meshfedv1.Resources{Cpu: "500m"},
		Autoscaling: &meshfedv1.Autoscaling{CpuUtilization: 70, ScaleDownStabilization: "1m", Interval: "2s"}})
	want := ScalePolicy{Min: 1, Max: 4, CPUUtilization: 70, CPURequestMillis: 500, UpWindow: 0, DownWindow: time.Minute, Interval: 2 * time.Second}
	if p != want {
		t.Errorf("PolicyOf = %+v, want %+v", p, want)
	}
	if d := PolicyOf(&meshfedv1.FunctionSpec{Autoscaling: &meshfedv1.Autoscaling{}}); d.DownWindow != DefaultScaleDownStabilization || d.Interval != DefaultScaleInterval || d.CPURequestMillis != DefaultCPURequestMillis {
		t.Errorf("defaults = %+v", d)
	}
}
