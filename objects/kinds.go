package objects

import (
	"fmt"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// APIVersion is the apiVersion every object carries.
const APIVersion = "meshfed.io/v1"

// The canonical kind names, as written in `kind:` and in store keys.
const (
	KindCluster      = "Cluster"
	KindTenant       = "Tenant"
	KindNamespace    = "Namespace"
	KindGrant        = "Grant"
	KindFunctionMesh = "FunctionMesh"
	KindAgent        = "Agent"
	KindAssignment   = "Assignment"
)

// Scope says which metadata fields name an object.
type Scope int

const (
	// ScopeGlobal kinds are named by metadata.name alone.
	ScopeGlobal Scope = iota
	// ScopeTenant kinds are named by metadata.tenant and metadata.name.
	ScopeTenant
	// ScopeNamespace kinds are named by tenant, namespace and name.
	ScopeNamespace
)

// Kind describes one object kind.
type Kind struct {
	// Name is the canonical kind, as written in `kind:`.
	Name string
	// Plural is the lower-case plural used by the CLI ("functionmeshes").
	Plural string
	// Aliases are other names the CLI accepts, lower case.
	Aliases []string
	Scope   Scope
	// System kinds are written only by the control plane, never applied by users.
	System bool
	// wrap puts a message of this kind into an Object.
	wrap func(proto.Message) *meshfedv1.Object
	// newMsg returns an empty message of this kind.
	newMsg func() proto.Message
}

// New returns an empty message of the kind.
func (k *Kind) New() proto.Message { return k.newMsg() }

// Kinds lists every kind, in the order objects of a multi-kind apply are
// best created (referenced kinds first).
var Kinds = []*Kind{
	{Name: KindCluster, Plural: "clusters", Aliases: []string{"cluster", "cl"}, Scope: ScopeGlobal,
		newMsg: func() proto.Message { return &meshfedv1.Cluster{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_Cluster{Cluster: m.(*meshfedv1.Cluster)}}
		}},
	{Name: KindTenant, Plural: "tenants", Aliases: []string{"tenant"}, Scope: ScopeGlobal,
		newMsg: func() proto.Message { return &meshfedv1.Tenant{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_Tenant{Tenant: m.(*meshfedv1.Tenant)}}
		}},
	{Name: KindNamespace, Plural: "namespaces", Aliases: []string{"namespace", "ns"}, Scope: ScopeTenant,
		newMsg: func() proto.Message { return &meshfedv1.Namespace{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_Namespace{Namespace: m.(*meshfedv1.Namespace)}}
		}},
	{Name: KindGrant, Plural: "grants", Aliases: []string{"grant"}, Scope: ScopeNamespace,
		newMsg: func() proto.Message { return &meshfedv1.Grant{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_Grant{Grant: m.(*meshfedv1.Grant)}}
		}},
	{Name: KindFunctionMesh, Plural: "functionmeshes", Aliases: []string{"functionmesh", "mesh", "meshes", "fm"}, Scope: ScopeNamespace,
		newMsg: func() proto.Message { return &meshfedv1.FunctionMesh{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_FunctionMesh{FunctionMesh: m.(*meshfedv1.FunctionMesh)}}
		}},
	{Name: KindAgent, Plural: "agents", Aliases: []string{"agent"}, Scope: ScopeGlobal, System: true,
		newMsg: func() proto.Message { return &meshfedv1.Agent{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_Agent{Agent: m.(*meshfedv1.Agent)}}
		}},
	{Name: KindAssignment, Plural: "assignments", Aliases: []string{"assignment", "asg"}, Scope: ScopeNamespace, System: true,
		newMsg: func() proto.Message { return &meshfedv1.Assignment{} },
		wrap: func(m proto.Message) *meshfedv1.Object {
			return &meshfedv1.Object{Kind: &meshfedv1.Object_Assignment{Assignment: m.(*meshfedv1.Assignment)}}
		}},
}

// LookupKind finds a kind by its canonical name, plural or alias, ignoring case.
func LookupKind(name string) (*Kind, error) {
	n := strings.ToLower(name)
	for _, k := range Kinds {
		if strings.ToLower(k.Name) == n || k.Plural == n {
			return k, nil
		}
		for _, a := range k.Aliases {
			if a == n {
				return k, nil
			}
		}
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = k.Name
	}
	return nil, fmt.Errorf("unknown kind %q (known kinds: %s)", name, strings.Join(names, ", "))
}

// Wrap puts a typed message (*meshfedv1.Cluster, ...) into an Object.
// It panics on a message that is not one of the kinds: that is a programming error.
func Wrap(m proto.Message) *meshfedv1.Object {
	for _, k := range Kinds {
		if k.newMsg().ProtoReflect().Descriptor() == m.ProtoReflect().Descriptor() {
			return k.wrap(m)
		}
	}
	panic(fmt.Sprintf("objects.Wrap: %T is not an object kind", m))
}

// Unwrap returns the typed message inside an Object, or nil if it is empty.
func Unwrap(o *meshfedv1.Object) proto.Message {
	switch v := o.GetKind().(type) {
	case *meshfedv1.Object_Cluster:
		return v.Cluster
	case *meshfedv1.Object_Tenant:
		return v.Tenant
	case *meshfedv1.Object_Namespace:
		return v.Namespace
	case *meshfedv1.Object_Grant:
		return v.Grant
	case *meshfedv1.Object_FunctionMesh:
		return v.FunctionMesh
	case *meshfedv1.Object_Agent:
		return v.Agent
	case *meshfedv1.Object_Assignment:
		return v.Assignment
	}
	return nil
}

// KindOf returns the kind of an Object, or nil if the Object is empty.
func KindOf(o *meshfedv1.Object) *Kind {
	m := Unwrap(o)
	if m == nil {
		return nil
	}
	d := m.ProtoReflect().Descriptor()
	for _, k := range Kinds {
		if k.newMsg().ProtoReflect().Descriptor() == d {
			return k
		}
	}
	return nil
}

// metaHolder is implemented by every generated kind message.
type metaHolder interface {
	GetMetadata() *meshfedv1.ObjectMeta
}

// Meta returns the object's metadata, creating an empty one if it is missing.
// It returns nil only for an empty Object.
func Meta(o *meshfedv1.Object) *meshfedv1.ObjectMeta {
	m := Unwrap(o)
	if m == nil {
		return nil
	}
	if md := m.(metaHolder).GetMetadata(); md != nil {
		return md
	}
	fd := m.ProtoReflect().Descriptor().Fields().ByName("metadata")
	md := &meshfedv1.ObjectMeta{}
	m.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(md.ProtoReflect()))
	return md
}

// Key is the store key of an object: kind, then its scope path. Ref.Key
// gives the same for a reference.
func Key(kind, tenant, namespace, name string) string {
	return kind + "/" + tenant + "/" + namespace + "/" + name
}

// KeyOf returns the store key of an object, or "" for an empty Object.
func KeyOf(o *meshfedv1.Object) string {
	r, ok := RefOf(o)
	if !ok {
		return ""
	}
	return r.Key()
}

// DisplayName is the name users see: "name", "tenant/name" or
// "tenant/namespace/name" depending on the scope; "" for an empty Object.
func DisplayName(o *meshfedv1.Object) string {
	r, ok := RefOf(o)
	if !ok {
		return ""
	}
	return r.String()
}
