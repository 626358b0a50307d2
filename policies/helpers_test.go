package policies

import (
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Test objects come from testkit's builders; fnSpec and with shape the
// functions the policies check.

func grantObj(tenant, ns, name, granteeTenant, granteeNS string, actions ...string) *meshfedv1.Object {
	return &meshfedv1.Object{Kind: &meshfedv1.Object_Grant{Grant: &meshfedv1.Grant{
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Namespace: ns, Name: name},
		Spec: &meshfedv1.GrantSpec{
			Grantee: &meshfedv1.GrantSubject{Tenant: granteeTenant, Namespace: granteeNS},
			Actions: actions,
		},
	}}}
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
