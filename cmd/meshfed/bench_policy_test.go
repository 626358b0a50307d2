package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
)

// TestAdmissionWorld checks the benchmark's worlds without servers: the
// rule count is what --rules asks for, the mesh passes every rule, and the
// rules decide (the probe breaks exactly one flow rule).
func TestAdmissionWorld(t *testing.T) {
	least := fixedRules(len(admissionClusters()))
	for _, n := range []int{0, least, least + 1, 1000, 2500} {
		var all []*meshfedv1.Object
		for _, objs := range admissionWorld(n) {
			for _, o := range objs {
				if err := objects.Validate(o); err != nil {
					t.Fatalf("rules=%d: %s: %v", n, objects.DisplayName(o), err)
				}
			}
			all = append(all, objs...)
		}
		want := max(n, admissionOwners)
		if got := countRules(all); got.total() != want {
			t.Errorf("rules=%d: world has %s", n, got)
		}
		v := policies.NewStatic(all...)
		if err := policies.AdmitMesh(admissionMesh("m", 1, "").GetFunctionMesh(), v); err != nil {
			t.Errorf("rules=%d: the benchmark mesh is refused: %v", n, err)
		}
		err := policies.AdmitMesh(admissionMesh("m", 1, "c").GetFunctionMesh(), v)
		vs := policies.AsViolations(err)
		switch {
		case n == 0 && err != nil:
			t.Errorf("rules=0: the probe is refused: %v", err)
		case n > 0 && (len(vs) != 1 || vs[0].Rule != policies.RuleFlows):
			t.Errorf("rules=%d: the probe: %v, want one namespace.flows violation", n, err)
		}
	}
}

// TestBenchAdmissionSmoke runs `meshfed bench admission` with tiny numbers
// against in-process servers: the 1,000 rules are read back through the API,
// a dry-run apply breaking one of them is refused during the run, and both
// clusters take the same applies without errors.
func TestBenchAdmissionSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke run")
	}
	f := benchAdmissionFlags{rules: 1000, applies: 12, rounds: 2, concurrency: []int{1, 3}, meshes: 3, warmup: 2, conns: 4, inProcess: true, dir: t.TempDir()}
	if err := f.check(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := runBenchAdmission(context.Background(), &out, f)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got := rep.ruled.read; got.total() != 1000 || got.flows < 400 || got.grants < 400 {
		t.Errorf("rules read back from the ruled cluster: %s", got)
	}
	if got := rep.none.read; got.total() != admissionOwners || got.grants != admissionOwners {
		t.Errorf("rules read back from the cluster without rules: %s", got)
	}
	if rep.none.probe != nil || !refusedByFlows(rep.ruled.probe) || !refusedByFlows(rep.probeAfter) {
		t.Errorf("probe: none %v, ruled %v, after %v", rep.none.probe, rep.ruled.probe, rep.probeAfter)
	}
	if len(rep.results) != 2*len(f.concurrency) {
		t.Fatalf("%d results", len(rep.results))
	}
	for i, r := range rep.results {
		wantRules := []int{0, f.rules}[i%2]
		if r.rules != wantRules || r.concurrency != f.concurrency[i/2] || r.applies != f.applies || r.errors != 0 || r.p99 <= 0 || r.p50 > r.p99 || r.p99 > r.max {
			t.Errorf("result %d: %+v (first error %v)", i, *r, r.firstErr)
		}
	}
	text := out.String()
	for _, want := range []string{"1000 = ", "| rules ", "| 1000 ", "p99 rules/none", "(namespace.flows)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "\nround "); n != 2*f.rounds*len(f.concurrency) {
		t.Errorf("%d round lines:\n%s", n, text)
	}
}
