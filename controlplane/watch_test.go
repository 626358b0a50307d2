package controlplane

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func stateFilter(kind string) state.Filter { return state.Filter{Kind: kind} }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// collect reads watch events until it has n creations (status updates the
// scheduler writes are skipped).
func collect(t *testing.T, stream meshfedv1.ObjectService_WatchClient, n int) []*meshfedv1.Event {
	t.Helper()
	var out []*meshfedv1.Event
	for len(out) < n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch recv after %d events: %v", len(out), err)
		}
		if resp.GetResyncRequired() {
			t.Fatalf("unexpected resync after %d events", len(out))
		}
		for _, ev := range resp.GetEvents() {
			if md := objects.Meta(ev.GetObject()); md.GetCreateRevision() == ev.GetRevision() {
				out = append(out, ev)
			}
		}
	}
	return out
}

func TestWatchResumesWithoutGapAcrossRestart(t *testing.T) {
	cfg := TestConfig(t, "s1")
	cfg.SnapshotThreshold = 4
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	ctx, cancel := context.WithCancel(testCtx(t))
	stream, err := c.Watch(ctx, &meshfedv1.WatchRequest{Kind: "Cluster", StartRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustApply(t, c, clusterObj(fmt.Sprintf("c%d", i)))
	}
	got := collect(t, stream, 5)
	cancel()
	last := got[len(got)-1].GetRevision()

	// Force a snapshot so the restart restores from it, then restart on the same data dir.
	if err := s.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	raftAddr := s.RaftAddr()
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg.RaftAddr = raftAddr
	s2, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = s2.Shutdown() })
	WaitForLeader(t, s2)
	c2, _ := TestClient(t, s2.GRPCAddr())
	for i := 5; i < 8; i++ {
		mustApply(t, c2, clusterObj(fmt.Sprintf("c%d", i)))
	}
	// Resume from a revision in the middle of the first batch and from the last one.
	mid := got[2].GetRevision()
	stream2, err := c2.Watch(testCtx(t), &meshfedv1.WatchRequest{Kind: "Cluster", StartRevision: mid})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, stream2, 5)
	want := []string{"c3", "c4", "c5", "c6", "c7"}
	for i, ev := range evs[:5] {
		if name := objects.Meta(ev.GetObject()).GetName(); name != want[i] {
			t.Fatalf("event %d is %s, want %s (gap or reorder)", i, name, want[i])
		}
		if ev.GetRevision() <= mid {
			t.Fatalf("event %d revision %d not after %d", i, ev.GetRevision(), mid)
		}
	}
	if evs[1].GetRevision() != last {
		t.Fatalf("resumed event c4 has revision %d, want %d as before the restart", evs[1].GetRevision(), last)
	}
}

func TestWatchCompactedRevisionAsksForResync(t *testing.T) {
	s := TestServer(t, func(c *Config) { c.EventHistory = 3 })
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	for i := 0; i < 6; i++ {
		mustApply(t, c, clusterObj(fmt.Sprintf("c%d", i)))
	}
	stream, err := c.Watch(testCtx(t), &meshfedv1.WatchRequest{StartRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetResyncRequired() || resp.GetCompactRevision() == 0 {
		t.Fatalf("want resync with compact revision, got %v", resp)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream should end after resync, got %v", err)
	}
}

func TestSnapshotSaveRestoreRoundTrip(t *testing.T) {
	servers := TestCluster(t, 3)
	leader := WaitForLeader(t, servers...)
	c, op := TestClient(t, servers[1].GRPCAddr())
	mustApply(t, c, clusterObj("keep1"), clusterObj("keep2"), tenantObj("t1", "alice"))

	stream, err := op.SaveSnapshot(testCtx(t), &meshfedv1.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, chunk.GetChunk()...)
	}
	if snap, err := readSnapshot(strings.NewReader(string(data))); err != nil {
		t.Fatalf("saved snapshot: %v", err)
	} else if len(snap.GetObjects()) != 3 {
		t.Fatalf("saved snapshot holds %d objects, want 3", len(snap.GetObjects()))
	}
	// Change the state after the snapshot.
	mustApply(t, c, clusterObj("later"))
	if _, err := c.Delete(testCtx(t), &meshfedv1.DeleteRequest{Kind: "Cluster", Name: "keep1"}); err != nil {
		t.Fatal(err)
	}
	// Restore through a follower (it forwards to the leader).
	up, err := op.RestoreSnapshot(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1000 {
		if err := up.Send(&meshfedv1.RestoreSnapshotRequest{Chunk: data[off:min(off+1000, len(data))]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := up.CloseAndRecv(); err != nil {
		t.Fatalf("restore: %v", err)
	}
	WaitFor(t, 10*time.Second, func() error {
		for _, s := range servers {
			objs, _, _ := s.State().List(stateFilter("Cluster"))
			var names []string
			for _, o := range objs {
				names = append(names, objects.Meta(o).GetName())
			}
			if strings.Join(names, ",") != "keep1,keep2" {
				return fmt.Errorf("%s has clusters %v", s.NodeID(), names)
			}
		}
		return nil
	})
	// Writes work after the restore, with revisions above the old ones.
	resp := mustApply(t, c, clusterObj("after"))
	if resp.GetRevision() <= leader.State().CompactRevision() {
		t.Fatalf("revision %d after restore", resp.GetRevision())
	}
	// A corrupt upload is refused without touching the state.
	up2, _ := op.RestoreSnapshot(testCtx(t))
	_ = up2.Send(&meshfedv1.RestoreSnapshotRequest{Chunk: []byte("garbage")})
	if _, err := up2.CloseAndRecv(); err == nil {
		t.Fatal("garbage snapshot accepted")
	}
}
