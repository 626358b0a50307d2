package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func TestBatchEncodingRoundTrip(t *testing.T) {
	subs := [][]byte{{byte(ApplyObjectsType), 1, 2}, {}, bytes.Repeat([]byte{byte(DeleteObjectType)}, 300)}
	b := encodeBatch(subs)
	if MessageType(b[0]) != BatchType {
		t.Fatalf("type byte %d", b[0])
	}
	got, err := decodeBatch(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(subs) {
		t.Fatalf("%d sub-entries, want %d", len(got), len(subs))
	}
	for i := range subs {
		if !bytes.Equal(got[i], subs[i]) {
			t.Fatalf("sub-entry %d: %x, want %x", i, got[i], subs[i])
		}
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"truncated length", []byte{0x80}},
		{"length past the end", []byte{5, 1, 2}},
		{"nested batch", encodeBatch([][]byte{{byte(BatchType)}})[1:]},
	} {
		if _, err := decodeBatch(tc.body); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([][]byte{{byte(ApplyObjectsType)}, {2, 3}})[1:])
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		subs, err := decodeBatch(body)
		if err != nil {
			return
		}
		if re := encodeBatch(subs); !bytes.Equal(re[1:], body) && len(subs) > 0 {
			// Lengths may be encoded non-minimally in the input; the
			// sub-entries must still decode the same.
			again, err := decodeBatch(re[1:])
			if err != nil || len(again) != len(subs) {
				t.Fatalf("re-encoded batch decodes to %d sub-entries (%v), want %d", len(again), err, len(subs))
			}
		}
	})
}

// TestFSMBatchAppliesEachSubEntryAsAlone applies a batch whose second
// sub-entry fails: the others apply, each gets its own answer, and the
// events appear together under the batch's index.
func TestFSMBatchAppliesEachSubEntryAsAlone(t *testing.T) {
	f := newTestFSM()
	f.Apply(logEntry(t, 1, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("old")}}))
	changed := f.State().Changed()
	ns := objects.Wrap(&meshfedv1.Namespace{ApiVersion: objects.APIVersion, Kind: "Namespace", Metadata: &meshfedv1.ObjectMeta{Name: "n", Tenant: "missing"}})
	audit := &meshfedv1.AuditRecord{Method: "apply"}
	subs := [][]byte{
		logEntry(t, 0, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("a")}, Audit: audit}).Data,
		logEntry(t, 0, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("b"), ns}, Audit: audit}).Data,
		logEntry(t, 0, DeleteObjectType, &raftlogv1.DeleteObject{Kind: "Cluster", Name: "old"}).Data,
		logEntry(t, 0, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{tenantObj("t")}, Audit: audit}).Data,
	}
	got := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: encodeBatch(subs)})
	br, ok := got.(*batchResponse)
	if !ok || len(br.resps) != 4 {
		t.Fatalf("answer %#v, want 4 answers", got)
	}
	r := func(i int) *applyResponse { return br.resps[i].(*applyResponse) }
	if r(0).err != nil || r(0).apply.Results[0] != state.ResultCreated || objects.Meta(r(0).apply.Objects[0]).GetResourceVersion() != 7 {
		t.Fatalf("sub-entry 1: %+v", r(0))
	}
	if r(1).err == nil {
		t.Fatal("sub-entry 2 (namespace of a missing tenant) was accepted")
	}
	if _, _, err := f.State().Get("Cluster", "", "", "b"); err == nil {
		t.Fatal("failed sub-entry half-applied")
	}
	if r(2).err != nil || objects.Meta(r(2).deleted).GetName() != "old" {
		t.Fatalf("sub-entry 3: %+v", r(2))
	}
	if r(3).err != nil || len(r(3).apply.Objects) != 1 {
		t.Fatalf("sub-entry 4: %+v", r(3))
	}
	select {
	case <-changed:
	default:
		t.Fatal("watchers not woken by the batch")
	}
	if rev := f.State().Revision(); rev != 7 {
		t.Fatalf("revision %d, want 7", rev)
	}
	evs, _, _, err := f.State().EventsAfter(1, state.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range evs {
		if ev.GetRevision() != 7 {
			t.Fatalf("event at revision %d, want 7", ev.GetRevision())
		}
		names = append(names, ev.GetType().String()+" "+objects.Meta(ev.GetObject()).GetName())
	}
	if want := "[EVENT_TYPE_PUT a EVENT_TYPE_DELETE old EVENT_TYPE_PUT t]"; fmt.Sprint(names) != want {
		t.Fatalf("events %v, want %s", names, want)
	}
	// Each sub-entry's audit record is kept under its own sequence number,
	// the failed one with its error.
	recs := f.State().Audit(func(*meshfedv1.AuditRecord) bool { return true }, 10)
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want 3", len(recs))
	}
	for i, rec := range recs {
		if rec.GetRevision() != 7 || rec.GetSeq() != uint32(i) {
			t.Fatalf("audit record %d at %d.%d", i, rec.GetRevision(), rec.GetSeq())
		}
	}
}

