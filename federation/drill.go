package federation

import (
	"fmt"
	"math"
	"sort"
	"time"
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

// DrillTimeline holds the moments of a drill as the drill runner observed
// them. A zero time means the moment was not reached.
type DrillTimeline struct {
	// Started: the drill began producing its input stream.
	Started time.Time `json:"started"`
	// Cordoned: the request that takes the cluster out was sent. Detection
	// and recovery are measured from here.
	Cordoned time.Time `json:"cordoned,omitzero"`
	// Detected: the cluster's health was first seen Cordoned or Down.
	Detected time.Time `json:"detected,omitzero"`
	// Recovered: every affected instance was first seen Running in
	// another cluster.
	Recovered time.Time `json:"recovered,omitzero"`
	// Uncordoned: the request that brings the cluster back was sent.
	// Failback is measured from here.
	Uncordoned time.Time `json:"uncordoned,omitzero"`
	// Healthy: the cluster's health was first seen Healthy again.
	Healthy time.Time `json:"healthy,omitzero"`
	// FailedBack: every affected instance was first seen Running in its
	// home cluster again.
	FailedBack time.Time `json:"failedBack,omitzero"`
	// Finished: the drill stopped producing and finished reading.
	Finished time.Time `json:"finished,omitzero"`
}

// DrillTimes are the figures derived from a timeline. A nil field means
// the end moment (or its start) was not reached.
type DrillTimes struct {
	// Detection: from the cordon to the cluster seen Cordoned or Down.
	Detection *time.Duration
	// Recovery: from the cordon to every affected instance Running
	// elsewhere (the failover time).
	Recovery *time.Duration
	// Outage: how long the cluster was out, cordon to uncordon.
	Outage *time.Duration
	// Failback: from the uncordon to every affected instance Running at
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
		Detection: span(tl.Cordoned, tl.Detected),
		Recovery:  span(tl.Cordoned, tl.Recovered),
		Outage:    span(tl.Cordoned, tl.Uncordoned),
		Failback:  span(tl.Uncordoned, tl.FailedBack),
	}
}

// ProducedMessage is one input message of a drill's numbered stream that
// every copy of the input topic acknowledged.
type ProducedMessage struct {
	// Seq numbers the message in the drill's stream.
	Seq int64
	// Outputs is how many output items the message must yield (the unique
	// tokens its payload carries).
	Outputs int
	// Acked is when the home input cluster acknowledged it.
	Acked time.Time
}

// Observation is one output item read from a watched topic: output Output
// of input message Seq, read at At.
type Observation struct {
	Seq    int64
	Output int
	At     time.Time
}

// MessageAccount is the outcome of matching a drill's input stream with
// what its watched topics delivered. Output items are counted one by one;
// an input message counts as lost when any of its items is missing.
type MessageAccount struct {
	// Produced input messages (acknowledged by every copy).
	Produced int `json:"produced"`
	// ExpectedOutputs is the number of output items those must yield.
	ExpectedOutputs int `json:"expectedOutputs"`
	// Consumed output items read, duplicates included.
	Consumed int `json:"consumed"`
	// Delivered distinct expected output items read.
	Delivered int `json:"delivered"`
	// Lost expected output items never read.
	Lost int `json:"lost"`
	// LostMessages is the number of input messages with an item missing.
	LostMessages int `json:"lostMessages"`
	// FirstLost lists the first (lowest) lost input sequence numbers, at
	// most MaxListed.
	FirstLost []int64 `json:"firstLost,omitempty"`
	// Duplicated output items: reads beyond the first of an item.
	Duplicated int `json:"duplicated"`
	// FirstDuplicated lists the first input sequence numbers with a
	// duplicated item, at most MaxListed.
	FirstDuplicated []int64 `json:"firstDuplicated,omitempty"`
	// Unexpected items carry the drill's mark but belong to no produced
	// message (one whose send was not acknowledged by every copy, or an
	// output index out of range). They count neither as lost nor as
	// duplicated.
	Unexpected int `json:"unexpected"`
	// PeakLag is the largest number of produced input messages not yet
	// fully delivered at any moment, and PeakLagAt when it was first reached.
	PeakLag   int       `json:"peakLag"`
	PeakLagAt time.Time `json:"peakLagAt,omitzero"`
	// MaxDelay is the longest time from a message's acknowledgement to
	// its last item's first read, over fully delivered messages.
	MaxDelay time.Duration `json:"maxDelayNs"`
}

// MaxListed bounds the sequence numbers a MessageAccount lists.
const MaxListed = 10

