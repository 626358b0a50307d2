package policies

import (
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// fuzzReader turns fuzz bytes into small choices; past the end it reads zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// n returns a number in [0, max).
func (r *fuzzReader) n(max int) int { return int(r.byte()) % max }

func (r *fuzzReader) pick(list []string) string { return list[r.n(len(list))] }

// subset returns the elements of list whose bit is set in one byte.
func (r *fuzzReader) subset(list []string) []string {
	mask := r.byte()
	var out []string
	for i, s := range list {
		if mask&(1<<i) != 0 {
			out = append(out, s)
		}
	}
	return out
}

var (
	fuzzClusters = []string{"a", "b", "c", "d"}
	fuzzTenants  = []string{"t1", "t2"}
	fuzzNS       = []string{"n1", "n2"}
	fuzzTopics   = []string{"persistent://t1/n1/x", "persistent://t1/n2/y", "persistent://t2/n1/z", "t2/n2/w", "short", "bad://topic", ""}
	fuzzLabels   = [][2]string{{"region", "eu"}, {"region", "us"}, {"tier", "gold"}}
)

func (r *fuzzReader) labels() map[string]string {
	m := map[string]string{}
	for _, l := range fuzzLabels {
		if r.n(2) == 1 {
			m[l[0]] = l[1]
		}
	}
	return m
}

func (r *fuzzReader) function(i int) *meshfedv1.FunctionSpec {
	f := &meshfedv1.FunctionSpec{Name: "f" + strconv.Itoa(r.n(4)), Replicas: int32(r.n(5)), MaxReplicas: int32(r.n(6))}
	switch r.n(4) {
	case 0:
		f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "identity"}}
	case 1:
		f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{}}}
	case 2:
		f.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{}}}
	}
	if r.n(8) != 0 {
		f.Input = &meshfedv1.FunctionInput{Cluster: r.pick(append(fuzzClusters, "")), Topics: r.subset(fuzzTopics)}
	}
	if r.n(3) != 0 {
		f.Output = &meshfedv1.FunctionOutput{Cluster: r.pick(append(fuzzClusters, "", "")), Topic: r.pick(fuzzTopics)}
	}
	if r.n(3) == 0 {
		f.Placement = &meshfedv1.Placement{Cluster: r.pick(fuzzClusters)}
	}
	if r.n(2) == 0 {
		f.Failover = &meshfedv1.Failover{Clusters: r.subset(fuzzClusters)}
	}
	if r.n(4) == 0 {
		f.DeadLetterTopic = r.pick(fuzzTopics)
	}
	if r.n(4) == 0 {
		f.LogTopic = r.pick(fuzzTopics)
	}
	return f
}

func (r *fuzzReader) mesh() *meshfedv1.FunctionMesh {
	m := testkit.MeshOf(r.pick(fuzzTenants), r.pick(fuzzNS), "m"+strconv.Itoa(r.n(3)))
	for i, n := 0, r.n(4); i < n; i++ {
		m.Spec.Functions = append(m.Spec.Functions, r.function(i))
	}
	return m
}

