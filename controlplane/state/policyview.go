package state

import (
	"fmt"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
)

// txnView is a policies.View over an object tree: a write transaction's or
// a published one.
type txnView struct{ objs *objTree }

var _ policies.View = txnView{}

func (v txnView) get(kind, tenant, namespace, name string) *meshfedv1.Object {
	if e := objGet(v.objs, objects.Key(kind, tenant, namespace, name)); e != nil {
		return e.Obj
	}
	return nil
}

func (v txnView) list(kind, tenant, namespace string) []*meshfedv1.Object {
	var out []*meshfedv1.Object
	objScan(v.objs, kind+"/"+tenant+"/"+namespace+"/", func(e *entry) bool {
		out = append(out, e.Obj)
		return true
	})
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
func (s *Store) PolicyView() policies.View { return txnView{s.pub.Load().objs} }

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