// AccountMessages matches the produced stream with the observations.
func AccountMessages(produced []ProducedMessage, seen []Observation) MessageAccount {
	var acc MessageAccount
	type item struct {
		seq int64
		out int
	}
	bySeq := make(map[int64]ProducedMessage, len(produced))
	for _, p := range produced {
		if _, dup := bySeq[p.Seq]; dup {
			continue
		}
		bySeq[p.Seq] = p
		acc.Produced++
		acc.ExpectedOutputs += p.Outputs
	}
	first := map[item]time.Time{}
	reads := map[item]int{}
	for _, o := range seen {
		p, ok := bySeq[o.Seq]
		if !ok || o.Output < 0 || o.Output >= p.Outputs {
			acc.Unexpected++
			continue
		}
		acc.Consumed++
		k := item{o.Seq, o.Output}
		reads[k]++
		if t, ok := first[k]; !ok || o.At.Before(t) {
			first[k] = o.At
		}
	}
	acc.Delivered = len(first)
	acc.Lost = acc.ExpectedOutputs - acc.Delivered
	acc.Duplicated = acc.Consumed - acc.Delivered

	seqs := make([]int64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	type change struct {
		at    time.Time
		delta int
	}
	changes := make([]change, 0, 2*len(seqs))
	for _, s := range seqs {
		p := bySeq[s]
		changes = append(changes, change{p.Acked, +1})
		complete, dupl := true, false
		var done time.Time
		for o := 0; o < p.Outputs; o++ {
			t, ok := first[item{s, o}]
			if !ok {
				complete = false
				continue
			}
			if t.After(done) {
				done = t
			}
			if reads[item{s, o}] > 1 {
				dupl = true
			}
		}
		if dupl && len(acc.FirstDuplicated) < MaxListed {
			acc.FirstDuplicated = append(acc.FirstDuplicated, s)
		}
		if !complete {
			acc.LostMessages++
			if len(acc.FirstLost) < MaxListed {
				acc.FirstLost = append(acc.FirstLost, s)
			}
			continue
		}
		// The ack callback can run after the output was already read.
		if done.Before(p.Acked) {
			done = p.Acked
		}
		if d := done.Sub(p.Acked); d > acc.MaxDelay {
			acc.MaxDelay = d
		}
		changes = append(changes, change{done, -1})
	}
	// At equal times, deliveries go first: a message acknowledged and
	// delivered in the same instant was never behind.
	sort.SliceStable(changes, func(i, j int) bool {
		if !changes[i].at.Equal(changes[j].at) {
			return changes[i].at.Before(changes[j].at)
		}
		return changes[i].delta < changes[j].delta
	})
	lag := 0
	for _, c := range changes {
		lag += c.delta
		if lag > acc.PeakLag {
			acc.PeakLag, acc.PeakLagAt = lag, c.at
		}
	}
	return acc
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
	// Duration is how long the cluster was to stay out, from the cordon.
	Duration time.Duration `json:"durationNs"`
	// Rate is the input rate in messages per second (0: no stream).
	Rate     float64         `json:"rate"`
	Affected []DrillInstance `json:"affected"`
	// Inputs the drill produced to and Watched topics it read.
	Inputs  []DrillStream `json:"inputs,omitempty"`
	Watched []DrillStream `json:"watched,omitempty"`
	// ProduceFailures counts input messages some copy did not acknowledge.
	ProduceFailures int           `json:"produceFailures"`
	Timeline        DrillTimeline `json:"timeline"`
	// Figures are derived from Timeline by Finalize, for machines.
	Figures DrillFigures `json:"figures"`
	// FailbackStatus is one of the Failback* constants.
	FailbackStatus string `json:"failbackStatus"`
	// Messages is nil when the drill produced no stream.
	Messages *MessageAccount `json:"messages,omitempty"`
	// Notes are observations that do not fail the drill (unaligned input
	// copies, a Degraded reason).
	Notes []string `json:"notes,omitempty"`
	// Problems are the reasons the drill failed; empty when it passed.
	Problems []string `json:"problems,omitempty"`
}

// DrillFigures are a drill's times in seconds; null when not reached.
type DrillFigures struct {
	DetectionSeconds *float64 `json:"detectionSeconds"`
	RecoverySeconds  *float64 `json:"recoverySeconds"`
	OutageSeconds    *float64 `json:"outageSeconds"`
	FailbackSeconds  *float64 `json:"failbackSeconds"`
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
	return DrillFigures{sec(t.Detection), sec(t.Recovery), sec(t.Outage), sec(t.Failback)}
}

// Finalize fills the derived fields: Figures and Problems.
func (r *DrillReport) Finalize() {
	r.Figures = r.Timeline.Times().Figures()
	r.Problems = DrillProblems(r)
}

// Passed reports whether the drill met every expectation.
func (r *DrillReport) Passed() bool { return len(r.Problems) == 0 }

// DrillProblems lists what a drill's report falls short of: the cluster
// not seen out, an affected instance that did not run elsewhere, a
// failback that did not complete in time, lost messages, and duplicates
// when every affected function is effectively_once.
func DrillProblems(r *DrillReport) []string {
	var out []string
	tl := r.Timeline
	if !tl.Cordoned.IsZero() && tl.Detected.IsZero() {
		out = append(out, fmt.Sprintf("cluster %s was never seen Cordoned or Down", r.Cluster))
	}
	if len(r.Affected) == 0 {
		out = append(out, fmt.Sprintf("cluster %s ran no instance: nothing failed over", r.Cluster))
	}
	if !tl.Cordoned.IsZero() && tl.Recovered.IsZero() {
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
		eo := len(r.Affected) > 0
		for _, a := range r.Affected {
			if a.Guarantee != "effectively_once" {
				eo = false
			}
		}
		if eo && m.Duplicated > 0 {
			out = append(out, fmt.Sprintf("%d duplicated output items under effectively_once (first inputs: %v)", m.Duplicated, m.FirstDuplicated))
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
	Failback     DurationStats `json:"failback"`
	// Message totals over every drill with a stream.
	Produced   int `json:"produced"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Unexpected int `json:"unexpected"`
	// PeakLag is the largest peak lag of any drill, in input messages.
	PeakLag int `json:"peakLag"`
	// SlowestMessage summarises each drill's MaxDelay: the data path's
	// worst disruption, as opposed to the control plane's view (Recovery).
	SlowestMessage DurationStats `json:"slowestMessage"`
}

// SummarizeDrills computes the summary of reports.
func SummarizeDrills(reports []*DrillReport) DrillSummary {
	var s DrillSummary
	var det, rec, fb, slow []time.Duration
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
		if t.Failback != nil {
			fb = append(fb, *t.Failback)
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
	s.SlowestMessage = durationStats(slow)
	return s
}
