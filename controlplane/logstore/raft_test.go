package logstore

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/internal/testkit"
)

// listFSM keeps the data of every applied entry.
type listFSM struct {
	mu   sync.Mutex
	data []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = append(f.data, string(l.Data))
	return nil
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return listSnap(append([]string(nil), f.data...)), nil
}

func (f *listFSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	var d []string
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return err
	}
	f.mu.Lock()
	f.data = d
	f.mu.Unlock()
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.data...)
}

type listSnap []string

func (s listSnap) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnap) Release() {}

// raftNode is one member of an in-memory-transport group whose log is a
// Store on disk.
type raftNode struct {
	id    raft.ServerID
	dir   string
	trans *raft.InmemTransport
	store *Store
	fsm   *listFSM
	raft  *raft.Raft
}

func startGroup(t *testing.T, n int, snapThreshold, trailing uint64) []*raftNode {
	t.Helper()
	var nodes []*raftNode
	var servers []raft.Server
	for i := 0; i < n; i++ {
		id := raft.ServerID(fmt.Sprintf("n%d", i))
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		dir := filepath.Join(t.TempDir(), string(id))
		st, err := Open(dir, Options{SegmentSize: 4 << 10})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &raftNode{id: id, dir: dir, trans: trans, store: st, fsm: &listFSM{}})
		servers = append(servers, raft.Server{ID: id, Address: addr})
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	for i, nd := range nodes {
		c := raft.DefaultConfig()
		c.LocalID = nd.id
		c.HeartbeatTimeout = 100 * time.Millisecond
		c.ElectionTimeout = 100 * time.Millisecond
		c.LeaderLeaseTimeout = 100 * time.Millisecond
		c.CommitTimeout = 5 * time.Millisecond
		c.SnapshotThreshold = snapThreshold
		c.SnapshotInterval = 20 * time.Millisecond
		c.TrailingLogs = trailing
		c.LogOutput = io.Discard
		// Snapshots on disk: raft's in-memory snapshot store races with
		// a snapshot being installed while another is read.
		snaps, err := raft.NewFileSnapshotStore(filepath.Join(nd.dir, "snapshots"), 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(c, nd.fsm, nd.store, raft.NewInmemStore(), snaps, nd.trans)
		if err != nil {
			t.Fatal(err)
		}
		nd.raft = r
		if i == 0 {
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.raft.Shutdown().Error()
			nd.store.Close()
		}
	})
	return nodes
}

func leaderOf(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var l *raftNode
	testkit.Eventually(t, 10*time.Second, "a leader", func() bool {
		for _, nd := range nodes {
			if nd.raft.State() == raft.Leader {
				l = nd
				return true
			}
		}
		return false
	})
	return l
}

// apply writes n entries prefix-0… through the leader among nodes and
// returns those acknowledged. A write that fails because leadership moved
// (the machine may be loaded) is left out, and the next goes to the new
// leader: it may or may not have committed.
func apply(t *testing.T, nodes []*raftNode, prefix string, n int) []string {
	t.Helper()
	var acked []string
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("%s-%d", prefix, i)
		if err := leaderOf(t, nodes).raft.Apply([]byte(d), 5*time.Second).Error(); err != nil {
			t.Logf("apply %s: %v", d, err)
			continue
		}
		acked = append(acked, d)
	}
	return acked
}

// isolate cuts nd off from every other node, both ways; heal reconnects.
func isolate(nodes []*raftNode, nd *raftNode) {
	nd.trans.DisconnectAll()
	for _, o := range nodes {
		if o != nd {
			o.trans.Disconnect(nd.trans.LocalAddr())
		}
	}
}

func heal(nodes []*raftNode, nd *raftNode) {
	for _, o := range nodes {
		if o != nd {
			o.trans.Connect(nd.trans.LocalAddr(), nd.trans)
			nd.trans.Connect(o.trans.LocalAddr(), o.trans)
		}
	}
}

// converge waits until every node applied the same entries, among them
// every acknowledged one, and checks that each store reads its range.
func converge(t *testing.T, nodes []*raftNode, acked []string) []string {
	t.Helper()
	var got []string
	testkit.Eventually(t, 10*time.Second, "every node to apply the same entries", func() bool {
		got = nodes[0].fsm.list()
		for _, nd := range nodes[1:] {
			if fmt.Sprint(nd.fsm.list()) != fmt.Sprint(got) {
				return false
			}
		}
		has := map[string]bool{}
		for _, d := range got {
			has[d] = true
		}
		for _, d := range acked {
			if !has[d] {
				return false
			}
		}
		return true
	})
	for _, nd := range nodes {
		first, _ := nd.store.FirstIndex()
		last, _ := nd.store.LastIndex()
		for i := first; i <= last && first > 0; i++ {
			var l raft.Log
			if err := nd.store.GetLog(i, &l); err != nil {
				// Raft may compact the head meanwhile (after a
				// snapshot): only an index still in the log must read.
				if now, _ := nd.store.FirstIndex(); now > i {
					continue
				}
				t.Fatalf("%s: GetLog(%d) in [%d, %d]: %v", nd.id, i, first, last, err)
			}
		}
	}
	return got
}