// fuzzState builds a state and a mesh to admit from data.
func fuzzState(data []byte) ([]*meshfedv1.Object, *meshfedv1.FunctionMesh) {
	r := &fuzzReader{b: data}
	var objs []*meshfedv1.Object
	for _, c := range fuzzClusters {
		if r.n(8) != 0 { // sometimes unknown
			o := testkit.Cluster(c)
			o.GetCluster().Metadata.Labels = r.labels()
			objs = append(objs, o)
		}
	}
	for _, t := range fuzzTenants {
		objs = append(objs, testkit.Tenant(t, r.subset(fuzzClusters)...))
		for _, n := range fuzzNS {
			if r.n(8) == 0 {
				continue // missing namespace
			}
			spec := &meshfedv1.NamespaceSpec{
				Quotas:          &meshfedv1.NamespaceQuotas{Meshes: int32(r.n(4)), Functions: int32(r.n(6)), Instances: int32(r.n(10)), ReplicasPerFunction: int32(r.n(4))},
				AllowedRuntimes: r.subset([]string{"builtin", "exec", "wasm"}),
				Residency:       r.labels(),
			}
			if r.n(2) == 0 {
				spec.Residency = nil
			}
			for i, k := 0, r.n(4); i < k; i++ {
				ends := append(fuzzClusters, "*")
				spec.Flows = append(spec.Flows, &meshfedv1.FlowRule{From: r.pick(ends), To: r.pick(ends)})
			}
			objs = append(objs, testkit.Namespace(t, n, spec))
		}
	}
	for i, k := 0, r.n(6); i < k; i++ {
		objs = append(objs, grantObj(r.pick(fuzzTenants), r.pick(fuzzNS), "g"+strconv.Itoa(i), r.pick(fuzzTenants), r.pick(fuzzNS), r.subset([]string{"produce", "consume"})...))
	}
	for i, k := 0, r.n(4); i < k; i++ {
		objs = append(objs, objects.Wrap(r.mesh()))
	}
	return objs, r.mesh()
}

// reversed is a View returning lists in reverse order: decisions must not
// depend on the order the store returns grants and meshes in.
type reversed struct{ View }

func (v reversed) Grants(t, ns string) []*meshfedv1.Grant {
	l := slices.Clone(v.View.Grants(t, ns))
	slices.Reverse(l)
	return l
}

func (v reversed) Meshes(t, ns string) []*meshfedv1.FunctionMesh {
	l := slices.Clone(v.View.Meshes(t, ns))
	slices.Reverse(l)
	return l
}

func FuzzAdmitMesh(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, m := fuzzState(data)
		orig := proto.Clone(m)
		v := NewStatic(objs...)
		err := AdmitMesh(m, v)
		got := errLines(err)
		if again := errLines(AdmitMesh(m, v)); !slices.Equal(got, again) {
			t.Fatalf("not deterministic:\n%q\n%q", got, again)
		}
		if rev := errLines(AdmitMesh(m, reversed{v})); !slices.Equal(got, rev) {
			t.Fatalf("depends on list order:\n%q\n%q", got, rev)
		}
		if !proto.Equal(orig, m) {
			t.Fatal("AdmitMesh changed the mesh")
		}
		var noQuota []string
		for _, vi := range AsViolations(err) {
			if !slices.Contains(Rules(), vi.Rule) || vi.Code != vi.Rule.Code() || vi.Path == "" || vi.Reason == "" || !utf8.ValidString(vi.Error()) {
				t.Fatalf("malformed violation %#v", vi)
			}
			if vi.Rule.Code() != FailedPrecondition {
				noQuota = append(noQuota, vi.Error())
			}
		}
		if re := errLines(Recheck(m, v)); !slices.Equal(re, noQuota) {
			t.Fatalf("Recheck is not AdmitMesh without quotas:\n%q\n%q", re, noQuota)
		}
		// Without any tenant or namespace, only grants can refuse.
		for _, vi := range AsViolations(AdmitMesh(m, NewStatic())) {
			if vi.Rule != RuleGrantConsume && vi.Rule != RuleGrantProduce {
				t.Fatalf("empty state refused with %s", vi.Error())
			}
		}
		// The home placement of each function breaks no rule AdmitMesh
		// did not report.
		for i, fn := range m.GetSpec().GetFunctions() {
			run := fn.GetPlacement().GetCluster()
			if run == "" {
				run = fn.GetInput().GetCluster()
			}
			for _, line := range errLines(AdmitPlacement(m, i, run, fn.GetInput().GetCluster(), fn.GetOutput().GetCluster(), v)) {
				if !slices.Contains(got, line) {
					t.Fatalf("AdmitPlacement at home: %s\nnot among AdmitMesh's %q", line, got)
				}
			}
			if fo := fn.GetFailover().GetClusters(); len(fo) > 0 {
				_ = AdmitPlacement(m, i, fo[0], fo[0], "", v) // must not panic
			}
		}
	})
}
