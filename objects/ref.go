package objects

import meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"

// Ref names one object: its kind and the metadata fields that name it.
// Fields the kind's scope does not use are empty.
type Ref struct {
	// Kind is the canonical kind name (KindFunctionMesh, ...).
	Kind string
	// Tenant is empty for global kinds.
	Tenant string
	// Namespace is empty for global and tenant kinds.
	Namespace string
	Name      string
}

// RefOf returns the reference of an object; false for an empty Object.
func RefOf(o *meshfedv1.Object) (Ref, bool) {
	k, md := KindOf(o), Meta(o)
	if k == nil || md == nil {
		return Ref{}, false
	}
	return RefTo(k.Name, md), true
}

// RefTo returns the reference of an object of kind with metadata md.
func RefTo(kind string, md *meshfedv1.ObjectMeta) Ref {
	return Ref{Kind: kind, Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName()}
}

// MeshRef is the reference of FunctionMesh tenant/namespace/name.
func MeshRef(tenant, namespace, name string) Ref {
	return Ref{Kind: KindFunctionMesh, Tenant: tenant, Namespace: namespace, Name: name}
}

// NamespaceRef is the reference of namespace tenant/name.
func NamespaceRef(tenant, name string) Ref {
	return Ref{Kind: KindNamespace, Tenant: tenant, Name: name}
}

// Key is the store key: "Kind/tenant/namespace/name", with empty parts
// kept, as Key builds it.
func (r Ref) Key() string { return Key(r.Kind, r.Tenant, r.Namespace, r.Name) }

// String is the name users see: "name" for a global kind, "tenant/name"
// for a tenant kind, "tenant/namespace/name" for a namespaced kind and for
// a kind this package does not know.
func (r Ref) String() string {
	switch scopeOf(r.Kind) {
	case ScopeGlobal:
		return r.Name
	case ScopeTenant:
		return r.Tenant + "/" + r.Name
	}
	return r.Tenant + "/" + r.Namespace + "/" + r.Name
}

// scopeOf returns the scope of the kind named exactly kind; ScopeNamespace
// for an unknown kind.
func scopeOf(kind string) Scope {
	for _, k := range Kinds {
		if k.Name == kind {
			return k.Scope
		}
	}
	return ScopeNamespace
}
