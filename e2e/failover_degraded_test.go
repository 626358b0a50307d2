//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
)

// TestFailoverNoFallbackDegraded takes cluster a down (its only agent
// SIGKILLed) under two meshes that cannot leave it: one names no failover
// cluster, the other names c, which an operator cordoned. Both must stay
// defined and report Degraded with the reason; when a's agent returns, their
// instances resume there and process what arrived meanwhile, effectively
// once.
func TestFailoverNoFallbackDegraded(t *testing.T) {
	n := messageCount(t, defaultMessages) / 4
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a", "b", "c"}})
	mustCLI(t, f.srv(), "cluster", "cordon", "c")
	meshes := map[string][]string{"nofallback": nil, "cordoned": {"c"}}
	reasons := map[string]string{"nofallback": "no failover clusters", "cordoned": "no failover cluster is usable"}
	fns := map[string][2]meshFn{}
	gen := map[string]string{}
	for m, fo := range meshes {
		y, split, count := splitCount(m, "{builtin: word-split}", "effectively_once", 1, fo...)
		fns[m] = [2]meshFn{split, count}
		f.apply(y)
		f.waitRunning(m, convergeTimeout, map[string]int{"split": 1, "count": 1}, map[string]string{"split": "a", "count": "b"})
		f.produce(split.inTopic, 0, n/2, "a")
		gen[m] = meshGeneration(t, f, m)
	}

	down := time.Now()
	f.agents["agent-a"].kill9()
	for m := range meshes {
		testkit.Eventually(t, convergeTimeout, m+" to be Degraded", func() (bool, string) {
			fm, err := f.mesh(m)
			if err != nil {
				return false, err.Error()
			}
			st, reason, msg := condition(fm, "Degraded")
			return st == "True" && strings.Contains(msg, reasons[m]), st + " " + reason + ": " + msg
		})
		fm, _ := f.mesh(m)
		_, reason, msg := condition(fm, "Degraded")
		t.Logf("%s Degraded %v after a went down: %s: %s", m, time.Since(down).Round(time.Millisecond), reason, msg)
	}
	// Messages keep arriving on a while it has no agent.
	for m, fn := range fns {
		f.produce(fn[0].inTopic, n/2, n, "a")
		// The definition is intact and its instance is still there, unplaced.
		if g := meshGeneration(t, f, m); g != gen[m] {
			t.Errorf("%s: metadata.generation went from %s to %s while Degraded", m, gen[m], g)
		}
		out := mustCLI(t, f.srv(), "get", "mesh", m, "-o", "yaml")
		for _, want := range []string{"name: split", "name: count", "word-split", "effectively_once"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s while Degraded: get -o yaml lacks %q:\n%s", m, want, out)
			}
		}
		as, err := f.assignments(m)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := as["split#0"]; !ok || a.GetSpec().GetAgent() != "" {
			t.Errorf("%s while Degraded: want split#0 kept and unplaced: %s", m, describeAssignments(as))
		}
	}

	f.agents["agent-a"].start()
	back := time.Now()
	for m, fn := range fns {
		f.waitRunning(m, convergeTimeout, map[string]int{"split": 1, "count": 1}, map[string]string{"split": "a", "count": "b"})
		t.Logf("%s running in a again %v after its agent restarted", m, time.Since(back).Round(time.Millisecond))
		testkit.Eventually(t, convergeTimeout, m+" not Degraded", func() (bool, string) {
			fm, err := f.mesh(m)
			if err != nil {
				return false, err.Error()
			}
			st, reason, msg := condition(fm, "Degraded")
			return st == "False", st + " " + reason + ": " + msg
		})
		f.checkWords(m, fn[0], fn[1], n, true)
	}
}

// meshGeneration returns metadata.generation of a mesh as `get -o json` shows it.
func meshGeneration(t *testing.T, f *fed, mesh string) string {
	t.Helper()
	var doc objectDoc
	if err := json.Unmarshal([]byte(mustCLI(t, f.srv(), "get", "mesh", mesh, "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Metadata.Generation.String()
}
