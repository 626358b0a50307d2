//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
)

// Issue 10's acceptance run: three servers, clusters a, b and c (a broker
// and an agent each) whose brokers geo-replicate namespace public/default
// to one another, configured through Pulsar's admin API. Producers write to
// a only; c receives the inputs through replication, with message ids of
// its own. Region a dies (broker and agent SIGKILLed mid-stream): split
// runs in c from where it stopped in a, and every replicated input's words
// reach b exactly once; what a had acknowledged but not replicated yet (the
// stranded tail) is processed exactly once after a returns. Beside it: the
// same split at least once (nothing lost, duplicates counted) and a split
// whose output cluster is a, so its output fails over to c too.

// failoverGoal is the time from a cluster's death to the first output from
// its fallback: MESHFED_E2E_FAILOVER_GOAL, else 5s.
func failoverGoal(t *testing.T) time.Duration {
	t.Helper()
	if s := os.Getenv("MESHFED_E2E_FAILOVER_GOAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MESHFED_E2E_FAILOVER_GOAL=%q: %v", s, err)
		}
		return d
	}
	return 5 * time.Second
}

func epochs(as map[string]*meshfedv1.Assignment) map[string]uint64 {
	out := map[string]uint64{}
	for k, a := range as {
		out[k] = a.GetSpec().GetEpoch()
	}
	return out
}

// timeUntilIn polls the mesh's assignments from since and returns when
// split#0 was first assigned to an agent of cluster and when that agent
// first reported it Running. want names the other functions' clusters.
func (f *fed) timeUntilIn(mesh, cluster string, since time.Time, timeout time.Duration, others map[string]string) (assigned, running time.Duration) {
	f.t.Helper()
	want := map[string]int{"split": 1}
	where := map[string]string{"split": cluster}
	for fn, c := range others {
		want[fn], where[fn] = 1, c
	}
	testkit.Eventually(f.t, timeout, "split of "+mesh+" running in "+cluster, func() (bool, string) {
		as, err := f.assignments(mesh)
		if err != nil {
			return false, err.Error()
		}
		a := as["split#0"]
		if a.GetSpec().GetCluster() == cluster && a.GetSpec().GetAgent() != "" && assigned == 0 {
			assigned = time.Since(since)
		}
		ok, why := runningIn(as, want, where)
		if ok {
			running = time.Since(since)
		}
		return ok, why
	})
	return assigned, running
}

// wordCheck compares the words a topic copy holds with the words of the
// given sentences: each must be there exactly once. Words of other
// sentences may be there at most once ("fox" is not checked).
func wordCheck(got map[string]int, must map[int]bool) (lost, dup int, examples string) {
	var ex []string
	for i := range must {
		w := fmt.Sprintf("m%d", i)
		if got[w] == 0 {
			lost++
			if len(ex) < 5 {
				ex = append(ex, w+" missing")
			}
		}
	}
	for w, n := range got {
		if w != "fox" && n > 1 {
			dup += n - 1
			if len(ex) < 10 {
				ex = append(ex, fmt.Sprintf("%s ×%d", w, n))
			}
		}
	}
	return lost, dup, strings.Join(ex, "; ")
}