// fakeFuture answers an apply once released.
type fakeFuture struct {
	release chan struct{}
	err     error
	resp    interface{}
	index   uint64
}

func (f *fakeFuture) Error() error          { <-f.release; return f.err }
func (f *fakeFuture) Index() uint64         { return f.index }
func (f *fakeFuture) Response() interface{} { return f.resp }

// TestGroupCommitBatchesWhileOneIsInFlight holds the first proposal's
// entry open, queues more, and checks they go as one batch, except the one
// whose key overlaps.
func TestGroupCommitBatchesWhileOneIsInFlight(t *testing.T) {
	var (
		mu      sync.Mutex
		entries [][]byte
		futures []*fakeFuture
	)
	newFuture := func() *fakeFuture { return &fakeFuture{release: make(chan struct{})} }
	g := &groupCommit{
		batchOK: func() bool { return true },
		apply: func(buf []byte) raft.ApplyFuture {
			mu.Lock()
			defer mu.Unlock()
			f := newFuture()
			f.index = uint64(len(entries) + 1)
			if MessageType(buf[0]) == BatchType {
				subs, err := decodeBatch(buf[1:])
				if err != nil {
					t.Error(err)
				}
				resps := make([]interface{}, len(subs))
				for i, s := range subs {
					resps[i] = string(s)
				}
				f.resp = &batchResponse{resps: resps}
			} else {
				f.resp = string(buf)
			}
			entries = append(entries, buf)
			futures = append(futures, f)
			return f
		},
	}
	entriesN := func() int { mu.Lock(); defer mu.Unlock(); return len(entries) }
	type answer struct {
		resp  interface{}
		index uint64
		err   error
	}
	answers := make([]answer, 5)
	var wg sync.WaitGroup
	propose := func(i int, key string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, idx, err := g.propose([]byte{byte(ApplyObjectsType), byte('0' + i)}, []string{key})
			answers[i] = answer{r, idx, err}
		}()
	}
	queued := func(n int) {
		WaitFor(t, 5*time.Second, func() error {
			g.mu.Lock()
			defer g.mu.Unlock()
			if len(g.queue) != n {
				return fmt.Errorf("%d queued, want %d", len(g.queue), n)
			}
			return nil
		})
	}
	propose(0, "k0")
	WaitFor(t, 5*time.Second, func() error {
		if entriesN() != 1 {
			return errors.New("first proposal not sent alone")
		}
		return nil
	})
	propose(1, "k1")
	queued(1)
	propose(2, "k2")
	queued(2)
	propose(3, "k1") // same key as proposal 1: the batch after
	queued(3)
	close(futures[0].release)
	WaitFor(t, 5*time.Second, func() error {
		if entriesN() != 2 {
			return fmt.Errorf("%d entries, want 2", entriesN())
		}
		return nil
	})
	mu.Lock()
	second := entries[1]
	mu.Unlock()
	subs, err := decodeBatch(second[1:])
	if MessageType(second[0]) != BatchType || err != nil || len(subs) != 2 {
		t.Fatalf("second entry %x (%v), want a batch of proposals 1 and 2", second, err)
	}
	close(futures[1].release)
	WaitFor(t, 5*time.Second, func() error {
		if entriesN() != 3 {
			return fmt.Errorf("%d entries, want 3", entriesN())
		}
		return nil
	})
	mu.Lock()
	futures[2].err = raft.ErrLeadershipLost
	close(futures[2].release)
	mu.Unlock()
	wg.Wait()
	for i, want := range []answer{
		{string([]byte{byte(ApplyObjectsType), '0'}), 1, nil},
		{string([]byte{byte(ApplyObjectsType), '1'}), 2, nil},
		{string([]byte{byte(ApplyObjectsType), '2'}), 2, nil},
		{nil, 0, raft.ErrLeadershipLost},
	} {
		if got := answers[i]; got != want {
			t.Errorf("proposal %d: %+v, want %+v", i, got, want)
		}
	}
	WaitFor(t, 5*time.Second, func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.inFlight != 0 || len(g.queue) != 0 {
			return fmt.Errorf("in flight %d, queued %d after all answers", g.inFlight, len(g.queue))
		}
		return nil
	})
}

