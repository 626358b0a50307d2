package federation

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/meshfed/meshfed/objects"
)

// Failback outcomes of a drill.
const (
	// FailbackDone: every affected instance ran in its home cluster again.
	FailbackDone = "done"
	// FailbackPending: the drill stopped waiting (its failback timeout)
	// before every affected instance was back home.
	FailbackPending = "pending"
	// FailbackSkipped: the drill was told not to wait for failback.
	FailbackSkipped = "skipped"
	// FailbackManual: some affected function has failback: manual, so
	// nothing returns until an operator runs `meshfed failback`.
	FailbackManual = "manual"
)

// Drill modes: how a drill takes its cluster out.
const (
	// DrillModeCordon sets the cluster's spec.cordoned: its agents stop
	// their instances and the scheduler treats it as down. Safe in live
	// environments; the cluster's broker keeps serving (and replicating).
	DrillModeCordon = "cordon"
	// DrillModeCrash kills the cluster's broker and agent with SIGKILL (in
	// meshfed dev) and starts them again afterwards: the failure is
	// detected by missed heartbeats and whatever the broker had not
	// replicated is stranded until it returns.
	DrillModeCrash = "crash"
)

// Replication of a drill's input stream.
const (
	// ReplicationGeo: the input namespace is geo-replicated from the home
	// cluster to the fallback copies; the drill writes to the home only.
	ReplicationGeo = "geo-replicated"
	// ReplicationSimulated: it is not; the drill writes the identical
	// stream to every copy itself, as replication would deliver it.
	ReplicationSimulated = "simulated"
)

// DrillTimeline holds the moments of a drill as the drill runner observed
// them. A zero time means the moment was not reached.
type DrillTimeline struct {
	// Started: the drill began producing its input stream.
	Started time.Time `json:"started"`
	// Failed: the cordon request was sent, or the kill of the cluster's
	// broker and agent began. Detection, recovery and the first output
	// from the fallback are measured from here.
	Failed time.Time `json:"failed,omitzero"`
	// Detected: the cluster's health was first seen Cordoned or Down.
	Detected time.Time `json:"detected,omitzero"`
	// Recovered: every affected instance was first seen Running in
	// another cluster.
	Recovered time.Time `json:"recovered,omitzero"`
	// FallbackOutput: the first output read (after Failed) that an
	// instance produced in another cluster, by its meshfed-cluster
	// property.
	FallbackOutput time.Time `json:"fallbackOutput,omitzero"`
	// Restored: the uncordon request was sent, or the restart of the
	// cluster's broker and agent began. Failback is measured from here.
	Restored time.Time `json:"restored,omitzero"`
	// Healthy: the cluster's health was first seen Healthy again.
	Healthy time.Time `json:"healthy,omitzero"`
	// FailedBack: every affected instance was first seen Running in its
	// home cluster again.
	FailedBack time.Time `json:"failedBack,omitzero"`
	// Finished: the drill stopped producing and finished reading.
	Finished time.Time `json:"finished,omitzero"`
}

