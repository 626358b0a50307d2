package controlplane

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// TestWatchStreamsShareOneEncoding: twenty watches of the same kind all
// receive a write's event, encoded once.
func TestWatchStreamsShareOneEncoding(t *testing.T) {
	srv := TestServer(t, nil)
	WaitForLeader(t, srv)
	c, _ := TestClient(t, srv.GRPCAddr())
	start := srv.State().Revision()
	var streams []meshfedv1.ObjectService_WatchClient
	for range 20 {
		// From a fixed revision: a stream whose handler starts after the
		// write still sends the same event from the history.
		st, err := c.Watch(testCtx(t), &meshfedv1.WatchRequest{Kind: "Cluster", StartRevision: start})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	resp := mustApply(t, c, clusterObj("a"))
	for i, st := range streams {
		for {
			r, err := st.Recv()
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if len(r.GetEvents()) == 0 {
				continue // a progress report
			}
			if ev := r.GetEvents()[0]; objects.Meta(ev.GetObject()).GetName() != "a" || ev.GetRevision() != resp.GetRevision() {
				t.Fatalf("stream %d got %v, want cluster a at %d", i, ev, resp.GetRevision())
			}
			break
		}
	}
	// Later events (the control plane's status of the cluster) have their
	// own encodings, and a stream that started late may send the put and
	// them in one response: at most two encodings begin with the put,
	// against twenty unshared.
	srv.watchEnc.mu.Lock()
	defer srv.watchEnc.mu.Unlock()
	n := 0
	for _, e := range srv.watchEnc.recent {
		if e.first.GetRevision() == resp.GetRevision() {
			n++
		}
	}
	if n < 1 || n > 2 {
		t.Fatalf("%d encodings begin with the put sent on 20 streams, want 1 or 2", n)
	}
}
