package federation

import (
	"fmt"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Autoscaling defaults, used where a function's autoscaling leaves a field empty.
const (
	DefaultScaleUpStabilization   = 0
	DefaultScaleDownStabilization = 5 * time.Minute
	DefaultScaleInterval          = 10 * time.Second
	// MaxScaleEvents is how many scale events a mesh's status keeps.
	MaxScaleEvents = 20
)

// DesiredReplicas is the number of instances the scheduler runs for
// function f of mesh m: for an autoscaled function the count the
// autoscaler last decided (status.scale), else its starting count, kept
// within [minReplicas, maxReplicas]; for any other function Replicas(f).
func DesiredReplicas(m *meshfedv1.FunctionMesh, f *meshfedv1.FunctionSpec) int {
	if f.GetAutoscaling() == nil {
		return Replicas(f)
	}
	n, ok := m.GetStatus().GetScale()[f.GetName()]
	if !ok {
		n = max(f.GetReplicas(), f.GetMinReplicas())
	}
	return int(clamp32(n, max(f.GetMinReplicas(), 1), max(f.GetMaxReplicas(), f.GetMinReplicas(), 1)))
}

func clamp32(n, lo, hi int32) int32 { return min(max(n, lo), hi) }

// ScalePolicy is a function's autoscaling target with its defaults
// applied, as the autoscaler uses it.
type ScalePolicy struct {
	Min, Max int
	// BacklogPerReplica is the backlog one replica should carry; zero:
	// backlog is not a signal.
	BacklogPerReplica int64
	// CPUUtilization is the target percent of CPURequestMillis; zero: CPU
	// is not a signal.
	CPUUtilization   int
	CPURequestMillis int64
	UpWindow         time.Duration
	DownWindow       time.Duration
	Interval         time.Duration
}

// PolicyOf reads f's autoscaling (validated at admission; a field that
// does not parse takes its default).
func PolicyOf(f *meshfedv1.FunctionSpec) ScalePolicy {
	as := f.GetAutoscaling()
	p := ScalePolicy{
		Min: int(max(f.GetMinReplicas(), 1)), Max: int(max(f.GetMaxReplicas(), f.GetMinReplicas(), 1)),
		BacklogPerReplica: as.GetBacklogPerReplica(), CPUUtilization: int(as.GetCpuUtilization()),
		CPURequestMillis: DefaultCPURequestMillis,
		UpWindow:         durationOr(as.GetScaleUpStabilization(), DefaultScaleUpStabilization),
		DownWindow:       durationOr(as.GetScaleDownStabilization(), DefaultScaleDownStabilization),
		Interval:         durationOr(as.GetInterval(), DefaultScaleInterval),
	}
	if c, err := objects.ParseCPU(f.GetResources().GetCpu()); err == nil && c > 0 {
		p.CPURequestMillis = c
	}
	return p
}

func durationOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d
	}
	return def
}

// ScaleSample is one measurement of a function's load.
type ScaleSample struct {
	// Backlog is the unacknowledged input messages on the function's
	// subscription over every input partition; negative: unknown.
	Backlog int64
	// Partitions is the number of input partitions read (a non-partitioned
	// topic counts one); zero: unknown.
	Partitions int
	// PartitionsLimit, when positive, is the most replicas that can share
	// the input: a Failover subscription (effectively_once) gives each
	// partition to one consumer, so replicas beyond the partitions idle.
	PartitionsLimit int
	// CPUMillis is the CPU used by the Reporting replicas together;
	// negative: unknown.
	CPUMillis int64
	Reporting int
}

// Recommendation is the replica count one sample calls for.
type Recommendation struct {
	Time     time.Time
	Replicas int
	// Reason says what the count stands on, with the measurements.
	Reason string
}

