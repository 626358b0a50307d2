package controlplane

import (
	"fmt"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClusterWritesThroughFollowers(t *testing.T) {
	servers := TestCluster(t, 3)
	leader := WaitForLeader(t, servers...)
	for i, s := range servers {
		if s == leader {
			continue
		}
		c, _ := TestClient(t, s.GRPCAddr())
		resp := mustApply(t, c, clusterObj(fmt.Sprintf("c%d", i)))
		if resp.GetResults()[0] != "created" || resp.GetRevision() == 0 {
			t.Fatalf("apply through follower %s: %v", s.NodeID(), resp)
		}
		// A linearizable read through the same follower sees the write.
		got, err := c.Get(testCtx(t), &meshfedv1.GetRequest{Kind: "Cluster", Name: fmt.Sprintf("c%d", i)})
		if err != nil {
			t.Fatalf("get through follower: %v", err)
		}
		if rv := objects.Meta(got.GetObject()).GetResourceVersion(); rv != resp.GetRevision() {
			t.Fatalf("resourceVersion %d, want %d", rv, resp.GetRevision())
		}
	}
	// Every node converges on the same state.
	WaitFor(t, 5*time.Second, func() error {
		for _, s := range servers {
			objs, _, _ := s.State().List(stateFilter("Cluster"))
			if len(objs) != 2 {
				return fmt.Errorf("%s has %d clusters", s.NodeID(), len(objs))
			}
		}
		return nil
	})
}

func TestClusterLeaderKillElectsNewLeaderAndWritesResume(t *testing.T) {
	servers := TestCluster(t, 3)
	leader := WaitForLeader(t, servers...)
	rest := followers(leader, servers)
	c, _ := TestClient(t, rest[0].GRPCAddr())
	mustApply(t, c, clusterObj("before"))
	if err := leader.Shutdown(); err != nil {
		t.Fatalf("shutdown leader: %v", err)
	}
	next := WaitForLeader(t, rest...)
	if next == leader {
		t.Fatal("old leader still leads")
	}
	for _, s := range rest {
		c, _ := TestClient(t, s.GRPCAddr())
		WaitFor(t, 10*time.Second, func() error {
			_, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj("after-" + s.NodeID())}})
			return err
		})
	}
	objs, _, _ := next.State().List(stateFilter("Cluster"))
	if len(objs) != 3 {
		t.Fatalf("new leader has %d clusters, want 3", len(objs))
	}
}

func TestApplyConflictAndAtomicity(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	first := mustApply(t, c, tenantObj("a"))
	rv := objects.Meta(first.GetObjects()[0]).GetResourceVersion()

	// A stale resourceVersion is refused with Aborted.
	stale := tenantObj("a")
	objects.Meta(stale).ResourceVersion = rv + 100
	_, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{stale}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("stale apply: got %v, want Aborted", err)
	}
	// The matching resourceVersion succeeds.
	ok := tenantObj("a")
	objects.Meta(ok).ResourceVersion = rv
	objects.Meta(ok).Labels = map[string]string{"tier": "gold"}
	resp := mustApply(t, c, ok)
	if resp.GetResults()[0] != "configured" || objects.Meta(resp.GetObjects()[0]).GetGeneration() != 2 {
		t.Fatalf("CAS apply: %v", resp)
	}
	// Re-applying the same object changes nothing.
	again := mustApply(t, c, tenantObj("b"))
	if r := mustApply(t, c, tenantObj("b")); r.GetResults()[0] != "unchanged" ||
		objects.Meta(r.GetObjects()[0]).GetResourceVersion() != objects.Meta(again.GetObjects()[0]).GetResourceVersion() {
		t.Fatalf("idempotent apply: %v", r)
	}
	// A batch with one conflicting object writes nothing.
	bad := tenantObj("a")
	objects.Meta(bad).ResourceVersion = 1
	before := s.State().Revision()
	_, err = c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj("new1"), tenantObj("t1"), bad}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("batch with conflict: got %v, want Aborted", err)
	}
	if _, _, err := s.State().Get("Cluster", "", "", "new1"); err == nil {
		t.Fatal("half-applied batch: new1 exists")
	}
	if s.State().Revision() < before {
		t.Fatal("revision went backwards")
	}
	// Dry run validates and reports without writing.
	dr, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj("dry")}, DryRun: true})
	if err != nil || dr.GetResults()[0] != "created" {
		t.Fatalf("dry run: %v %v", dr, err)
	}
	if _, _, err := s.State().Get("Cluster", "", "", "dry"); err == nil {
		t.Fatal("dry run wrote the object")
	}
}

func TestDeleteRefusesToOrphan(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	ns := objects.Wrap(&meshfedv1.Namespace{Metadata: &meshfedv1.ObjectMeta{Name: "default", Tenant: "public"}, Spec: &meshfedv1.NamespaceSpec{}})
	mustApply(t, c, tenantObj("public"), ns)
	_, err := c.Delete(testCtx(t), &meshfedv1.DeleteRequest{Kind: "tenant", Name: "public"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("delete tenant with namespace: got %v, want FailedPrecondition", err)
	}
	if _, err := c.Delete(testCtx(t), &meshfedv1.DeleteRequest{Kind: "ns", Tenant: "public", Name: "default"}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	if _, err := c.Delete(testCtx(t), &meshfedv1.DeleteRequest{Kind: "tenant", Name: "public"}); err != nil {
		t.Fatalf("delete tenant: %v", err)
	}
	_, err = c.Get(testCtx(t), &meshfedv1.GetRequest{Kind: "tenant", Name: "public"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("get deleted: got %v, want NotFound", err)
	}
}

func TestApplyRejectsInvalidWithFieldPath(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	bad := clusterObj("Bad_Name")
	_, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj("ok"), bad}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	if msg := status.Convert(err).Message(); !contains(msg, "doc 2") || !contains(msg, "metadata.name") {
		t.Fatalf("error does not name the object and field: %q", msg)
	}
	if _, _, err := s.State().Get("Cluster", "", "", "ok"); err == nil {
		t.Fatal("half-applied: ok exists")
	}
}
