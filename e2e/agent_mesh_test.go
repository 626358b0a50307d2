//go:build e2e

package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
)

// Issue 4's acceptance run: a mesh split (word-split, runs in a, reads a,
// writes b) → count (word-count, runs in b) over real servers, brokers and
// agents. MESHFED_E2E_MESSAGES sets the number of input messages of each
// run (default 10,000; the acceptance figure is 100,000).

const defaultMessages = 10000

// splitCount is the word-count mesh of the issue: split reads
// <mesh>-sentences on a and writes <mesh>-words on b; count reads the words
// on b and writes <mesh>-counts on b.
func splitCount(mesh, splitRuntime, guarantee string, replicas int, failover ...string) (string, meshFn, meshFn) {
	split := meshFn{name: "split", runtime: splitRuntime, guarantee: guarantee, replicas: replicas,
		inCluster: "a", inTopic: topicURL(mesh + "-sentences"), outCluster: "b", outTopic: topicURL(mesh + "-words"), failover: failover}
	count := meshFn{name: "count", runtime: "{builtin: word-count}", guarantee: guarantee,
		inCluster: "b", inTopic: topicURL(mesh + "-words"), outCluster: "b", outTopic: topicURL(mesh + "-counts")}
	return meshYAML(mesh, split, count), split, count
}

// checkWords waits until split and count have processed everything, then
// compares b's words with what word-split makes of sentences [0, n): lost
// words always fail the test, duplicates when exactlyOnce. It also checks
// that count counted every "fox" (exactly n times when exactlyOnce). It
// returns the words read.
func (f *fed) checkWords(mesh string, split, count meshFn, n int, exactlyOnce bool) map[string]int {
	f.t.Helper()
	start := time.Now()
	f.waitDrained(split.inCluster, split.inTopic, subscription(mesh, "split"), drainTimeout(n))
	f.waitDrained("b", count.inTopic, subscription(mesh, "count"), drainTimeout(n))
	words := f.readAll("b", split.outTopic)
	got := multiset(words)
	lost, dup, ex := compareWords(wordsOf(0, n), got)
	f.t.Logf("%s: %d input messages, %d words read on b (want %d): lost %d, duplicated %d (drained %v after the last send)",
		mesh, n, len(words), 2*n, lost, dup, time.Since(start).Round(time.Millisecond))
	if lost > 0 || exactlyOnce && dup > 0 {
		f.t.Errorf("%s: words on b: lost %d, duplicated %d (exactly once: %v); e.g. %s", mesh, lost, dup, exactlyOnce, ex)
	}
	counts := f.readAll("b", count.outTopic)
	if c := maxCount(counts, "fox"); c < n || exactlyOnce && c != n {
		f.t.Errorf("%s: the highest count emitted for \"fox\" is %d, want %d (%d count messages)", mesh, c, n, len(counts))
	}
	return got
}

// sub returns f bound to a subtest (fatal failures stop the subtest).
func (f *fed) sub(t *testing.T) *fed {
	g := *f
	g.t = t
	return &g
}

