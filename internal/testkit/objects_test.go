package testkit

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// TestBuildersMakeValidObjects checks each builder's object passes the
// validation a user's apply does, so tests start from valid objects.
func TestBuildersMakeValidObjects(t *testing.T) {
	cases := []struct {
		obj           *meshfedv1.Object
		kind, display string
	}{
		{Cluster("eu", "region", "eu"), objects.KindCluster, "eu"},
		{Tenant("acme", "eu"), objects.KindTenant, "acme"},
		{Namespace("acme", "prod", nil), objects.KindNamespace, "acme/prod"},
		{Mesh("acme", "prod", "m", Builtin("f", "identity", "eu", "in", "eu", "out")), objects.KindFunctionMesh, "acme/prod/m"},
	}
	for _, c := range cases {
		r, ok := objects.RefOf(c.obj)
		if !ok || r.Kind != c.kind || r.String() != c.display {
			t.Errorf("built %+v (ok %v), want a %s named %q", r, ok, c.kind, c.display)
			continue
		}
		if err := objects.Validate(c.obj); err != nil {
			t.Errorf("%s %s: %v", c.kind, c.display, err)
		}
	}
	if l := objects.Unwrap(Cluster("eu", "region", "eu", "tier")).(*meshfedv1.Cluster).GetMetadata().GetLabels(); len(l) != 1 || l["region"] != "eu" {
		t.Errorf("labels %v, want region=eu only (an odd trailing key is dropped)", l)
	}
}
