package testkit

import (
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Builders of the objects tests apply, made the way Decode makes them
// (apiVersion and kind set). Tests change what they need through the typed
// message (objects.Unwrap) or build the message and wrap it themselves.

// Cluster is a cluster named name whose brokers are at pulsar://name:6650,
// labelled with labels given as key, value pairs.
func Cluster(name string, labels ...string) *meshfedv1.Object {
	var l map[string]string
	if len(labels) > 0 {
		l = make(map[string]string, len(labels)/2)
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
	}
	return objects.Wrap(&meshfedv1.Cluster{
		ApiVersion: objects.APIVersion, Kind: objects.KindCluster,
		Metadata: &meshfedv1.ObjectMeta{Name: name, Labels: l},
		Spec:     &meshfedv1.ClusterSpec{ServiceUrl: "pulsar://" + name + ":6650"},
	})
}

// Tenant is a tenant named name allowed to run on allowedClusters (none:
// every cluster).
func Tenant(name string, allowedClusters ...string) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.Tenant{
		ApiVersion: objects.APIVersion, Kind: objects.KindTenant,
		Metadata: &meshfedv1.ObjectMeta{Name: name},
		Spec:     &meshfedv1.TenantSpec{AllowedClusters: allowedClusters},
	})
}

// Namespace is namespace name of tenant with spec (nil: an empty spec).
func Namespace(tenant, name string, spec *meshfedv1.NamespaceSpec) *meshfedv1.Object {
	if spec == nil {
		spec = &meshfedv1.NamespaceSpec{}
	}
	return objects.Wrap(&meshfedv1.Namespace{
		ApiVersion: objects.APIVersion, Kind: objects.KindNamespace,
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Name: name},
		Spec:     spec,
	})
}

// Federation is the smallest federation a mesh runs in: cluster, tenant
// and its namespace ns, in the order an apply creates them.
func Federation(cluster, tenant, ns string) []*meshfedv1.Object {
	return []*meshfedv1.Object{Cluster(cluster), Tenant(tenant), Namespace(tenant, ns, nil)}
}

// MeshOf is the FunctionMesh tenant/ns/name running fns, unwrapped, for
// tests that change it before wrapping it with objects.Wrap.
func MeshOf(tenant, ns, name string, fns ...*meshfedv1.FunctionSpec) *meshfedv1.FunctionMesh {
	return &meshfedv1.FunctionMesh{
		ApiVersion: objects.APIVersion, Kind: objects.KindFunctionMesh,
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Namespace: ns, Name: name},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: fns},
	}
}

// Mesh is MeshOf wrapped into an Object.
func Mesh(tenant, ns, name string, fns ...*meshfedv1.FunctionSpec) *meshfedv1.Object {
	return objects.Wrap(MeshOf(tenant, ns, name, fns...))
}

// Builtin is a function running builtin (identity, wordcount, ...) that
// reads inTopic on inCluster and, when outTopic is set, writes outTopic on
// outCluster.
func Builtin(name, builtin, inCluster, inTopic, outCluster, outTopic string) *meshfedv1.FunctionSpec {
	f := &meshfedv1.FunctionSpec{
		Name:    name,
		Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: builtin}},
		Input:   &meshfedv1.FunctionInput{Cluster: inCluster, Topics: []string{inTopic}},
	}
	if outTopic != "" {
		f.Output = &meshfedv1.FunctionOutput{Cluster: outCluster, Topic: outTopic}
	}
	return f
}
