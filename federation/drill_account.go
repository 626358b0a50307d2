package federation

import (
	"sort"
	"time"
)

// ProducedMessage is one input message of a drill's numbered stream that
// was acknowledged: by every copy of the input topic when the drill writes
// the copies itself, else by the one cluster it was written to.
type ProducedMessage struct {
	// Seq numbers the message in the drill's stream.
	Seq int64
	// Outputs is how many output items the message must yield (the unique
	// tokens its payload carries).
	Outputs int
	// Acked is when the cluster it was written to (the home copy, when
	// the drill writes every copy) acknowledged it.
	Acked time.Time
	// Cluster is the cluster it was written to: the home cluster, or the
	// fallback while the home was down in a crash drill ("" is the home).
	Cluster string
}

// Observation is one output item read from a watched topic: output Output
// of input message Seq, read at At.
type Observation struct {
	Seq    int64
	Output int
	At     time.Time
	// Cluster is the output message's meshfed-cluster property: the
	// cluster its function instance ran in ("" when it has none).
	Cluster string
}

// MessageAccount is the outcome of matching a drill's input stream with
// what its watched topics delivered. Output items are counted one by one;
// an input message counts as lost when any of its items is missing.
type MessageAccount struct {
	// Produced input messages (acknowledged; see ProducedMessage).
	Produced int `json:"produced"`
	// ExpectedOutputs is the number of output items those must yield.
	ExpectedOutputs int `json:"expectedOutputs"`
	// Consumed output items read, duplicates included.
	Consumed int `json:"consumed"`
	// Delivered distinct expected output items read.
	Delivered int `json:"delivered"`
	// ExactlyOnce is the number of input messages each of whose items was
	// read exactly once.
	ExactlyOnce int `json:"exactlyOnce"`
	// Lost expected output items never read.
	Lost int `json:"lost"`
	// LostMessages is the number of input messages with an item missing.
	LostMessages int `json:"lostMessages"`
	// FirstLost lists the first (lowest) lost input sequence numbers, at
	// most MaxListed.
	FirstLost []int64 `json:"firstLost,omitempty"`
	// Duplicated output items: reads beyond the first of an item.
	Duplicated int `json:"duplicated"`
	// DuplicatedMessages is the number of input messages with an item
	// read more than once.
	DuplicatedMessages int `json:"duplicatedMessages"`
	// FirstDuplicated lists the first input sequence numbers with a
	// duplicated item, at most MaxListed.
	FirstDuplicated []int64 `json:"firstDuplicated,omitempty"`
	// Unexpected items carry the drill's mark but belong to no produced
	// message (one whose send was not acknowledged, or an output index out
	// of range). They count neither as lost nor as duplicated.
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
		if dupl {
			acc.DuplicatedMessages++
			if len(acc.FirstDuplicated) < MaxListed {
				acc.FirstDuplicated = append(acc.FirstDuplicated, s)
			}
		}
		if complete && !dupl {
			acc.ExactlyOnce++
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

// Unreplicated returns, in order, the sequence numbers of the inputs that
// the home cluster acknowledged before cutoff and that the fallback's copy
// of the input topic did not hold when the home returned (inFallback: the
// sequence numbers read from that copy until then). With asynchronous
// geo-replication these are the inputs a failure strands in the home
// cluster: Pulsar's recovery point. Inputs written to another cluster are
// never unreplicated. The cutoff is the restart for a crash (the dead
// broker acknowledges nothing in between, so this catches acknowledgements
// that raced the kill) and the cordon for a cordon (the broker keeps
// replicating what it acknowledges after it).
func Unreplicated(produced []ProducedMessage, home string, cutoff time.Time, inFallback map[int64]bool) []int64 {
	var out []int64
	seen := map[int64]bool{}
	for _, p := range produced {
		if seen[p.Seq] || (p.Cluster != "" && p.Cluster != home) || !p.Acked.Before(cutoff) || inFallback[p.Seq] {
			continue
		}
		seen[p.Seq] = true
		out = append(out, p.Seq)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// AccountDrill splits the accounting of a drill's stream in two: the
// inputs that reached the fallback (main) and the stranded tail, the
// unreplicated inputs (tail, nil when stranded is nil: not measured). The
// observations of each input count in the part it belongs to.
func AccountDrill(produced []ProducedMessage, seen []Observation, stranded []int64) (main MessageAccount, tail *MessageAccount) {
	if stranded == nil {
		return AccountMessages(produced, seen), nil
	}
	in := make(map[int64]bool, len(stranded))
	for _, s := range stranded {
		in[s] = true
	}
	var mp, tp []ProducedMessage
	for _, p := range produced {
		if in[p.Seq] {
			tp = append(tp, p)
		} else {
			mp = append(mp, p)
		}
	}
	var ms, ts []Observation
	for _, o := range seen {
		if in[o.Seq] {
			ts = append(ts, o)
		} else {
			ms = append(ms, o)
		}
	}
	t := AccountMessages(tp, ts)
	return AccountMessages(mp, ms), &t
}

// FirstOutputFrom returns the earliest read, at or after failed, of an
// output that ran in another cluster than failed (its meshfed-cluster
// property set and different), and that cluster; zero if there is none.
func FirstOutputFrom(seen []Observation, failed time.Time, failedCluster string) (time.Time, string) {
	var at time.Time
	cluster := ""
	for _, o := range seen {
		if o.Cluster == "" || o.Cluster == failedCluster || o.At.Before(failed) {
			continue
		}
		if at.IsZero() || o.At.Before(at) {
			at, cluster = o.At, o.Cluster
		}
	}
	return at, cluster
}

// NotWrittenBy counts the inputs numbered [from, from+n) of which no output
// was read that ran in cluster: what was left for others to process. An
// effectively-once fallback that re-processes an input the home had
// already written adds nothing (the broker drops the copy), so such an
// input is not counted.
func NotWrittenBy(seen []Observation, from int64, n int, cluster string) int {
	done := make(map[int64]bool, n)
	for _, o := range seen {
		if o.Cluster == cluster && o.Seq >= from && o.Seq < from+int64(n) {
			done[o.Seq] = true
		}
	}
	return n - len(done)
}

// OutputsCarryCluster reports whether any observation has a
// meshfed-cluster property: without it the first output from a fallback
// cannot be timed.
func OutputsCarryCluster(seen []Observation) bool {
	for _, o := range seen {
		if o.Cluster != "" {
			return true
		}
	}
	return false
}
