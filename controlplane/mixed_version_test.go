package controlplane

import (
	"fmt"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// newTypeEntries counts the entries of the new system types a server applied.
func newTypeEntries(s *Server) uint64 {
	var n uint64
	for _, t := range newLogTypes {
		n += s.fsm.Applied(t)
	}
	return n
}

// In a group where one server predates UpdateStatus, ApplyPlan and
// RegisterAgent, the leader writes the control plane's own changes in the
// original ApplyObjects form, which every server applies; once that server
// leaves the group the leader writes the new types.
func TestMixedVersionsWriteLegacyEntriesUntilEveryMemberUpgrades(t *testing.T) {
	servers := TestCluster(t, 3, func(c *Config) { c.legacyLogTypes = c.NodeID == "s3" })
	old := servers[2]
	objc, opc := TestClient(t, servers[0].GRPCAddr())
	mustApply(t, objc, clusterObj("a"))
	agents := TestAgents(t, servers[0].GRPCAddr(), &meshfedv1.RegisterRequest{Name: "ag1", Cluster: "a"})
	ctx := testCtx(t)
	// The registration and the cluster health it causes reach the old
	// server too, written in the original form.
	WaitFor(t, 10*time.Second, func() error {
		for _, s := range servers {
			o, _, err := s.State().Get("Cluster", "", "", "a")
			if err != nil {
				return err
			}
			if got := o.GetCluster().GetStatus().GetReadyAgents(); got != 1 {
				return fmt.Errorf("%s: cluster a has %d ready agents, want 1", s.NodeID(), got)
			}
			if _, _, err := s.State().Get("Agent", "", "", "ag1"); err != nil {
				return fmt.Errorf("%s: agent ag1: %w", s.NodeID(), err)
			}
		}
		return nil
	})
	// A user's delete is the original DeleteObject too (not DeleteCascade).
	mustApply(t, objc, clusterObj("gone"))
	if _, err := objc.Delete(ctx, &meshfedv1.DeleteRequest{Kind: "Cluster", Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() error {
		for _, s := range servers {
			if n := s.fsm.Applied(DeleteObjectType); n != 1 {
				return fmt.Errorf("%s applied %d DeleteObject entries, want 1", s.NodeID(), n)
			}
		}
		return nil
	})
	for _, s := range servers {
		if n := newTypeEntries(s); n != 0 {
			t.Fatalf("%s applied %d new-type entries while %s does not know them", s.NodeID(), n, old.NodeID())
		}
	}

	// The old server leaves; the leader now writes the new types.
	if _, err := opc.RemovePeer(ctx, &meshfedv1.RemovePeerRequest{Id: old.NodeID()}); err != nil {
		t.Fatal(err)
	}
	if err := old.Shutdown(); err != nil {
		t.Fatal(err)
	}
	rest := servers[:2]
	leader := WaitForLeader(t, rest...)
	WaitFor(t, 10*time.Second, func() error {
		if !leader.membersApply(RegisterAgentType) {
			return fmt.Errorf("leader %s still sees a member without the new types", leader.NodeID())
		}
		return nil
	})
	if _, err := agents.Register(ctx, &meshfedv1.RegisterRequest{Name: "ag2", Cluster: "a"}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, objc, clusterObj("gone"))
	if _, err := objc.Delete(ctx, &meshfedv1.DeleteRequest{Kind: "Cluster", Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() error {
		for _, s := range rest {
			if n := s.fsm.Applied(DeleteCascadeType); n != 1 {
				return fmt.Errorf("%s applied %d DeleteCascade entries, want 1", s.NodeID(), n)
			}
			if n := s.fsm.Applied(RegisterAgentType); n != 1 {
				return fmt.Errorf("%s applied %d RegisterAgent entries, want 1", s.NodeID(), n)
			}
			if n := s.fsm.Applied(UpdateStatusType); n == 0 {
				return fmt.Errorf("%s applied no UpdateStatus entry (cluster health of two agents)", s.NodeID())
			}
		}
		return nil
	})
}

// Upgrading the older server in place (a restart on the same data dir and
// Raft address, now knowing the new types) opens the gate too: it
// re-advertises its member record and the leader writes the new types,
// which the upgraded server applies.
func TestMixedVersionsWriteNewTypesOnceTheOlderServerIsUpgraded(t *testing.T) {
	servers := TestCluster(t, 3, func(c *Config) { c.legacyLogTypes = c.NodeID == "s3" })
	old := servers[2]
	objc, _ := TestClient(t, servers[0].GRPCAddr())
	mustApply(t, objc, clusterObj("a"))
	leader := WaitForLeader(t, servers...)
	if leader.membersApply(RegisterAgentType) {
		t.Fatal("the gate is open while s3 predates the new types")
	}

	dataDir, raftAddr := old.cfg.DataDir, old.RaftAddr()
	if err := old.Shutdown(); err != nil {
		t.Fatal(err)
	}
	upgraded := TestServer(t, func(c *Config) {
		c.NodeID, c.DataDir, c.RaftAddr = "s3", dataDir, raftAddr
	})
	servers[2] = upgraded
	WaitFor(t, 15*time.Second, func() error {
		l := WaitForLeader(t, servers...)
		if !l.membersApply(RegisterAgentType) {
			return fmt.Errorf("leader %s: not every member advertises the new types yet", l.NodeID())
		}
		return nil
	})
	TestAgents(t, servers[0].GRPCAddr(), &meshfedv1.RegisterRequest{Name: "ag1", Cluster: "a"})
	WaitFor(t, 10*time.Second, func() error {
		for _, s := range servers {
			if n := s.fsm.Applied(RegisterAgentType); n != 1 {
				return fmt.Errorf("%s applied %d RegisterAgent entries, want 1", s.NodeID(), n)
			}
		}
		return nil
	})
}