func TestAgentMeshOneServer(t *testing.T) {
	n := messageCount(t, defaultMessages)
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a", "b"}})

	// The builtin mesh at least once, and the same mesh with split in
	// Python (exec, from a pushed bundle) and in WebAssembly (a pushed
	// module) effectively once, all three at the same time.
	t.Run("at_least_once_and_exec_and_wasm", func(t *testing.T) {
		f := f.sub(t)
		wasm := f.pushPackage(buildWasmSplit(t))
		bundle := f.pushPackage(pythonBundle(t, "split.py"))
		type run struct {
			mesh, runtime, guarantee string
		}
		runs := []run{
			{"alo", "{builtin: word-split}", "atleast_once"},
			{"py", fmt.Sprintf("{exec: {package: %q, command: [python3, split.py]}}", bundle), "effectively_once"},
			{"wasm", fmt.Sprintf("{wasm: {package: %q}}", wasm), "effectively_once"},
		}
		for _, r := range runs {
			y, _, _ := splitCount(r.mesh, r.runtime, r.guarantee, 1)
			f.apply(y)
		}
		for _, r := range runs {
			f.waitRunning(r.mesh, convergeTimeout, map[string]int{"split": 1, "count": 1}, map[string]string{"split": "a", "count": "b"})
		}
		start := time.Now()
		for _, r := range runs {
			_, split, _ := splitCount(r.mesh, r.runtime, r.guarantee, 1)
			f.produce(split.inTopic, 0, n, "a")
		}
		got := map[string]map[string]int{}
		for _, r := range runs {
			_, split, count := splitCount(r.mesh, r.runtime, r.guarantee, 1)
			got[r.mesh] = f.checkWords(r.mesh, split, count, n, r.guarantee == "effectively_once")
		}
		t.Logf("%d messages through 3 meshes in %v", n, time.Since(start).Round(time.Millisecond))
		// Same words from every runtime (duplicates aside: at least once may repeat).
		distinct := func(m map[string]int) []string {
			var out []string
			for w := range m {
				out = append(out, w)
			}
			sort.Strings(out)
			return out
		}
		want := fmt.Sprint(distinct(got["alo"]))
		for _, m := range []string{"py", "wasm"} {
			if fmt.Sprint(distinct(got[m])) != want {
				t.Errorf("mesh %s (split in %s) wrote other words than the builtin split", m, m)
			}
		}
		// fmt prints maps sorted by key: equal strings, equal multisets.
		if fmt.Sprint(got["py"]) != fmt.Sprint(got["wasm"]) {
			t.Errorf("split in Python and split in wasm wrote different multisets of words")
		}
	})

	t.Run("effectively_once_kill_split_agent_twice", func(t *testing.T) {
		f.sub(t).effectivelyOnceWithKills("eo", n)
	})

	t.Run("scale_1_4_1_during_the_stream", func(t *testing.T) {
		f := f.sub(t)
		y, split, count := splitCount("scale", "{builtin: word-split}", "atleast_once", 1)
		f.apply(y)
		f.waitRunning("scale", convergeTimeout, map[string]int{"split": 1, "count": 1}, nil)
		s := f.startStream(split.inTopic, 0, n, max(n/2000, 1), "a")
		s.waitAtLeast(n/5, drainTimeout(n))
		y4, _, _ := splitCount("scale", "{builtin: word-split}", "atleast_once", 4)
		// apply --wait returns once the new generation is Ready, with progress.
		out := f.apply(y4, "--wait", "--wait-timeout", convergeTimeout.String())
		if !strings.Contains(out, "functionmesh/public/default/scale: 5/5 running, Ready") {
			t.Errorf("apply --wait did not end with the mesh Ready at 5/5:\n%s", out)
		}
		as := f.waitRunning("scale", convergeTimeout, map[string]int{"split": 4, "count": 1}, map[string]string{"split": "a"})
		t.Logf("scaled to 4 at %d/%d messages: %s", s.progress(), n, describeAssignments(as))
		// Each replica must have taken part.
		testkit.Eventually(t, convergeTimeout, "4 consumers on split's subscription", func() (bool, string) {
			st, err := f.brokers["a"].stats(split.inTopic)
			if err != nil {
				return false, err.Error()
			}
			c := len(st.Subscriptions[subscription("scale", "split")].Consumers)
			return c == 4, fmt.Sprintf("%d consumers", c)
		})
		s.waitAtLeast(n*3/5, drainTimeout(n))
		f.apply(y)
		f.waitRunning("scale", convergeTimeout, map[string]int{"split": 1, "count": 1}, map[string]string{"split": "a"})
		t.Logf("scaled back to 1 at %d/%d messages", s.progress(), n)
		s.wait(drainTimeout(n))
		f.checkWords("scale", split, count, n, false)
	})
}

// TestAgentMeshThreeServers repeats the effectively-once run with kills
// against a three-server control plane.
func TestAgentMeshThreeServers(t *testing.T) {
	n := messageCount(t, defaultMessages)
	f := newFed(t, fedOptions{servers: 3, clusters: []string{"a", "b"}})
	f.effectivelyOnceWithKills("eo3", n)
}

// effectivelyOnceWithKills runs the mesh effectively once, produces n
// messages to a at a steady pace, SIGKILLs the agent running split twice
// mid-stream (restarting it each time) and requires every word on b
// exactly once.
func (f *fed) effectivelyOnceWithKills(mesh string, n int) {
	f.t.Helper()
	y, split, count := splitCount(mesh, "{builtin: word-split}", "effectively_once", 1)
	f.apply(y)
	f.waitRunning(mesh, convergeTimeout, map[string]int{"split": 1, "count": 1}, map[string]string{"split": "a", "count": "b"})
	start := time.Now()
	s := f.startStream(split.inTopic, 0, n, max(n/1000, 1), "a")
	agent := f.agents["agent-a"]
	for k, at := range []int{n * 3 / 10, n * 6 / 10} {
		s.waitAtLeast(at, drainTimeout(n))
		// Kill only once split is really writing, so the kill lands mid-output.
		testkit.Eventually(f.t, convergeTimeout, "split to write words", func() (bool, string) {
			st, err := f.brokers["b"].stats(split.outTopic)
			if err != nil {
				return false, err.Error()
			}
			return st.MsgInCounter > 0, "no words yet"
		})
		agent.kill9()
		f.t.Logf("kill %d: SIGKILL %s at %d/%d messages produced", k+1, agent.name, s.progress(), n)
		agent.start()
		f.waitRunning(mesh, convergeTimeout, map[string]int{"split": 1, "count": 1}, map[string]string{"split": "a", "count": "b"})
	}
	s.wait(drainTimeout(n))
	f.checkWords(mesh, split, count, n, true)
	f.t.Logf("%s: %d messages, two kills, done in %v", mesh, n, time.Since(start).Round(time.Millisecond))
}
