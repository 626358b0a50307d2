package policies

import (
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// View is the read-only state the decisions look at. The control plane
// implements it over its state store (one consistent read transaction per
// decision); `meshfed policy check` can use Static over the objects of a
// file plus what it read from the server. Every method returns nil when the
// object does not exist, and must not be changed by the caller.
type View interface {
	// Tenant returns the tenant named name.
	Tenant(name string) *meshfedv1.Tenant
	// Namespace returns namespace ns of tenant.
	Namespace(tenant, ns string) *meshfedv1.Namespace
	// Cluster returns the cluster named name.
	Cluster(name string) *meshfedv1.Cluster
	// Grants returns the grants that live in namespace ns of tenant (those
	// letting other tenants' namespaces use its topics), in any order.
	Grants(tenant, ns string) []*meshfedv1.Grant
	// Meshes returns the stored meshes of namespace ns of tenant, in any
	// order. Admission counts quotas as if the mesh being admitted replaced
	// the stored mesh of the same name.
	Meshes(tenant, ns string) []*meshfedv1.FunctionMesh
}

// Static is a View over a fixed list of objects, for tools and tests. Build
// it with NewStatic; the zero value is an empty state.
type Static struct {
	tenants    map[string]*meshfedv1.Tenant
	namespaces map[[2]string]*meshfedv1.Namespace
	clusters   map[string]*meshfedv1.Cluster
	grants     map[[2]string][]*meshfedv1.Grant
	meshes     map[[2]string][]*meshfedv1.FunctionMesh
}

var _ View = (*Static)(nil)

// NewStatic returns a View of objs. Kinds the policies do not read (agents,
// assignments) are ignored; of two objects with one key the later wins for
// tenants, namespaces, clusters and meshes.
func NewStatic(objs ...*meshfedv1.Object) *Static {
	s := &Static{
		tenants:    map[string]*meshfedv1.Tenant{},
		namespaces: map[[2]string]*meshfedv1.Namespace{},
		clusters:   map[string]*meshfedv1.Cluster{},
		grants:     map[[2]string][]*meshfedv1.Grant{},
		meshes:     map[[2]string][]*meshfedv1.FunctionMesh{},
	}
	for _, o := range objs {
		switch k := o.GetKind().(type) {
		case *meshfedv1.Object_Tenant:
			s.tenants[k.Tenant.GetMetadata().GetName()] = k.Tenant
		case *meshfedv1.Object_Namespace:
			md := k.Namespace.GetMetadata()
			s.namespaces[[2]string{md.GetTenant(), md.GetName()}] = k.Namespace
		case *meshfedv1.Object_Cluster:
			s.clusters[k.Cluster.GetMetadata().GetName()] = k.Cluster
		case *meshfedv1.Object_Grant:
			md := k.Grant.GetMetadata()
			key := [2]string{md.GetTenant(), md.GetNamespace()}
			s.grants[key] = append(s.grants[key], k.Grant)
		case *meshfedv1.Object_FunctionMesh:
			md := k.FunctionMesh.GetMetadata()
			key := [2]string{md.GetTenant(), md.GetNamespace()}
			list := s.meshes[key]
			replaced := false
			for i, m := range list {
				if m.GetMetadata().GetName() == md.GetName() {
					list[i], replaced = k.FunctionMesh, true
				}
			}
			if !replaced {
				list = append(list, k.FunctionMesh)
			}
			s.meshes[key] = list
		}
	}
	return s
}

// Tenant implements View.
func (s *Static) Tenant(name string) *meshfedv1.Tenant { return s.tenants[name] }

// Namespace implements View.
func (s *Static) Namespace(tenant, ns string) *meshfedv1.Namespace {
	return s.namespaces[[2]string{tenant, ns}]
}

// Cluster implements View.
func (s *Static) Cluster(name string) *meshfedv1.Cluster { return s.clusters[name] }

// Grants implements View.
func (s *Static) Grants(tenant, ns string) []*meshfedv1.Grant {
	return s.grants[[2]string{tenant, ns}]
}

// Meshes implements View.
func (s *Static) Meshes(tenant, ns string) []*meshfedv1.FunctionMesh {
	return s.meshes[[2]string{tenant, ns}]
}
