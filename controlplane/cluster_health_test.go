package controlplane

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// TestClusterDegradedByRefusedCredential: an agent's heartbeat reporting a
// refused credential makes its cluster Degraded with the report as the
// reason; a heartbeat without one makes it Healthy again.
func TestClusterDegradedByRefusedCredential(t *testing.T) {
	srv := TestServer(t, nil)
	WaitForLeader(t, srv)
	objs, _ := TestClient(t, srv.GRPCAddr())
	mustApply(t, objs, clusterObj("a"))
	agents := TestAgents(t, srv.GRPCAddr(), &meshfedv1.RegisterRequest{Name: "a1", Cluster: "a", Capacity: 1})
	ctx := testCtx(t)
	refusal := "token from file:///etc/meshfed/a.token: authorization refused by cluster a's broker: server error: AuthorizationError: not authorized"
	waitHealth := func(authErr, want string) {
		t.Helper()
		WaitFor(t, 10*time.Second, func() error {
			if _, err := agents.Heartbeat(ctx, &meshfedv1.HeartbeatRequest{Name: "a1", BrokerReachable: true, BrokerAuthError: authErr}); err != nil {
				return err
			}
			cl, _, err := srv.State().List(state.Filter{Kind: "Cluster"})
			if err != nil || len(cl) != 1 {
				return fmt.Errorf("clusters: %v %v", cl, err)
			}
			st := cl[0].GetCluster().GetStatus()
			if st.GetHealth() != want || (authErr != "" && !strings.Contains(st.GetReason(), authErr)) {
				return fmt.Errorf("cluster a is %s (%s), want %s", st.GetHealth(), st.GetReason(), want)
			}
			return nil
		})
	}
	waitHealth(refusal, federation.Degraded)
	waitHealth("", federation.Healthy)
}

// TestClusterHealthFollowsWritesBetweenPasses: the scheduler judges only
// the clusters written since its last pass or with agents; a cluster
// created, cordoned, uncordoned or given an agent still gets its health.
func TestClusterHealthFollowsWritesBetweenPasses(t *testing.T) {
	srv := TestServer(t, nil)
	WaitForLeader(t, srv)
	objs, _ := TestClient(t, srv.GRPCAddr())
	health := func(name, want string) {
		t.Helper()
		WaitFor(t, 10*time.Second, func() error {
			o, _, err := srv.State().Get("Cluster", "", "", name)
			if err != nil {
				return err
			}
			if got := o.GetCluster().GetStatus().GetHealth(); got != want {
				return fmt.Errorf("cluster %s is %q, want %q", name, got, want)
			}
			return nil
		})
	}
	mustApply(t, objs, clusterObj("a"), clusterObj("b"))
	health("a", federation.Down)
	health("b", federation.Down)
	cordoned := clusterObj("b")
	cordoned.GetCluster().Spec.Cordoned = true
	mustApply(t, objs, cordoned)
	health("b", federation.Cordoned)
	mustApply(t, objs, clusterObj("b"))
	health("b", federation.Down)

	agents := TestAgents(t, srv.GRPCAddr(), &meshfedv1.RegisterRequest{Name: "a1", Cluster: "a", Capacity: 1})
	ctx := testCtx(t)
	WaitFor(t, 10*time.Second, func() error {
		if _, err := agents.Heartbeat(ctx, &meshfedv1.HeartbeatRequest{Name: "a1", BrokerReachable: true}); err != nil {
			return err
		}
		o, _, err := srv.State().Get("Cluster", "", "", "a")
		if err != nil {
			return err
		}
		if got := o.GetCluster().GetStatus().GetHealth(); got != federation.Healthy {
			return fmt.Errorf("cluster a is %q, want %q", got, federation.Healthy)
		}
		return nil
	})
	health("b", federation.Down)
}
