package policies

import (
	"fmt"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

// benchState returns a state with n rules (half flow rules of the mesh's
// namespace, half grants in the namespace it writes to, the ones that
// match last) and a four-function federated-learning mesh that crosses
// clusters and tenants in every function.
func benchState(n int) (*Static, *meshfedv1.FunctionMesh) {
	objs := world()
	spec := &meshfedv1.NamespaceSpec{}
	grants := 0
	if n > 0 {
		for i := 0; i < n/2-2; i++ {
			spec.Flows = append(spec.Flows, &meshfedv1.FlowRule{From: fmt.Sprintf("x%d", i), To: "b"})
		}
		spec.Flows = append(spec.Flows, &meshfedv1.FlowRule{From: "a", To: "b"}, &meshfedv1.FlowRule{From: "b", To: "a"})
		for ; grants < n-n/2-1; grants++ {
			objs = append(objs, grantObj("lab-b", "models", fmt.Sprintf("g%d", grants), "hospital-x", fmt.Sprintf("n%d", grants), "produce"))
		}
	}
	objs = append(objs, testkit.Namespace("hospital-a", "training", spec),
		grantObj("lab-b", "models", "hospital-a", "hospital-a", "training", "produce", "consume"))
	var fns []*meshfedv1.FunctionSpec
	for i := 0; i < 4; i++ {
		in, out := "a", "b"
		if i%2 == 1 {
			in, out = "b", "a"
		}
		fns = append(fns, fnSpec(fmt.Sprintf("f%d", i), in, []string{records, "persistent://lab-b/models/base"}, out, updates))
	}
	return NewStatic(objs...), testkit.MeshOf("hospital-a", "training", "train", fns...)
}

// BenchmarkAdmitMesh measures admission of one mesh with no rules and with
// 1,000 (500 flows, 500 grants); BENCHMARKS.md records the ratio.
func BenchmarkAdmitMesh(b *testing.B) {
	for _, n := range []int{0, 1000} {
		v, m := benchState(n)
		if err := AdmitMesh(m, v); err != nil {
			b.Fatalf("rules=%d: %v", n, err)
		}
		rules := len(v.Namespace("hospital-a", "training").GetSpec().GetFlows()) + len(v.Grants("lab-b", "models"))
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := AdmitMesh(m, v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rules), "rules")
		})
	}
}

// TestBenchState checks the benchmark measures what it says: the rules are
// there, and each kind matters to the decision.
func TestBenchState(t *testing.T) {
	v, m := benchState(1000)
	flows := len(v.Namespace("hospital-a", "training").GetSpec().GetFlows())
	grants := len(v.Grants("lab-b", "models"))
	if flows+grants != 1000 || flows < 400 || grants < 400 {
		t.Fatalf("%d flows + %d grants", flows, grants)
	}
	if err := AdmitMesh(m, v); err != nil {
		t.Fatal(err)
	}
	m.Spec.Functions[0].Output.Cluster = "c"
	if err := AdmitMesh(m, v); len(AsViolations(err)) != 1 {
		t.Errorf("a flow outside the 1,000 rules: %v", err)
	}
}
