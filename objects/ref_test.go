package objects

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func TestRefStringAndKeyMatchDisplayNameAndKey(t *testing.T) {
	md := func(tenant, ns, name string) *meshfedv1.ObjectMeta {
		return &meshfedv1.ObjectMeta{Tenant: tenant, Namespace: ns, Name: name}
	}
	cases := []struct {
		obj     *meshfedv1.Object
		kind    string
		display string
		key     string
	}{
		{Wrap(&meshfedv1.Cluster{Metadata: md("", "", "eu")}), KindCluster, "eu", "Cluster///eu"},
		{Wrap(&meshfedv1.Tenant{Metadata: md("", "", "acme")}), KindTenant, "acme", "Tenant///acme"},
		{Wrap(&meshfedv1.Namespace{Metadata: md("acme", "", "prod")}), KindNamespace, "acme/prod", "Namespace/acme//prod"},
		{Wrap(&meshfedv1.Grant{Metadata: md("acme", "prod", "g")}), KindGrant, "acme/prod/g", "Grant/acme/prod/g"},
		{Wrap(&meshfedv1.FunctionMesh{Metadata: md("acme", "prod", "m")}), KindFunctionMesh, "acme/prod/m", "FunctionMesh/acme/prod/m"},
		{Wrap(&meshfedv1.Agent{Metadata: md("", "", "a1")}), KindAgent, "a1", "Agent///a1"},
		{Wrap(&meshfedv1.Assignment{Metadata: md("acme", "prod", "m-f-0")}), KindAssignment, "acme/prod/m-f-0", "Assignment/acme/prod/m-f-0"},
	}
	for _, c := range cases {
		r, ok := RefOf(c.obj)
		if !ok {
			t.Fatalf("RefOf(%s): not ok", c.kind)
		}
		if r.Kind != c.kind || r.String() != c.display || r.Key() != c.key {
			t.Errorf("RefOf(%s) = %+v: String %q Key %q, want kind %q, %q, %q", c.kind, r, r.String(), r.Key(), c.kind, c.display, c.key)
		}
		if got := DisplayName(c.obj); got != c.display {
			t.Errorf("DisplayName(%s) = %q, want %q", c.kind, got, c.display)
		}
		if got := KeyOf(c.obj); got != c.key {
			t.Errorf("KeyOf(%s) = %q, want %q", c.kind, got, c.key)
		}
	}
	if _, ok := RefOf(&meshfedv1.Object{}); ok {
		t.Error("RefOf(empty Object) ok, want not ok")
	}
	if got := MeshRef("t", "n", "m").String(); got != "t/n/m" {
		t.Errorf("MeshRef String = %q, want t/n/m", got)
	}
	if got := NamespaceRef("t", "n").String(); got != "t/n" {
		t.Errorf("NamespaceRef String = %q, want t/n", got)
	}
	if got := (Ref{Kind: "Unknown", Tenant: "t", Namespace: "n", Name: "x"}).String(); got != "t/n/x" {
		t.Errorf("unknown kind String = %q, want t/n/x", got)
	}
}

func TestKindConstantsNameEveryKind(t *testing.T) {
	consts := []string{KindCluster, KindTenant, KindNamespace, KindGrant, KindFunctionMesh, KindAgent, KindAssignment}
	if len(consts) != len(Kinds) {
		t.Fatalf("%d Kind constants for %d kinds", len(consts), len(Kinds))
	}
	for _, c := range consts {
		k, err := LookupKind(c)
		if err != nil || k.Name != c {
			t.Errorf("LookupKind(%q) = %v, %v; want the kind named %q", c, k, err, c)
		}
	}
}
