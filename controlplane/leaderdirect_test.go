package controlplane

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
)

// TestClientSendsToTheLeaderAfterAForward: a client that first reaches a
// follower learns the leader from the forwarded answer and sends the next
// writes to the leader directly.
func TestClientSendsToTheLeaderAfterAForward(t *testing.T) {
	servers := TestCluster(t, 3)
	leader := WaitForLeader(t, servers...)
	var addrs []string
	for _, s := range followers(leader, servers) {
		addrs = append(addrs, s.GRPCAddr())
	}
	addrs = append(addrs, leader.GRPCAddr()) // the leader last: tried last by fail-over
	c, err := client.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var served []string
	for i := range 3 {
		err := c.Do(testCtx(t), func(ctx context.Context, conn *grpc.ClientConn) error {
			served = append(served, conn.Target())
			_, err := client.Objects(conn).Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj(fmt.Sprintf("c%d", i))}})
			return err
		})
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	if want := fmt.Sprint([]string{addrs[0], leader.GRPCAddr(), leader.GRPCAddr()}); fmt.Sprint(served) != want {
		t.Fatalf("writes served by %v, want %s (a follower, then the leader)", served, want)
	}
}
