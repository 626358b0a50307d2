package policies

import (
	"errors"
	"os"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/meshfed/meshfed/objects"
)

// FuzzAdmitDocuments fuzzes policy documents as users write them: a YAML
// file of clusters, tenants, namespaces, grants and meshes is decoded, and
// every mesh in it is admitted against the file's objects, whether or not
// objects.Validate accepts them.
func FuzzAdmitDocuments(f *testing.F) {
	for _, path := range []string{"testdata/federated-learning.yaml", "../examples/federated-learning.yaml"} {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(string(data))
		}
	}
	f.Fuzz(func(t *testing.T, doc string) {
		objs, err := objects.Decode("fuzz.yaml", []byte(doc))
		if err != nil {
			return
		}
		v := NewStatic(objs...)
		for _, m := range meshesIn(objs) {
			err := AdmitMesh(m, v)
			got := errLines(err)
			if again := errLines(AdmitMesh(m, reversed{v})); !slices.Equal(got, again) {
				t.Fatalf("not deterministic:\n%q\n%q", got, again)
			}
			for _, vi := range AsViolations(err) {
				if vi.Code != vi.Rule.Code() || vi.Path == "" || !utf8.ValidString(vi.Error()) || len(vi.Reason) > maxReason {
					t.Fatalf("malformed violation %#v", vi)
				}
			}
			for i := range m.GetSpec().GetFunctions() {
				for _, c := range m.GetSpec().GetFunctions()[i].GetFailover().GetClusters() {
					if err := AdmitPlacement(m, i, c, c, "", v); err != nil && AsViolations(err) == nil {
						t.Fatalf("AdmitPlacement error that is no violation: %v", err)
					}
				}
			}
		}
	})
}

// FuzzAuthorize checks role invariants over arbitrary principals and scopes.
func FuzzAuthorize(f *testing.F) {
	f.Add("alice", "tenant-admin", "t1", "", "", "functionmesh.write", "t1", "n1")
	f.Add("dan", "namespace-developer", "t1", "n1", "", "functionmesh.read", "t1", "n2")
	f.Add("a1", "agent", "", "", "a", "agent.call", "", "")
	f.Add("v", "viewer", "", "", "", "audit.read", "", "")
	f.Fuzz(func(t *testing.T, name, role, pt, pn, cluster, action, tenant, ns string) {
		p := Principal{Name: name, Role: Role(role), Tenant: pt, Namespace: pn, Cluster: cluster}
		a := Action(action)
		err := Authorize(p, a, tenant, ns)
		if err != nil {
			var d *Denied
			if !errors.As(err, &d) || !errors.Is(err, ErrPermissionDenied) || !utf8.ValidString(err.Error()) {
				t.Fatalf("refusal %v is not a *Denied", err)
			}
		}
		if (err == nil) != (Authorize(p, a, tenant, ns) == nil) {
			t.Fatal("not deterministic")
		}
		known := slices.Contains(Actions(), a)
		switch {
		case err == nil && (!known || p.Validate() != nil):
			t.Fatalf("allowed %s to %+v (known action %v, principal %v)", a, p, known, p.Validate())
		case err == nil && p.Role == RoleViewer && a != ActionPackageGet && a != ActionReadCluster && !slices.Contains([]Action{
			ActionReadTenant, ActionReadNamespace, ActionReadGrant, ActionReadMesh, ActionReadAgent, ActionReadAssignment, ActionOperatorRead, ActionAuditRead}, a):
			t.Fatalf("a viewer may %s", a)
		case err == nil && p.Role != RoleSuperuser && p.Role != RoleViewer && p.Role != RoleAgent && pt != tenant && a != ActionReadCluster &&
			a != ActionPackageGet && a != ActionPackagePush:
			t.Fatalf("%+v acted in tenant %q", p, tenant)
		case err != nil && p.Role == RoleSuperuser && known && a != ActionAgentCall:
			t.Fatalf("superuser refused %s: %v", a, err)
		}
		if AuthorizeAgent(p, cluster) == nil && (p.Role != RoleAgent || p.Cluster != cluster || cluster == "") {
			t.Fatalf("%+v acts for cluster %q", p, cluster)
		}
	})
}