// Recommend returns the replicas sample s calls for under p at now: the
// larger of the backlog's and CPU's counts, within [p.Min, p.Max] and not
// above the partitions limit (unless p.Min is). An unknown signal
// recommends nothing; with no signal known the current count stays.
func Recommend(p ScalePolicy, s ScaleSample, current int, now time.Time) Recommendation {
	want := 0
	var why []string
	if p.BacklogPerReplica > 0 && s.Backlog >= 0 {
		n := int((s.Backlog + p.BacklogPerReplica - 1) / p.BacklogPerReplica)
		want = max(want, n)
		why = append(why, fmt.Sprintf("backlog %d over %d partitions at %d per replica wants %d", s.Backlog, s.Partitions, p.BacklogPerReplica, n))
	}
	if p.CPUUtilization > 0 && s.CPUMillis >= 0 && s.Reporting > 0 {
		perReplica := s.CPUMillis / int64(s.Reporting)
		util := perReplica * 100 / p.CPURequestMillis
		// As Kubernetes' HPA: the count that brings the average to the target.
		n := int((s.CPUMillis*100 + p.CPURequestMillis*int64(p.CPUUtilization) - 1) / (p.CPURequestMillis * int64(p.CPUUtilization)))
		want = max(want, n)
		why = append(why, fmt.Sprintf("cpu %dm over %d replicas (%d%% of %dm, target %d%%) wants %d",
			s.CPUMillis, s.Reporting, util, p.CPURequestMillis, p.CPUUtilization, n))
	}
	if len(why) == 0 {
		return Recommendation{Time: now, Replicas: current, Reason: "no measurement"}
	}
	bounded := min(max(want, p.Min), p.Max)
	if s.PartitionsLimit > 0 && bounded > s.PartitionsLimit {
		bounded = max(s.PartitionsLimit, p.Min)
		why = append(why, fmt.Sprintf("capped at %d partitions", s.PartitionsLimit))
	}
	if bounded != want {
		why = append(why, fmt.Sprintf("within %d..%d: %d", p.Min, p.Max, bounded))
	}
	return Recommendation{Time: now, Replicas: bounded, Reason: strings.Join(why, "; ")}
}

// ScaleHistory is what the autoscaler remembers of one function: its
// recent recommendations, oldest first. It lives in the leader's memory
// only; a new leader starts empty, so it waits a full window before
// scaling down.
type ScaleHistory struct {
	Recs []Recommendation
	// Since is when the history started; zero: no sample yet.
	Since time.Time
}

// Decide adds rec to h and returns the replicas to run now, given the
// current count: it scales up when the recommendations have been above
// current for the whole up-window (and the history covers it), to the
// lowest of them; it scales down when they have been below current for the
// whole down-window, to the highest of them. Otherwise current stays.
// Recommendations no longer in effect in either window are dropped from h.
func Decide(p ScalePolicy, h *ScaleHistory, rec Recommendation, current int) (int, string) {
	now := rec.Time
	if h.Since.IsZero() {
		h.Since = now
	}
	h.Recs = append(h.Recs, rec)
	keep := max(p.UpWindow, p.DownWindow)
	drop := 0
	for drop+1 < len(h.Recs) && now.Sub(h.Recs[drop+1].Time) >= keep {
		drop++ // the next one is in effect at the oldest window's start
	}
	h.Recs = h.Recs[drop:]
	target := min(max(current, p.Min), p.Max)
	if target != current {
		return target, fmt.Sprintf("bounds %d..%d", p.Min, p.Max)
	}
	if lo, ok := h.within(now, p.UpWindow, func(a, b int) bool { return a < b }); ok && lo > current {
		return lo, h.latestReason() + h.heldBy(lo, "lowest", p.UpWindow)
	}
	if hi, ok := h.within(now, p.DownWindow, func(a, b int) bool { return a > b }); ok && hi < current {
		return hi, h.latestReason() + fmt.Sprintf(" (below %d for %s)", current, p.DownWindow) + h.heldBy(hi, "highest", p.DownWindow)
	}
	return current, ""
}

// heldBy explains a decision for n that differs from the latest
// recommendation: the window's extreme (which) holds it back.
func (h *ScaleHistory) heldBy(n int, which string, window time.Duration) string {
	if len(h.Recs) == 0 || h.Recs[len(h.Recs)-1].Replicas == n {
		return ""
	}
	return fmt.Sprintf("; %s recommendation over %s: %d", which, window, n)
}

// within returns the extreme (by better) of the recommendations in effect
// during the window ending at now (those made in it and the one in effect
// at its start), and whether the history covers the window.
func (h *ScaleHistory) within(now time.Time, window time.Duration, better func(a, b int) bool) (int, bool) {
	if now.Sub(h.Since) < window {
		return 0, false
	}
	best, found := 0, false
	for i, r := range h.Recs {
		inEffect := now.Sub(r.Time) <= window || i+1 < len(h.Recs) && now.Sub(h.Recs[i+1].Time) < window
		if inEffect && (!found || better(r.Replicas, best)) {
			best, found = r.Replicas, true
		}
	}
	return best, found
}

func (h *ScaleHistory) latestReason() string {
	if len(h.Recs) == 0 {
		return ""
	}
	return h.Recs[len(h.Recs)-1].Reason
}
