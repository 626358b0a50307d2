package controlplane

import (
	"strings"
	"testing"

	"github.com/meshfed/meshfed/controlplane/state"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRegisterKeepsLimits: the mechanism an agent enforces resources with
// is stored in its AgentSpec; an unknown one is refused naming the field.
func TestRegisterKeepsLimits(t *testing.T) {
	srv := TestServer(t, nil)
	WaitForLeader(t, srv)
	objs, _ := TestClient(t, srv.GRPCAddr())
	mustApply(t, objs, clusterObj("a"))
	agents := TestAgents(t, srv.GRPCAddr())
	ctx := testCtx(t)
	_, err := agents.Register(ctx, &meshfedv1.RegisterRequest{Name: "a1", Cluster: "a", Limits: "cgroups"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limits:") {
		t.Fatalf("register with limits cgroups: %v, want InvalidArgument naming limits", err)
	}
	if _, err := agents.Register(ctx, &meshfedv1.RegisterRequest{Name: "a1", Cluster: "a", Limits: "cgroup1"}); err != nil {
		t.Fatal(err)
	}
	as, _, err := srv.State().List(state.Filter{Kind: "Agent"})
	if err != nil || len(as) != 1 {
		t.Fatalf("agents: %v %v", as, err)
	}
	if got := as[0].GetAgent().GetSpec().GetLimits(); got != "cgroup1" {
		t.Fatalf("agent limits = %q, want cgroup1", got)
	}
}
