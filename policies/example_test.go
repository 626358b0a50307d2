package policies

import (
	"os"
	"slices"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func decodeFile(t *testing.T, path string) []*meshfedv1.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := objects.Decode(path, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.Check(path, objs, nil); err != nil {
		t.Fatal(err)
	}
	return objs
}

// without returns objs less the object of one kind and name.
func without(objs []*meshfedv1.Object, kind, name string) []*meshfedv1.Object {
	var out []*meshfedv1.Object
	for _, o := range objs {
		if k := objects.KindOf(o); k != nil && k.Name == kind && objects.Meta(o).GetName() == name {
			continue
		}
		out = append(out, o)
	}
	return out
}

func meshesIn(objs []*meshfedv1.Object) []*meshfedv1.FunctionMesh {
	var out []*meshfedv1.FunctionMesh
	for _, o := range objs {
		if m := o.GetFunctionMesh(); m != nil {
			out = append(out, m)
		}
	}
	return out
}

// TestFederatedLearningDoc runs the example of docs/policies.md.
func TestFederatedLearningDoc(t *testing.T) {
	objs := decodeFile(t, "testdata/federated-learning.yaml")
	train := meshesIn(objs)[0]
	if err := AdmitMesh(train, NewStatic(objs...)); err != nil {
		t.Fatalf("with the grant: %v", err)
	}
	refused := `spec.functions[0].output.topic "persistent://lab-b/models/updates" is in tenant lab-b: no Grant in lab-b/models lets hospital-a/training produce (grant.produce)`
	noGrant := NewStatic(without(objs, objects.KindGrant, "hospital-a-updates")...)
	if got := errLines(AdmitMesh(train, noGrant)); !slices.Equal(got, []string{refused}) {
		t.Errorf("without the grant: %q", got)
	}
	if got := errLines(Recheck(train, noGrant)); !slices.Equal(got, []string{refused}) {
		t.Errorf("grant revoked: %q", got)
	}
	v := NewStatic(objs...)
	if err := AdmitPlacement(train, 0, "b", "b", "b", v); err != nil {
		t.Errorf("failover to b: %v", err)
	}
	// A move to c (region=us) breaks residency and the flow rules.
	got := errLines(AdmitPlacement(train, 0, "c", "c", "b", v))
	want := []string{
		`spec.functions[0].input.cluster "c" is outside residency region=eu of namespace hospital-a/training (namespace.residency)`,
		`spec.functions[0].output.cluster "b" receives data from placement cluster "c", and no flow rule of namespace hospital-a/training allows c -> b (namespace.flows)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("failover to c:\n got %q\nwant %q", got, want)
	}
}

// TestExampleFiles admits every mesh of the repository's examples against
// the objects of its own file: the examples keep their own policies.
func TestExampleFiles(t *testing.T) {
	for _, path := range []string{"../examples/federated-learning.yaml", "../examples/word-count.yaml"} {
		objs := decodeFile(t, path)
		v := NewStatic(objs...)
		for _, m := range meshesIn(objs) {
			if err := AdmitMesh(m, v); err != nil {
				t.Errorf("%s: mesh %s: %v", path, m.GetMetadata().GetName(), err)
			}
		}
	}
	objs := decodeFile(t, "../examples/federated-learning.yaml")
	v := NewStatic(without(objs, objects.KindGrant, "hospital-updates")...)
	want := []string{`spec.functions[0].output.topic "persistent://research/models/updates" is in tenant research: no Grant in research/models lets hospital/training produce (grant.produce)`}
	if got := errLines(AdmitMesh(meshesIn(objs)[0], v)); !slices.Equal(got, want) {
		t.Errorf("examples/federated-learning.yaml without its grant: %q", got)
	}
}