func TestFailoverRegionAndBack(t *testing.T) {
	n := messageCount(t, defaultMessages)
	goal := failoverGoal(t)
	const holdDown = 5 * time.Second
	f := newFed(t, fedOptions{servers: 3, clusters: []string{"a", "b", "c"}, serverFlags: []string{"--failback-hold-down", holdDown.String()}})
	f.replicate()
	const mesh = "region"
	y, split, count := splitCount(mesh, "{builtin: word-split}", "effectively_once", 1, "c")
	f.apply(y)
	both := map[string]int{"split": 1, "count": 1}
	f.waitRunning(mesh, convergeTimeout, both, map[string]string{"split": "a", "count": "b"})
	// The same split at least once, beside it: nothing lost, duplicates counted.
	const aloMesh = "regionalo"
	alo := meshFn{name: "split", runtime: "{builtin: word-split}", guarantee: "atleast_once", inCluster: "a", inTopic: topicURL(aloMesh + "-sentences"),
		outCluster: "b", outTopic: topicURL(aloMesh + "-words"), failover: []string{"c"}}
	f.apply(meshYAML(aloMesh, alo))
	// A split whose output is in a as well: when a dies its output fails
	// over to c with it.
	const localMesh = "regionlocal"
	local := meshFn{name: "split", runtime: "{builtin: word-split}", guarantee: "effectively_once", inCluster: "a", inTopic: topicURL(localMesh + "-sentences"),
		outCluster: "a", outTopic: topicURL(localMesh + "-words"), failover: []string{"c"}}
	f.apply(meshYAML(localMesh, local))
	for _, m := range []string{aloMesh, localMesh} {
		f.waitRunning(m, convergeTimeout, map[string]int{"split": 1}, map[string]string{"split": "a"})
	}
	inputs := []string{split.inTopic, alo.inTopic, local.inTopic}
	var total int // sentences [0, total) were produced to a

	// A first few messages, and an agent restart within its TTL: nothing moves.
	total = n / 10
	for _, tp := range inputs {
		f.produce(tp, 0, total, "a")
	}
	t.Run("agent_restart_within_ttl_moves_nothing", func(t *testing.T) {
		f := f.sub(t)
		before, err := f.assignments(mesh)
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		f.agents["agent-a"].kill9()
		f.agents["agent-a"].start()
		testkit.Eventually(t, convergeTimeout, "agent-a's split consumer back on a", func() (bool, string) {
			st, err := f.brokers["a"].stats(split.inTopic)
			if err != nil {
				return false, err.Error()
			}
			for _, c := range st.Subscriptions[subscription(mesh, "split")].Consumers {
				if c.ConsumerName == "agent-a-0" {
					return true, ""
				}
			}
			return false, fmt.Sprint(st.Subscriptions[subscription(mesh, "split")].Consumers)
		})
		t.Logf("agent-a back on its broker %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
		// Watch until well past the TTL (4s) and the scheduler's next passes.
		for time.Since(killed) < 4*time.Second+3*time.Second {
			as, err := f.assignments(mesh)
			if err != nil {
				time.Sleep(pollInterval)
				continue
			}
			if fmt.Sprint(epochs(as)) != fmt.Sprint(epochs(before)) {
				t.Fatalf("an assignment moved after an agent restart within its TTL: before %s; now %s", describeAssignments(before), describeAssignments(as))
			}
			time.Sleep(pollInterval)
		}
		objs, err := f.list(objects.KindCluster)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if c := o.GetCluster(); c.GetMetadata().GetName() == "a" && c.GetStatus().GetHealth() != "Healthy" {
				t.Errorf("cluster a is %s after an agent restart within its TTL", c.GetStatus().GetHealth())
			}
		}
	})

	// Region a dies mid-stream: its broker and agent are SIGKILLed while
	// producers write to a and split works through the stream.
	var (
		streams    []*aStream
		replicated map[int]bool // sentences of split's input that reached c before a returned
		localRepl  map[int]bool // the same for the local mesh's input
		stranded   int          // sentences a confirmed that c never got while a was down
	)
	t.Cleanup(func() {
		for _, s := range streams {
			s.close()
		}
	})
	t.Run("crash_a", func(t *testing.T) {
		f := f.sub(t)
		// A fast stream of n/2 sentences per input (batching on) lands in
		// a and replicates to c as it goes; a is killed as soon as split
		// writes the first word of it, so a dies with a backlog — which
		// replication has carried to c — and with sends in flight, some
		// of which it confirms but cannot replicate any more.
		burst := n / 2
		started := f.watchFirstWord("b", split.outTopic, total)
		fromC := f.watchFirstOutput("b", split.outTopic, "c")
		localFromC := f.watchFirstOutput("c", local.outTopic, "c")
		for _, tp := range inputs {
			streams = append(streams, f.streamTo("a", tp, total, max(burst/20, 1), total+burst))
		}
		started.wait(t, drainTimeout(n), "split to write the first word of the stream")
		var backlog, localBacklog int64
		if st, err := f.brokers["a"].stats(split.inTopic); err == nil {
			backlog = st.Subscriptions[subscription(mesh, "split")].MsgBacklog
		}
		if st, err := f.brokers["a"].stats(local.inTopic); err == nil {
			localBacklog = st.Subscriptions[subscription(localMesh, "split")].MsgBacklog
		}
		killed := time.Now()
		f.agents["agent-a"].kill9()
		f.brokers["a"].kill9()
		f.dropPulsar("a")
		ackedAtKill := make([]int, len(streams))
		for i, s := range streams {
			s.halt()
			_, ackedAtKill[i] = s.progress()
		}
		t.Logf("SIGKILL agent-a and broker-a with sentences [0, %d) of %s confirmed by a, %d of them not yet processed by split", ackedAtKill[0], split.inTopic, backlog)
		assigned, running := f.timeUntilIn(mesh, "c", killed, convergeTimeout, map[string]string{"count": "b"})
		first := fromC.wait(t, convergeTimeout, "the first word split wrote from c")
		// The local split writes in c only what it had not processed in
		// a: with no backlog at the kill (it kept up with the stream) c
		// has nothing new for it, which the exactly-once checks below
		// still cover.
		localFirst := "none (no backlog at the kill)"
		if localBacklog > 0 {
			localFirst = localFromC.wait(t, convergeTimeout, "the first word the local split wrote in c").Sub(killed).Round(time.Millisecond).String()
		}
		t.Logf("FAILOVER: split assigned in c %v, running %v, first output from c %v after the kill (goal %v); local split's first output in c %s",
			assigned.Round(time.Millisecond), running.Round(time.Millisecond), first.Sub(killed).Round(time.Millisecond), goal, localFirst)
		if d := first.Sub(killed); d > goal {
			t.Errorf("the first output from c came %v after cluster a died; the goal is %v", d.Round(time.Millisecond), goal)
		}
		d := mustCLI(t, f.srv(), "describe", "mesh", mesh)
		if !strings.Contains(d, "FailedOver=True") {
			t.Errorf("describe mesh %s does not show FailedOver=True:\n%s", mesh, d)
		}
		// What c holds of the input is what replication delivered before
		// the crash: a's RPO is what a confirmed beyond it.
		replicated = f.sentencesIn("c", split.inTopic)
		localRepl = f.sentencesIn("c", local.inTopic)
		for i := 0; i < ackedAtKill[0]; i++ {
			if !replicated[i] {
				stranded++
			}
		}
		t.Logf("unreplicated at the crash: %d of %d sentences confirmed by a were not in c (c holds %d)", stranded, ackedAtKill[0], len(replicated))
		for _, m := range []string{aloMesh, localMesh} {
			f.waitRunning(m, convergeTimeout, map[string]int{"split": 1}, map[string]string{"split": "c"})
		}
		f.waitDrained("c", split.inTopic, subscription(mesh, "split"), drainTimeout(n))
		f.waitDrained("c", alo.inTopic, subscription(aloMesh, "split"), drainTimeout(n))
		f.waitDrained("c", local.inTopic, subscription(localMesh, "split"), drainTimeout(n))
		// Among the replicated inputs nothing is lost and nothing doubled.
		lost, dup, ex := wordCheck(multiset(f.readAll("b", split.outTopic)), replicated)
		t.Logf("%s with a down: %d replicated sentences; words on b: lost %d, duplicated %d", mesh, len(replicated), lost, dup)
		if lost > 0 || dup > 0 {
			t.Errorf("%s with a down: lost %d, duplicated %d words of replicated sentences; e.g. %s", mesh, lost, dup, ex)
		}
		lost, dup, ex = wordCheck(multiset(f.readAll("c", local.outTopic)), localRepl)
		t.Logf("%s with a down: %d replicated sentences; words on c: lost %d, duplicated %d", localMesh, len(localRepl), lost, dup)
		if lost > 0 || dup > 0 {
			t.Errorf("%s with a down: lost %d, duplicated %d words of replicated sentences on c; e.g. %s", localMesh, lost, dup, ex)
		}
	})

	// Region a returns: its broker (which replicates its stranded tail to c
	// and takes the producers' pending sentences), then its agent; split
	// fails back after the hold-down, and c's fallback subscription goes.
	t.Run("failback_to_a", func(t *testing.T) {
		f := f.sub(t)
		f.brokers["a"].start()
		f.brokers["a"].waitReady()
		// The streams stopped at different sentences: fill each input
		// up to the furthest, so every input holds [0, total).
		nexts := make([]int, len(streams))
		for i, s := range streams {
			nexts[i] = s.finish(drainTimeout(n))
			total = max(total, nexts[i])
		}
		for i, tp := range inputs {
			if nexts[i] < total {
				f.produce(tp, nexts[i], total, "a")
			}
		}
		f.agents["agent-a"].start()
		f.waitAgentReady("agent-a")
		back := time.Now()
		assigned, running := f.timeUntilIn(mesh, "a", back, convergeTimeout+holdDown, map[string]string{"count": "b"})
		t.Logf("FAILBACK: split assigned in a %v and running %v after agent-a was Ready (hold-down %v)",
			assigned.Round(time.Millisecond), running.Round(time.Millisecond), holdDown)
		for _, m := range []string{aloMesh, localMesh} {
			f.waitRunning(m, convergeTimeout+holdDown, map[string]int{"split": 1}, map[string]string{"split": "a"})
		}
		for _, m := range []string{mesh, aloMesh, localMesh} {
			in := topicURL(m + "-sentences")
			testkit.Eventually(t, convergeTimeout, "the fallback subscription of "+m+" removed from c", func() (bool, string) {
				st, err := f.brokers["c"].stats(in)
				if err != nil {
					return false, err.Error()
				}
				_, ok := st.Subscriptions[subscription(m, "split")]
				return !ok, fmt.Sprintf("subscriptions on c: %v", st.Subscriptions)
			})
		}
		// A last phase, after the failback.
		for _, tp := range inputs {
			f.produce(tp, total, total+n/4, "a")
		}
		total += n / 4
	})

	// The leader dies while a second failover (of the agent only, the
	// broker stays up and keeps replicating) is pending: the new leader
	// must complete it.
	t.Run("leader_killed_during_failover", func(t *testing.T) {
		f := f.sub(t)
		p4 := n / 4
		var ss []*streamer
		for _, tp := range inputs {
			ss = append(ss, f.startStream(tp, total, total+p4, max(p4/1000, 1), "a"))
		}
		ss[0].waitAtLeast(total+p4/5, drainTimeout(n))
		lead := leader(t, f.srv(), 3)
		killed := time.Now()
		f.agents["agent-a"].kill9()
		// Let the old leader's TTL timer run part way, then kill it.
		time.Sleep(time.Second)
		f.cp.byID(lead).kill9()
		t.Logf("SIGKILL agent-a, then leader %s 1s later, at %d/%d of phase 4", lead, ss[0].progress()-total, p4)
		assigned, running := f.timeUntilIn(mesh, "c", killed, 2*convergeTimeout, map[string]string{"count": "b"})
		t.Logf("FAILOVER with a leader change: split assigned in c %v and running %v after agent-a died", assigned.Round(time.Millisecond), running.Round(time.Millisecond))
		f.cp.byID(lead).start()
		f.cp.byID(lead).waitReady()
		for _, s := range ss {
			s.wait(drainTimeout(n))
		}
		total += p4
		// And back again, to finish where the data is home.
		f.agents["agent-a"].start()
		f.waitAgentReady("agent-a")
		f.timeUntilIn(mesh, "a", time.Now(), convergeTimeout+holdDown, map[string]string{"count": "b"})
		for _, m := range []string{aloMesh, localMesh} {
			f.waitRunning(m, convergeTimeout+holdDown, map[string]int{"split": 1}, map[string]string{"split": "a"})
		}
	})

	// Every word of every phase exactly once on b, the stranded tail
	// included, and counted once.
	f.checkWords(mesh, split, count, total, true)
	t.Logf("%s: the %d sentences a had confirmed but not replicated when it died were processed exactly once after it returned", mesh, stranded)
	f.waitDrained("a", alo.inTopic, subscription(aloMesh, "split"), drainTimeout(total))
	words := f.readAll("b", alo.outTopic)
	lost, dup, ex := compareWords(wordsOf(0, total), multiset(words))
	t.Logf("%s (at least once): %d input messages, %d words on b (want %d): lost %d, duplicated %d", aloMesh, total, len(words), 2*total, lost, dup)
	if lost > 0 {
		t.Errorf("%s: lost %d words; e.g. %s", aloMesh, lost, ex)
		f.explainMissing(aloMesh, missingSentences(multiset(words), total), alo.inTopic, map[string]string{"b": alo.outTopic})
	}
	// The local mesh's output lives in a and in c: once replication has
	// caught up both ways, each copy holds every word exactly once.
	f.waitDrained("a", local.inTopic, subscription(localMesh, "split"), drainTimeout(total))
	all := map[int]bool{}
	for i := 0; i < total; i++ {
		all[i] = true
	}
	for _, c := range []string{"a", "c"} {
		var lost, dup int
		var ex string
		deadline := time.Now().Add(2 * convergeTimeout)
		for {
			got := multiset(f.readAll(c, local.outTopic))
			lost, dup, ex = wordCheck(got, all)
			if lost == 0 {
				break
			}
			if time.Now().After(deadline) {
				f.explainMissing(localMesh+" on "+c, missingSentences(got, total), local.inTopic, map[string]string{"a": local.outTopic, "c": local.outTopic})
				t.Fatalf("%s: the output copy on %s lacks the words of %d sentences; e.g. %s", localMesh, c, lost, ex)
			}
			time.Sleep(time.Second)
		}
		t.Logf("%s: output copy on %s: %d sentences, lost %d, duplicated %d", localMesh, c, total, lost, dup)
		if dup > 0 {
			t.Errorf("%s: the output copy on %s holds %d duplicated words; e.g. %s", localMesh, c, dup, ex)
		}
	}
	for _, m := range []string{mesh, aloMesh, localMesh} {
		t.Logf("describe mesh %s:\n%s", m, mustCLI(t, f.srv(), "describe", "mesh", m))
	}
}
