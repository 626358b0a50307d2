package policies

import (
	"slices"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
)

func TestRecheck(t *testing.T) {
	grant := grantObj("lab-b", "models", "hospital-a-updates", "hospital-a", "training", "produce")
	m := flMesh()
	before := NewStatic(append(world(), grant, objects.Wrap(m))...)
	if err := Recheck(m, before); err != nil {
		t.Fatalf("with the grant: %v", err)
	}
	// The Grant is revoked: the stored mesh is now Degraded, naming it.
	after := NewStatic(append(world(), objects.Wrap(m))...)
	want := []string{`spec.functions[0].output.topic "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training produce (grant.produce)`}
	if got := errLines(Recheck(m, after)); !slices.Equal(got, want) {
		t.Fatalf("after revocation: got %q, want %q", got, want)
	}

	// A lowered quota degrades nothing, while AdmitMesh still refuses growth.
	tight := testkit.Namespace("hospital-a", "training", &meshfedv1.NamespaceSpec{Quotas: &meshfedv1.NamespaceQuotas{Meshes: 1, Functions: 1, Instances: 1, ReplicasPerFunction: 1}})
	big := testkit.MeshOf("hospital-a", "training", "big", with(fnSpec("f", "a", []string{records}, "", ""), func(f *meshfedv1.FunctionSpec) { f.Replicas = 3 }),
		fnSpec("g", "a", []string{records}, "", ""))
	v := NewStatic(append(world(), grant, tight, objects.Wrap(m), objects.Wrap(big))...)
	if err := Recheck(big, v); err != nil {
		t.Errorf("quota over a stored mesh degraded it: %v", err)
	}
	if err := Recheck(m, v); err != nil {
		t.Errorf("quota over a stored mesh degraded it: %v", err)
	}
	newMesh := testkit.MeshOf("hospital-a", "training", "new", fnSpec("f", "a", []string{records}, "", ""))
	if err := AdmitMesh(newMesh, v); len(AsViolations(err)) != 3 {
		t.Errorf("AdmitMesh of a new mesh over every quota: %v", err)
	}
	if err := Recheck(newMesh, v); err != nil {
		t.Errorf("Recheck counts quotas: %v", err)
	}

	// A tightened namespace (residency) and tenant (clusters) degrade it.
	eu := testkit.Namespace("hospital-a", "training", &meshfedv1.NamespaceSpec{Residency: map[string]string{"site": "a"}})
	got := errLines(Recheck(m, NewStatic(append(world(), grant, eu, testkit.Tenant("hospital-a", "a"))...)))
	want = []string{
		`spec.functions[0].output.cluster "b" is not one of the clusters tenant hospital-a may use (a) (tenant.allowedClusters)`,
		`spec.functions[0].output.cluster "b" is outside residency site=a of namespace hospital-a/training (namespace.residency)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("tightened: got %q, want %q", got, want)
	}
	// A cluster losing a residency label degrades it too.
	relabeled := NewStatic(append(world(), grant, testkit.Namespace("hospital-a", "training", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu"}}), testkit.Cluster("b", "region", "us"))...)
	if got := errLines(Recheck(m, relabeled)); len(got) != 1 || !strings.Contains(got[0], `output.cluster "b" is outside residency region=eu`) {
		t.Errorf("relabeled cluster: %q", got)
	}
}

func TestAdmitPlacement(t *testing.T) {
	euNS := testkit.Namespace("acme", "eu", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu"}})
	in := []string{"persistent://acme/eu/in"}
	m := testkit.MeshOf("acme", "eu", "m",
		with(fnSpec("f", "a", in, "b", "persistent://acme/eu/out"), func(f *meshfedv1.FunctionSpec) {
			f.Failover = &meshfedv1.Failover{Clusters: []string{"us-east", "eu-1"}}
		}),
		fnSpec("g", "b", in, "", ""))
	flows := testkit.Namespace("acme", "eu", &meshfedv1.NamespaceSpec{Flows: []*meshfedv1.FlowRule{{From: "a", To: "b"}, {From: "eu-1", To: "*"}}})
	euModels := testkit.Namespace("lab-b", "models", &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu"}})
	fl := testkit.MeshOf("hospital-a", "training", "train", fnSpec("train", "a", []string{records}, "b", updates))
	cases := []struct {
		name         string
		objs         []*meshfedv1.Object
		mesh         *meshfedv1.FunctionMesh
		fn           int
		run, in, out string
		want         []string
	}{
		{name: "home", objs: []*meshfedv1.Object{euNS}, mesh: m, run: "a", in: "a", out: "b"},
		{name: "eu fallback", objs: []*meshfedv1.Object{euNS}, mesh: m, run: "eu-1", in: "eu-1", out: "b"},
		{name: "non-eu fallback", objs: []*meshfedv1.Object{euNS}, mesh: m, run: "us-east", in: "us-east", out: "b", want: []string{
			`spec.functions[0].input.cluster "us-east" is outside residency region=eu of namespace acme/eu (namespace.residency)`,
		}},
		{name: "non-eu fallback, output moved too", objs: []*meshfedv1.Object{euNS}, mesh: m, run: "us-east", in: "a", out: "us-east", want: []string{
			`spec.functions[0].placement.cluster "us-east" is outside residency region=eu of namespace acme/eu (namespace.residency)`,
		}},
		{name: "empty out writes where it runs", objs: []*meshfedv1.Object{euNS}, mesh: m, fn: 1, run: "c", in: "b", want: []string{
			`spec.functions[1].placement.cluster "c" is outside residency region=eu of namespace acme/eu (namespace.residency)`,
		}},
		{name: "tenant clusters", objs: []*meshfedv1.Object{testkit.Tenant("acme", "a", "b")}, mesh: m, run: "eu-1", in: "a", out: "b", want: []string{
			`spec.functions[0].placement.cluster "eu-1" is not one of the clusters tenant acme may use (a, b) (tenant.allowedClusters)`,
		}},
		{name: "flows of the effective clusters", objs: []*meshfedv1.Object{flows}, mesh: m, run: "c", in: "a", out: "b", want: []string{
			`spec.functions[0].placement.cluster "c" receives data from input cluster "a", and no flow rule of namespace acme/eu allows a -> c (namespace.flows)`,
			`spec.functions[0].output.cluster "b" receives data from placement cluster "c", and no flow rule of namespace acme/eu allows c -> b (namespace.flows)`,
		}},
		{name: "flows allowed from the fallback", objs: []*meshfedv1.Object{flows}, mesh: m, run: "eu-1", in: "eu-1", out: "b"},
		{name: "grants are AdmitMesh's", mesh: fl, run: "b", in: "b", out: "b"},
		{name: "owner residency on the effective output", objs: []*meshfedv1.Object{euModels}, mesh: fl, run: "us-east", in: "a", out: "us-east", want: []string{
			`spec.functions[0].output.topic "persistent://lab-b/models/updates" on cluster "us-east" is outside residency region=eu of namespace lab-b/models, which owns the topic (namespace.residency)`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewStatic(append(world(), tc.objs...)...)
			got := errLines(AdmitPlacement(tc.mesh, tc.fn, tc.run, tc.in, tc.out, v))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	for _, fn := range []int{-1, 2} {
		err := AdmitPlacement(m, fn, "a", "a", "", NewStatic())
		if err == nil || AsViolations(err) != nil || !strings.Contains(err.Error(), "has no function") {
			t.Errorf("fn %d: %v", fn, err)
		}
	}
}

func TestStaticView(t *testing.T) {
	var zero Static
	if zero.Tenant("x") != nil || zero.Namespace("x", "y") != nil || zero.Cluster("x") != nil || zero.Grants("x", "y") != nil || zero.Meshes("x", "y") != nil {
		t.Error("zero Static is not empty")
	}
	if err := AdmitMesh(flMesh(), &zero); err == nil {
		t.Error("an empty state admitted a cross-tenant write")
	}
	a := testkit.MeshOf("t", "n", "m", fnSpec("f", "a", nil, "", ""))
	b := testkit.MeshOf("t", "n", "m", fnSpec("g", "a", nil, "", ""))
	s := NewStatic(objects.Wrap(a), objects.Wrap(b), objects.Wrap(testkit.MeshOf("t", "n", "other")), testkit.Tenant("t"), testkit.Namespace("t", "n", nil), testkit.Cluster("a"), grantObj("t", "n", "g", "u", "v", "produce"),
		&meshfedv1.Object{Kind: &meshfedv1.Object_Agent{Agent: &meshfedv1.Agent{}}})
	if got := s.Meshes("t", "n"); len(got) != 2 || got[0] != b {
		t.Errorf("meshes: later object must replace the earlier of its name: %v", got)
	}
	if s.Tenant("t") == nil || s.Namespace("t", "n") == nil || s.Cluster("a") == nil || len(s.Grants("t", "n")) != 1 {
		t.Error("objects missing from Static")
	}
}
