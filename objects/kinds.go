package objects

import (
	"fmt"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
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
	// msg is the message type of this kind.
	msg protoreflect.MessageType
}

// New returns an empty message of the kind.
func (k *Kind) New() proto.Message { return k.msg.New().Interface() }

// newKind describes the kind held in the field of Object's oneof kind
// named field.
func newKind(name, plural string, scope Scope, system bool, field protoreflect.Name, aliases ...string) *Kind {
	fd := (&meshfedv1.Object{}).ProtoReflect().Descriptor().Oneofs().ByName("kind").Fields().ByName(field)
	if fd == nil {
		panic("objects: Object has no kind field " + string(field))
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(fd.Message().FullName())
	if err != nil {
		panic("objects: kind " + name + ": " + err.Error())
	}
	return &Kind{Name: name, Plural: plural, Aliases: aliases, Scope: scope, System: system, msg: mt}
}

// Kinds lists every kind, in the order objects of a multi-kind apply are
// best created (referenced kinds first).
var Kinds = []*Kind{
	newKind(KindCluster, "clusters", ScopeGlobal, false, "cluster", "cluster", "cl"),
	newKind(KindTenant, "tenants", ScopeGlobal, false, "tenant", "tenant"),
	newKind(KindNamespace, "namespaces", ScopeTenant, false, "namespace", "namespace", "ns"),
	newKind(KindGrant, "grants", ScopeNamespace, false, "grant", "grant"),
	newKind(KindFunctionMesh, "functionmeshes", ScopeNamespace, false, "function_mesh", "functionmesh", "mesh", "meshes", "fm"),
	newKind(KindAgent, "agents", ScopeGlobal, true, "agent", "agent"),
	newKind(KindAssignment, "assignments", ScopeNamespace, true, "assignment", "assignment", "asg"),
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
	switch m := m.(type) {
	case *meshfedv1.Cluster:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_Cluster{Cluster: m}}
	case *meshfedv1.Tenant:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_Tenant{Tenant: m}}
	case *meshfedv1.Namespace:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_Namespace{Namespace: m}}
	case *meshfedv1.Grant:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_Grant{Grant: m}}
	case *meshfedv1.FunctionMesh:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_FunctionMesh{FunctionMesh: m}}
	case *meshfedv1.Agent:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_Agent{Agent: m}}
	case *meshfedv1.Assignment:
		return &meshfedv1.Object{Kind: &meshfedv1.Object_Assignment{Assignment: m}}
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
		if k.msg.Descriptor() == d {
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
