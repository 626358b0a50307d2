package controlplane

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestListAndWatchSeveralKindsInOneRequest(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	ctx := testCtx(t)
	mustApply(t, c, clusterObj("a"), tenantObj("t"))
	resp, err := c.List(ctx, &meshfedv1.ListRequest{Kinds: []string{"clusters", "Tenant", "Cluster"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetObjects()) != 2 || resp.GetObjects()[0].GetCluster() == nil || resp.GetObjects()[1].GetTenant() == nil {
		t.Fatalf("list of clusters and tenants: %v", resp.GetObjects())
	}
	for _, req := range []*meshfedv1.ListRequest{{}, {Kinds: []string{"Cluster", "Bogus"}}, {Kind: "Cluster", Kinds: []string{"Namespace"}, Namespace: "x"}} {
		if _, err := c.List(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("list %v: %v, want InvalidArgument", req, err)
		}
	}
	stream, err := c.Watch(ctx, &meshfedv1.WatchRequest{Kinds: []string{"Tenant", "Namespace"}, StartRevision: resp.GetRevision()})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, c, clusterObj("b"))
	mustApply(t, c, objects.Wrap(&meshfedv1.Namespace{ApiVersion: objects.APIVersion, Kind: "Namespace", Metadata: &meshfedv1.ObjectMeta{Name: "ns", Tenant: "t"}}))
	got := collect(t, stream, 1)
	if got[0].GetObject().GetNamespace() == nil {
		t.Fatalf("watch of tenants and namespaces got %v first", got[0].GetObject())
	}
}
