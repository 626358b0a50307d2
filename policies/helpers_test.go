package policies

import (
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Builders for test objects. They make the objects the way Decode would,
// with only the fields the policies read.

func tenantObj(name string, allowed ...string) *meshfedv1.Object {
	return &meshfedv1.Object{Kind: &meshfedv1.Object_Tenant{Tenant: &meshfedv1.Tenant{
		Metadata: &meshfedv1.ObjectMeta{Name: name},
		Spec:     &meshfedv1.TenantSpec{AllowedClusters: allowed},
	}}}
}

func nsObj(tenant, name string, spec *meshfedv1.NamespaceSpec) *meshfedv1.Object {
	return &meshfedv1.Object{Kind: &meshfedv1.Object_Namespace{Namespace: &meshfedv1.Namespace{
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Name: name},
		Spec:     spec,
	}}}
}

func clusterObj(name string, labels ...string) *meshfedv1.Object {
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return &meshfedv1.Object{Kind: &meshfedv1.Object_Cluster{Cluster: &meshfedv1.Cluster{
		Metadata: &meshfedv1.ObjectMeta{Name: name, Labels: l},
		Spec:     &meshfedv1.ClusterSpec{ServiceUrl: "pulsar://" + name + ":6650"},
	}}}
}

func grantObj(tenant, ns, name, granteeTenant, granteeNS string, actions ...string) *meshfedv1.Object {
	return &meshfedv1.Object{Kind: &meshfedv1.Object_Grant{Grant: &meshfedv1.Grant{
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Namespace: ns, Name: name},
		Spec: &meshfedv1.GrantSpec{
			Grantee: &meshfedv1.GrantSubject{Tenant: granteeTenant, Namespace: granteeNS},
			Actions: actions,
		},
	}}}
}

func meshOf(tenant, ns, name string, fns ...*meshfedv1.FunctionSpec) *meshfedv1.FunctionMesh {
	return &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Namespace: ns, Name: name},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: fns},
	}
}

func meshObj(m *meshfedv1.FunctionMesh) *meshfedv1.Object {
	return &meshfedv1.Object{Kind: &meshfedv1.Object_FunctionMesh{FunctionMesh: m}}
}

// fnSpec is a builtin function reading topics on cluster in and writing
// topic out on cluster outCluster (empty: none).
func fnSpec(name, in string, topics []string, outCluster, out string) *meshfedv1.FunctionSpec {
	f := &meshfedv1.FunctionSpec{
		Name:    name,
		Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "identity"}},
		Input:   &meshfedv1.FunctionInput{Cluster: in, Topics: topics},
	}
	if out != "" {
		f.Output = &meshfedv1.FunctionOutput{Cluster: outCluster, Topic: out}
	}
	return f
}

func with(f *meshfedv1.FunctionSpec, change func(*meshfedv1.FunctionSpec)) *meshfedv1.FunctionSpec {
	change(f)
	return f
}

// errLines returns the Error() of every violation in err, failing on
// anything that is not a Violations.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, v := range AsViolations(err) {
		out = append(out, v.Error())
	}
	if out == nil {
		out = []string{"NOT A VIOLATION: " + err.Error()}
	}
	return out
}