// TestGroupCommitWithoutGateSendsAlone: while a member lacks BatchType every
// proposal is its own entry of its own type.
func TestGroupCommitWithoutGateSendsAlone(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var types []MessageType
	g := &groupCommit{
		batchOK: func() bool { return false },
		apply: func(buf []byte) raft.ApplyFuture {
			mu.Lock()
			defer mu.Unlock()
			types = append(types, MessageType(buf[0]))
			return &fakeFuture{release: release}
		},
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := g.propose([]byte{byte(ApplyObjectsType)}, []string{fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	WaitFor(t, 5*time.Second, func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.queue) != 3 {
			return fmt.Errorf("%d queued, want 3", len(g.queue))
		}
		return nil
	})
	close(release)
	wg.Wait()
	if fmt.Sprint(types) != "[ApplyObjects ApplyObjects ApplyObjects ApplyObjects]" {
		t.Fatalf("entries %v", types)
	}
}

// TestClusterConcurrentWritesShareBatches writes from many goroutines to a
// 3-server cluster: every write succeeds once, every server ends with the
// same objects, and some writes shared a batch (same revision).
func TestClusterConcurrentWritesShareBatches(t *testing.T) {
	// Election timeouts long enough that a loaded machine does not depose
	// the leader in the middle (the writes would then be ambiguous).
	servers := TestCluster(t, 3, func(c *Config) {
		c.RaftTweak = func(rc *raft.Config) {
			rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
			rc.CommitTimeout = 5 * time.Millisecond
		}
	})
	leader := WaitForLeader(t, servers...)
	WaitFor(t, 10*time.Second, func() error {
		if !leader.membersApply(BatchType) {
			return errors.New("members do not all advertise BatchType yet")
		}
		return nil
	})
	if leader.membersApply(MessageType(99)) {
		t.Fatal("gate open for an entry type no member advertises")
	}
	c, _ := TestClient(t, leader.GRPCAddr())
	const writers, each = 16, 10
	revs := make(chan uint64, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				resp, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{clusterObj(fmt.Sprintf("c%d-%d", w, i))}})
				if err != nil {
					t.Error(err)
					return
				}
				revs <- resp.GetRevision()
			}
		}()
	}
	wg.Wait()
	close(revs)
	count := map[uint64]int{}
	shared := 0
	for r := range revs {
		if count[r]++; count[r] == 2 {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("no two of %d concurrent writes shared an entry", writers*each)
	}
	WaitFor(t, 10*time.Second, func() error {
		for _, s := range servers {
			objs, _, _ := s.State().List(stateFilter("Cluster"))
			if len(objs) != writers*each {
				return fmt.Errorf("%s has %d clusters, want %d", s.NodeID(), len(objs), writers*each)
			}
		}
		return nil
	})
}

// The sub-entries of a batch share one store transaction: a sub-entry that
// changed a stored object and then failed leaves the old object; one that
// writes another table (function state) still applies; readers see the
// batch only once it is applied whole.
func TestFSMBatchSharedTransactionUndoesAFailedSubEntry(t *testing.T) {
	f := newTestFSM()
	f.Apply(logEntry(t, 1, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("a"), clusterObj("b")}}))
	changedB := clusterObj("b")
	changedB.GetCluster().Spec.Region = "changed"
	stale := clusterObj("a")
	stale.GetCluster().Metadata.ResourceVersion = 99
	scope := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	subs := [][]byte{
		// changes b, then fails on a's stale resourceVersion
		logEntry(t, 0, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{changedB, stale}}).Data,
		logEntry(t, 0, CommitStateType, &raftlogv1.CommitState{Scope: scope, Ops: []*meshfedv1.StateOp{{Key: "k", Op: &meshfedv1.StateOp_Incr{Incr: 2}}}}).Data,
		logEntry(t, 0, DeleteObjectType, &raftlogv1.DeleteObject{Kind: "Cluster", Name: "a"}).Data,
		logEntry(t, 0, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("c")}}).Data,
	}
	got := f.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: encodeBatch(subs)})
	br, ok := got.(*batchResponse)
	if !ok || len(br.resps) != 4 {
		t.Fatalf("answer %#v, want 4 answers", got)
	}
	for i, wantErr := range []bool{true, false, false, false} {
		if err := br.resps[i].(*applyResponse).err; (err != nil) != wantErr {
			t.Fatalf("sub-entry %d: error %v, want an error: %v", i+1, err, wantErr)
		}
	}
	st := f.State()
	b, _, err := st.Get("Cluster", "", "", "b")
	if err != nil || b.GetCluster().GetSpec().GetRegion() != "eu-west-1" || objects.Meta(b).GetResourceVersion() != 1 {
		t.Fatalf("b after a failed sub-entry changed it: %v %v", b, err)
	}
	if _, _, err := st.Get("Cluster", "", "", "a"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a after its delete: %v", err)
	}
	if _, _, err := st.Get("Cluster", "", "", "c"); err != nil {
		t.Fatalf("c: %v", err)
	}
	if v := st.GetState(scope, []string{"k"}); len(v) != 1 || v[0].GetCounter() != 2 {
		t.Fatalf("state after the batch: %v", v)
	}
	evs, _, _, err := st.EventsAfter(1, state.Filter{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events of the batch: %v %v", evs, err)
	}
}

// While a batch is applied, readers see the store as it was before it.
func TestStoreBatchIsInvisibleUntilEnd(t *testing.T) {
	f := newTestFSM()
	st := f.State()
	st.BeginBatch(3)
	if _, err := st.Apply(3, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("a")}}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Get("Cluster", "", "", "a"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a read during its batch: %v", err)
	}
	st.EndBatch()
	if _, _, err := st.Get("Cluster", "", "", "a"); err != nil {
		t.Fatalf("a after its batch: %v", err)
	}
}
