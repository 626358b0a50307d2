package controlplane

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/security"
)

// State put through a follower's Functions REST API is forwarded to the
// leader with the caller's identity and read back, at once, through the
// follower and the leader; a developer of another namespace is refused
// there as at the leader.
func TestFunctionsStateThroughAFollower(t *testing.T) {
	pki := NewTestPKI(t)
	servers := TestCluster(t, 3, pki.SecureConfig)
	leader := WaitForLeader(t, servers...)
	follower := followers(leader, servers)[0]
	boot := BootstrapToken(t, servers...)
	cli := pki.Files(security.RoleClient, "cli", "")
	su := pki.Dial(leader.GRPCAddr(), cli, boot)
	if _, err := meshfedv1.NewObjectServiceClient(su).Apply(context.Background(), &meshfedv1.ApplyRequest{Objects: decodeAll(t, authzBase)}); err != nil {
		t.Fatal(err)
	}
	other := createToken(t, su, &meshfedv1.CreateTokenRequest{Subject: "olga", Role: "namespace-developer", Tenant: "other", Namespace: "ns"})
	functions := func(s *Server, token string) admin.Functions {
		c, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: "https://" + s.HTTPAddr(), Token: token,
			TLSTrustCertsFilePath: s.cfg.TLS.CA, PulsarAPIVersion: config.V3})
		if err != nil {
			t.Fatal(err)
		}
		return c.Functions()
	}
	viaFollower, viaLeader := functions(follower, boot), functions(leader, boot)
	cfg := &utils.FunctionConfig{Tenant: "acme", Namespace: "etl", Name: "excl", Inputs: []string{"persistent://acme/etl/in"},
		CustomRuntimeOptions: `{"cluster":"a"}`}
	if err := viaFollower.CreateFuncWithURL(cfg, "builtin://exclamation"); err != nil {
		t.Fatal(err)
	}
	if err := viaFollower.PutFunctionState("acme", "etl", "excl", utils.FunctionState{Key: "greeting", StringValue: "hello"}); err != nil {
		t.Fatalf("put state through follower %s: %v", follower.NodeID(), err)
	}
	for name, fns := range map[string]admin.Functions{"follower": viaFollower, "leader": viaLeader} {
		got, err := fns.GetFunctionState("acme", "etl", "excl", "greeting")
		if err != nil || got.StringValue != "hello" {
			t.Errorf("get state through the %s right after the put: %+v, %v", name, got, err)
		}
	}
	err := functions(follower, other.GetSecret()).PutFunctionState("acme", "etl", "excl", utils.FunctionState{Key: "greeting", StringValue: "hijacked"})
	var re rest.Error
	if !errors.As(err, &re) || re.Code != http.StatusForbidden {
		t.Errorf("put by a developer of other/ns through the follower: %v, want 403", err)
	}
	if got, err := viaLeader.GetFunctionState("acme", "etl", "excl", "greeting"); err != nil || got.StringValue != "hello" {
		t.Errorf("state after the refused put: %+v, %v", got, err)
	}
}