// UnmarshalJSON reads timelines of reports written before crash drills
// existed, whose failure and restore moments were "cordoned" and
// "uncordoned".
func (tl *DrillTimeline) UnmarshalJSON(data []byte) error {
	type plain DrillTimeline
	var v struct {
		plain
		Cordoned   time.Time `json:"cordoned"`
		Uncordoned time.Time `json:"uncordoned"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*tl = DrillTimeline(v.plain)
	if tl.Failed.IsZero() {
		tl.Failed = v.Cordoned
	}
	if tl.Restored.IsZero() {
		tl.Restored = v.Uncordoned
	}
	return nil
}

// DrillTimes are the figures derived from a timeline. A nil field means
// the end moment (or its start) was not reached.
type DrillTimes struct {
	// Detection: from the failure to the cluster seen Cordoned or Down.
	Detection *time.Duration
	// Recovery: from the failure to every affected instance Running
	// elsewhere (the failover time).
	Recovery *time.Duration
	// FirstOutput: from the failure to the first output read that came
	// from a fallback cluster: the data path working again.
	FirstOutput *time.Duration
	// Outage: how long the cluster was out, failure to restore.
	Outage *time.Duration
	// Failback: from the restore to every affected instance Running at
	// home again (includes the server's failback hold-down).
	Failback *time.Duration
}

// Times derives the drill's figures from its timeline.
func (tl DrillTimeline) Times() DrillTimes {
	span := func(from, to time.Time) *time.Duration {
		if from.IsZero() || to.IsZero() {
			return nil
		}
		d := to.Sub(from)
		if d < 0 {
			d = 0
		}
		return &d
	}
	return DrillTimes{
		Detection:   span(tl.Failed, tl.Detected),
		Recovery:    span(tl.Failed, tl.Recovered),
		FirstOutput: span(tl.Failed, tl.FallbackOutput),
		Outage:      span(tl.Failed, tl.Restored),
		Failback:    span(tl.Restored, tl.FailedBack),
	}
}

// DrillInstance is one instance the drill's cluster ran when it was taken out.
type DrillInstance struct {
	// Assignment is the assignment's name (mesh.function.index).
	Assignment string `json:"assignment"`
	Tenant     string `json:"tenant"`
	Namespace  string `json:"namespace"`
	Mesh       string `json:"mesh"`
	Function   string `json:"function"`
	Index      int    `json:"index"`
	// Guarantee is the function's processing guarantee ("" is atleast_once).
	Guarantee string `json:"guarantee,omitempty"`
	// Failback is the function's failback policy ("" is auto).
	Failback string `json:"failback,omitempty"`
	// MovedTo is the cluster it ran in during the outage ("" if it did not
	// run anywhere), and MovedAt when it was first seen Running there.
	MovedTo string    `json:"movedTo,omitempty"`
	MovedAt time.Time `json:"movedAt,omitzero"`
	// BackAt is when it was first seen Running at home again.
	BackAt time.Time `json:"backAt,omitzero"`
}

// AssignmentRef is the reference of the instance's assignment.
func (i DrillInstance) AssignmentRef() objects.Ref {
	return objects.Ref{Kind: objects.KindAssignment, Tenant: i.Tenant, Namespace: i.Namespace, Name: i.Assignment}
}

// MeshRef is the reference of the instance's FunctionMesh.
func (i DrillInstance) MeshRef() objects.Ref { return objects.MeshRef(i.Tenant, i.Namespace, i.Mesh) }

// DrillStream describes one topic of a drill: an input topic the drill
// produced to (on each of Clusters, identical streams) or a watched output
// topic (one cluster).
type DrillStream struct {
	Clusters []string `json:"clusters"`
	Topic    string   `json:"topic"`
}

func (s DrillStream) String() string {
	out := ""
	for i, c := range s.Clusters {
		if i > 0 {
			out += ","
		}
		out += c
	}
	return out + ":" + s.Topic
}

// DrillReport is the record of one drill.
type DrillReport struct {
	// ID names the drill; its lower-cased letters and digits also mark the
	// drill's input tokens.
	ID string `json:"id"`
	// Cluster is the cluster taken out.
	Cluster string `json:"cluster"`
	// Mode is how: DrillModeCordon or DrillModeCrash ("" in reports
	// written before crash drills: cordon).
	Mode string `json:"mode,omitempty"`
	// Duration is how long the cluster was to stay out, from the failure.
	Duration time.Duration `json:"durationNs"`
	// Rate is the input rate in messages per second (0: no stream).
	Rate     float64         `json:"rate"`
	Affected []DrillInstance `json:"affected"`
	// Inputs the drill produced to and Watched topics it read.
	Inputs  []DrillStream `json:"inputs,omitempty"`
	Watched []DrillStream `json:"watched,omitempty"`
	// Replication is how the input reached its fallback copies:
	// ReplicationGeo or ReplicationSimulated ("" without a stream or when
	// the input has no fallback copy).
	Replication string `json:"replication,omitempty"`
	// StreamFallback is the cluster the stream was written to while the
	// home cluster was down in a crash drill ("" when it was not).
	StreamFallback string `json:"streamFallback,omitempty"`
	// FallbackBacklog is how many inputs of the burst the drill sent before
	// the failure (acknowledged by the home, replicated to the fallback,
	// and begun by the home) the home did not write an output of: the
	// fallback's work (0: no burst, or the home finished it before it
	// failed).
	FallbackBacklog int `json:"fallbackBacklog,omitempty"`
	// ProduceFailures counts input messages not acknowledged (by every
	// copy, when the drill writes them all).
	ProduceFailures int           `json:"produceFailures"`
	Timeline        DrillTimeline `json:"timeline"`
	// Figures are derived from Timeline by Finalize, for machines.
	Figures DrillFigures `json:"figures"`
	// FailbackStatus is one of the Failback* constants.
	FailbackStatus string `json:"failbackStatus"`
	// Messages accounts the inputs that reached the fallback (every input
	// when replication was simulated); nil when the drill produced no
	// stream.
	Messages *MessageAccount `json:"messages,omitempty"`
	// Unreplicated is the number of inputs the home cluster acknowledged
	// before the failure (before its broker died, for a crash) that its
	// fallback's copy of the input topic did not hold when the home
	// returned (Pulsar's recovery point for asynchronous geo-replication);
	// nil when not measured (no stream, or replication simulated).
	Unreplicated *int `json:"unreplicated"`
	// Stranded accounts those unreplicated inputs (the stranded tail):
	// what happened to them once the home returned and failed back.
	Stranded *MessageAccount `json:"stranded,omitempty"`
	// OutputsCarryCluster is true when the watched outputs carried the
	// meshfed-cluster property, without which the first output from the
	// fallback cannot be timed.
	OutputsCarryCluster bool `json:"outputsCarryCluster"`
	// FallbackOutputCluster is the cluster of the first output read from
	// a fallback (Timeline.FallbackOutput).
	FallbackOutputCluster string `json:"fallbackOutputCluster,omitempty"`
	// Notes are observations that do not fail the drill (unaligned input
	// copies, a Degraded reason).
	Notes []string `json:"notes,omitempty"`
	// Problems are the reasons the drill failed; empty when it passed.
	Problems []string `json:"problems,omitempty"`
}

// DrillFigures are a drill's times in seconds; null when not reached.
type DrillFigures struct {
	DetectionSeconds   *float64 `json:"detectionSeconds"`
	RecoverySeconds    *float64 `json:"recoverySeconds"`
	FirstOutputSeconds *float64 `json:"firstOutputSeconds"`
	OutageSeconds      *float64 `json:"outageSeconds"`
	FailbackSeconds    *float64 `json:"failbackSeconds"`
}

// Figures converts the times to seconds.
func (t DrillTimes) Figures() DrillFigures {
	sec := func(d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		v := d.Seconds()
		return &v
	}
	return DrillFigures{sec(t.Detection), sec(t.Recovery), sec(t.FirstOutput), sec(t.Outage), sec(t.Failback)}
}

// Finalize fills the derived fields: Figures and Problems.
func (r *DrillReport) Finalize() {
	r.Figures = r.Timeline.Times().Figures()
	r.Problems = DrillProblems(r)
}

// Passed reports whether the drill met every expectation.
func (r *DrillReport) Passed() bool { return len(r.Problems) == 0 }

// ModeOrDefault is the report's mode, cordon for reports without one.
func (r *DrillReport) ModeOrDefault() string {
	if r.Mode == "" {
		return DrillModeCordon
	}
	return r.Mode
}

// effectivelyOnce reports whether every affected function is
// effectively_once (so that any duplicate is a failure).
func (r *DrillReport) effectivelyOnce() bool {
	for _, a := range r.Affected {
		if a.Guarantee != "effectively_once" {
			return false
		}
	}
	return len(r.Affected) > 0
}

// fallbackHadWork reports whether the fallback must have produced output:
// a cordoned home keeps replicating the stream to it, and a crash drill
// either wrote the stream to it or left it a replicated backlog. A crashed
// home without either may leave it nothing new to do until it returns.
func (r *DrillReport) fallbackHadWork() bool {
	return r.Mode != DrillModeCrash || r.StreamFallback != "" || r.FallbackBacklog > 0
}

// DrillProblems lists what a drill's report falls short of: the cluster
// not seen out, an affected instance that did not run elsewhere, no output
// from the fallback although outputs name their cluster and it had work, a failback that
// did not complete in time, lost messages, and duplicates when every
// affected function is effectively_once; for the stranded tail, inputs
// lost once failback is done, and duplicates.
func DrillProblems(r *DrillReport) []string {
	var out []string
	tl := r.Timeline
	if !tl.Failed.IsZero() && tl.Detected.IsZero() {
		out = append(out, fmt.Sprintf("cluster %s was never seen Cordoned or Down", r.Cluster))
	}
	if len(r.Affected) == 0 {
		out = append(out, fmt.Sprintf("cluster %s ran no instance: nothing failed over", r.Cluster))
	}
	if !tl.Failed.IsZero() && tl.Recovered.IsZero() {
		var missing []string
		for _, a := range r.Affected {
			if a.MovedAt.IsZero() {
				missing = append(missing, a.Assignment)
			}
		}
		out = append(out, fmt.Sprintf("not every affected instance ran elsewhere: %v", missing))
	}
	if r.FailbackStatus == FailbackPending {
		out = append(out, "failback did not complete before the failback timeout")
	}
	if m := r.Messages; m != nil {
		if m.Produced == 0 {
			out = append(out, "no input message was acknowledged")
		}
		if m.Lost > 0 {
			out = append(out, fmt.Sprintf("lost %d output items of %d input messages (first: %v)", m.Lost, m.LostMessages, m.FirstLost))
		}
		if r.effectivelyOnce() && m.Duplicated > 0 {
			out = append(out, fmt.Sprintf("%d duplicated output items under effectively_once (first inputs: %v)", m.Duplicated, m.FirstDuplicated))
		}
		if !tl.Recovered.IsZero() && tl.FallbackOutput.IsZero() && r.OutputsCarryCluster && r.fallbackHadWork() {
			out = append(out, fmt.Sprintf("no output produced in a fallback cluster was read (none carried meshfed-cluster other than %s)", r.Cluster))
		}
	}
	if st := r.Stranded; st != nil {
		if st.LostMessages > 0 && r.FailbackStatus == FailbackDone {
			out = append(out, fmt.Sprintf("stranded tail: %d of %d unreplicated inputs lost after failback (first: %v)", st.LostMessages, st.Produced, st.FirstLost))
		}
		if r.effectivelyOnce() && st.Duplicated > 0 {
			out = append(out, fmt.Sprintf("stranded tail: %d duplicated output items under effectively_once (first inputs: %v)", st.Duplicated, st.FirstDuplicated))
		}
	}
	return out
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of values by the
// nearest-rank method, or 0 for no values.
func Percentile(values []time.Duration, p float64) time.Duration {
	if len(values) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), values...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// DurationStats summarises one figure over several drills.
type DurationStats struct {
	// N is the number of drills that reached the figure.
	N   int           `json:"n"`
	P50 time.Duration `json:"p50Ns"`
	P99 time.Duration `json:"p99Ns"`
	Max time.Duration `json:"maxNs"`
}

func durationStats(ds []time.Duration) DurationStats {
	st := DurationStats{N: len(ds), P50: Percentile(ds, 50), P99: Percentile(ds, 99)}
	for _, d := range ds {
		st.Max = max(st.Max, d)
	}
	return st
}

// DrillSummary aggregates drills.
type DrillSummary struct {
	Runs   int `json:"runs"`
	Passed int `json:"passed"`
	// NotRecovered counts drills in which some affected instance never ran
	// elsewhere (they are left out of Recovery).
	NotRecovered int           `json:"notRecovered"`
	Detection    DurationStats `json:"detection"`
	Recovery     DurationStats `json:"recovery"`
	// FirstOutput summarises the time to the first output from a
	// fallback, over the drills that read one.
	FirstOutput DurationStats `json:"firstOutput"`
	Failback    DurationStats `json:"failback"`
	// Message totals over every drill with a stream (output items, for
	// the inputs that reached the fallback; see MessageAccount).
	Produced   int `json:"produced"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Unexpected int `json:"unexpected"`
	// UnreplicatedDrills counts the drills that measured Unreplicated, and
	// Unreplicated totals it (input messages).
	UnreplicatedDrills int `json:"unreplicatedDrills"`
	Unreplicated       int `json:"unreplicated"`
	// The stranded tails' input messages processed exactly once, with an
	// output item lost, and with one duplicated (see DrillReport.Stranded).
	StrandedOnce       int `json:"strandedOnce"`
	StrandedLost       int `json:"strandedLost"`
	StrandedDuplicated int `json:"strandedDuplicated"`
	// PeakLag is the largest peak lag of any drill, in input messages.
	PeakLag int `json:"peakLag"`
	// SlowestMessage summarises each drill's MaxDelay: the data path's
	// worst disruption, as opposed to the control plane's view (Recovery).
	SlowestMessage DurationStats `json:"slowestMessage"`
}

// SummarizeDrills computes the summary of reports.
func SummarizeDrills(reports []*DrillReport) DrillSummary {
	var s DrillSummary
	var det, rec, first, fb, slow []time.Duration
	for _, r := range reports {
		s.Runs++
		if r.Passed() {
			s.Passed++
		}
		t := r.Timeline.Times()
		if t.Detection != nil {
			det = append(det, *t.Detection)
		}
		if t.Recovery != nil {
			rec = append(rec, *t.Recovery)
		} else {
			s.NotRecovered++
		}
		if t.FirstOutput != nil {
			first = append(first, *t.FirstOutput)
		}
		if t.Failback != nil {
			fb = append(fb, *t.Failback)
		}
		if r.Unreplicated != nil {
			s.UnreplicatedDrills++
			s.Unreplicated += *r.Unreplicated
		}
		if st := r.Stranded; st != nil {
			s.StrandedOnce += st.ExactlyOnce
			s.StrandedLost += st.LostMessages
			s.StrandedDuplicated += st.DuplicatedMessages
		}
		if m := r.Messages; m != nil {
			s.Produced += m.Produced
			s.Lost += m.Lost
			s.Duplicated += m.Duplicated
			s.Unexpected += m.Unexpected
			s.PeakLag = max(s.PeakLag, m.PeakLag)
			slow = append(slow, m.MaxDelay)
		}
	}
	s.Detection, s.Recovery, s.Failback = durationStats(det), durationStats(rec), durationStats(fb)
	s.FirstOutput = durationStats(first)
	s.SlowestMessage = durationStats(slow)
	return s
}
