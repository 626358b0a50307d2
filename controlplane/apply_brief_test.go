package controlplane

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// TestApplyBriefAnswersWithoutObjects: a brief apply writes as any other
// and answers with the revision and results, not the stored objects.
func TestApplyBriefAnswersWithoutObjects(t *testing.T) {
	srv := TestServer(t, nil)
	c, _ := TestClient(t, srv.GRPCAddr())
	ctx := testCtx(t)
	resp, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj("a")}, Brief: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetObjects()) != 0 || len(resp.GetResults()) != 1 || resp.GetResults()[0] != "created" || resp.GetRevision() == 0 {
		t.Fatalf("brief answer: %v", resp)
	}
	got, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if rv := objects.Meta(got.GetObject()).GetResourceVersion(); rv != resp.GetRevision() {
		t.Errorf("stored resourceVersion %d, brief answer's revision %d", rv, resp.GetRevision())
	}
	full := mustApply(t, c, clusterObj("b"))
	if len(full.GetObjects()) != 1 {
		t.Errorf("an apply without brief answers with %d objects, want 1", len(full.GetObjects()))
	}
}