// TestRaftTruncatesConflictingTail isolates a leader, lets it append
// entries that never commit while the others elect a new leader and move
// on, then heals: the old leader must drop its tail through DeleteRange
// and take the new leader's entries.
func TestRaftTruncatesConflictingTail(t *testing.T) {
	nodes := startGroup(t, 3, 1<<20, 1<<20)
	acked := apply(t, nodes, "a", 10)
	old := leaderOf(t, nodes)
	isolate(nodes, old)
	before, _ := old.store.LastIndex()
	for i := 0; i < 5; i++ {
		old.raft.Apply([]byte(fmt.Sprintf("lost-%d", i)), time.Second) // never commits
	}
	testkit.Eventually(t, 10*time.Second, "the isolated leader to append", func() bool {
		last, _ := old.store.LastIndex()
		return last >= before+5
	})
	var rest []*raftNode
	for _, nd := range nodes {
		if nd != old {
			rest = append(rest, nd)
		}
	}
	acked = append(acked, apply(t, rest, "b", 20)...)
	heal(nodes, old)
	got := converge(t, nodes, acked)
	for _, d := range got {
		if strings.HasPrefix(d, "lost-") {
			t.Fatalf("entry %s of the isolated leader was applied", d)
		}
	}
	// The old leader's log now holds the new leader's terms.
	nl := leaderOf(t, nodes)
	last, _ := nl.store.LastIndex()
	for i := before + 1; i <= last; i++ {
		var a, b raft.Log
		if err := old.store.GetLog(i, &a); err != nil {
			t.Fatal(err)
		}
		if err := nl.store.GetLog(i, &b); err != nil {
			t.Fatal(err)
		}
		if a.Term != b.Term || string(a.Data) != string(b.Data) {
			t.Fatalf("index %d: old leader has term %d %q, new leader term %d %q", i, a.Term, a.Data, b.Term, b.Data)
		}
	}
	checkReopen(t, old)
}

// TestRaftInstallsSnapshotOnLaggingFollower cuts a follower off while the
// leader compacts past it: on healing the follower installs a snapshot and,
// the store being monotonic, empties its log and continues after it.
func TestRaftInstallsSnapshotOnLaggingFollower(t *testing.T) {
	nodes := startGroup(t, 3, 16, 4)
	acked := apply(t, nodes, "a", 10)
	l := leaderOf(t, nodes)
	var lag *raftNode
	for _, nd := range nodes {
		if nd != l {
			lag = nd
			break
		}
	}
	isolate(nodes, lag)
	lagLast, _ := lag.store.LastIndex()
	var rest []*raftNode
	for _, nd := range nodes {
		if nd != lag {
			rest = append(rest, nd)
		}
	}
	acked = append(acked, apply(t, rest, "b", 80)...)
	testkit.Eventually(t, 10*time.Second, "the others to compact their logs", func() bool {
		for _, nd := range rest {
			if first, _ := nd.store.FirstIndex(); first <= lagLast+1 {
				return false
			}
		}
		return true
	})
	heal(nodes, lag)
	acked = append(acked, apply(t, nodes, "c", 5)...)
	converge(t, nodes, acked)
	// The follower's old entries went with the snapshot; its log is empty
	// or restarted past it, which the store allows only once emptied. Raft
	// clears the log after restoring the FSM, so converged data can come
	// before the cleared log: poll.
	testkit.Eventually(t, 10*time.Second, "the lagging follower's log to drop what the snapshot covers", func() bool {
		first, _ := lag.store.FirstIndex()
		return first == 0 || first > lagLast+1
	})
	checkReopen(t, lag)
}

// checkReopen closes nd's store after stopping its Raft and reopens the
// directory: the same range must come back.
func checkReopen(t *testing.T, nd *raftNode) {
	t.Helper()
	if err := nd.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	first, _ := nd.store.FirstIndex()
	last, _ := nd.store.LastIndex()
	nd.store.Close()
	re, err := Open(nd.dir, Options{SegmentSize: 4 << 10})
	if err != nil {
		t.Fatalf("reopen %s: %v", nd.id, err)
	}
	defer re.Close()
	f2, _ := re.FirstIndex()
	l2, _ := re.LastIndex()
	if f2 != first || l2 != last {
		t.Fatalf("%s reopened with [%d, %d], had [%d, %d]", nd.id, f2, l2, first, last)
	}
	if r := re.Recovered(); r.TruncatedFile != "" {
		t.Fatalf("%s: clean close needed repair: %+v", nd.id, r)
	}
}
