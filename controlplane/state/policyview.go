package state

import (
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
)

// txnView is a policies.View over a go-memdb transaction.
type txnView struct{ txn *memdb.Txn }

var _ policies.View = txnView{}

func (v txnView) get(kind, tenant, namespace, name string) *meshfedv1.Object {
	raw, err := v.txn.First(tableObjects, "id", objects.Key(kind, tenant, namespace, name))
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*entry).Obj
}

func (v txnView) list(kind, tenant, namespace string) []*meshfedv1.Object {
	it, err := v.txn.Get(tableObjects, "id_prefix", kind+"/"+tenant+"/"+namespace+"/")
	if err != nil {
		return nil
	}
	var out []*meshfedv1.Object
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*entry).Obj)
	}
	return out
}

func (v txnView) Tenant(name string) *meshfedv1.Tenant {
	return v.get(objects.KindTenant, "", "", name).GetTenant()
}
func (v txnView) Namespace(tenant, ns string) *meshfedv1.Namespace {
	return v.get(objects.KindNamespace, tenant, "", ns).GetNamespace()
}
func (v txnView) Cluster(name string) *meshfedv1.Cluster {
	return v.get(objects.KindCluster, "", "", name).GetCluster()
}
func (v txnView) Grants(tenant, ns string) []*meshfedv1.Grant {
	var out []*meshfedv1.Grant
	for _, o := range v.list(objects.KindGrant, tenant, ns) {
		out = append(out, o.GetGrant())
	}
	return out
}
func (v txnView) Meshes(tenant, ns string) []*meshfedv1.FunctionMesh {
	var out []*meshfedv1.FunctionMesh
	for _, o := range v.list(objects.KindFunctionMesh, tenant, ns) {
		out = append(out, o.GetFunctionMesh())
	}
	return out
}

// admitView is the view admission sees during a write: every object as
// written, except that Meshes reports the meshes being written as they
// were stored before (and leaves out new ones), so quota checks compare
// the write with what it replaces.
type admitView struct {
	txnView
	prior map[string]*meshfedv1.Object
}

func (v admitView) Meshes(tenant, ns string) []*meshfedv1.FunctionMesh {
	var out []*meshfedv1.FunctionMesh
	for _, o := range v.list(objects.KindFunctionMesh, tenant, ns) {
		old, written := v.prior[objects.KeyOf(o)]
		switch {
		case !written:
			out = append(out, o.GetFunctionMesh())
		case old != nil:
			out = append(out, old.GetFunctionMesh())
		}
	}
	return out
}

// PolicyView returns a policies.View of the current state.
func (s *Store) PolicyView() policies.View { return txnView{s.db.Txn(false)} }

// docError prefixes every line of a policy refusal with its document number
// and keeps the refusal matchable (errors.Is finds the policy sentinels).
type docError struct {
	doc int
	err error
}

func (e docError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	for i, l := range lines {
		lines[i] = fmt.Sprintf("doc %d: %s", e.doc, l)
	}
	return strings.Join(lines, "\n")
}

func (e docError) Unwrap() error { return e.err }
