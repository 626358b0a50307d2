package controlplane

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

func newTestFSM() *FSM {
	return NewFSM(state.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func logEntry(t *testing.T, index uint64, typ MessageType, body proto.Message) *raft.Log {
	t.Helper()
	b, err := encodeEntry(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: b}
}

func TestFSMApplyEntries(t *testing.T) {
	f := newTestFSM()
	r := f.Apply(logEntry(t, 5, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("a"), tenantObj("t")}})).(*applyResponse)
	if r.err != nil || len(r.apply.Objects) != 2 {
		t.Fatalf("apply: %+v", r)
	}
	if rv := objects.Meta(r.apply.Objects[0]).GetResourceVersion(); rv != 5 {
		t.Fatalf("resourceVersion %d, want the log index 5", rv)
	}
	// A reference to an unknown tenant fails the whole entry; the revision still advances.
	ns := objects.Wrap(&meshfedv1.Namespace{ApiVersion: objects.APIVersion, Kind: "Namespace", Metadata: &meshfedv1.ObjectMeta{Name: "n", Tenant: "missing"}})
	r = f.Apply(logEntry(t, 6, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("b"), ns}})).(*applyResponse)
	if r.err == nil {
		t.Fatal("namespace of a missing tenant was accepted")
	}
	if _, _, err := f.State().Get("Cluster", "", "", "b"); err == nil {
		t.Fatal("failed entry half-applied")
	}
	if f.State().Revision() != 6 {
		t.Fatalf("revision %d after failed entry, want 6", f.State().Revision())
	}
	r = f.Apply(logEntry(t, 7, DeleteObjectType, &raftlogv1.DeleteObject{Kind: "Cluster", Name: "a"})).(*applyResponse)
	if r.err != nil || objects.Meta(r.deleted).GetName() != "a" {
		t.Fatalf("delete: %+v", r)
	}
	r = f.Apply(logEntry(t, 8, UpsertMemberType, &raftlogv1.Member{Id: "s1", GrpcAddress: "x:1"})).(*applyResponse)
	if r.err != nil || f.State().Member("s1").GetGrpcAddress() != "x:1" {
		t.Fatalf("member: %+v", r)
	}
	// Entries flagged as skippable are skipped by servers that do not know them.
	if got := f.Apply(&raft.Log{Index: 9, Type: raft.LogCommand, Data: []byte{byte(IgnoreUnknownTypeFlag | 77)}}); got != nil {
		t.Fatalf("skippable unknown entry: %v", got)
	}
	if f.State().Revision() != 9 {
		t.Fatalf("revision %d, want 9", f.State().Revision())
	}
}

func TestFSMUnknownEntryTypeStopsTheServer(t *testing.T) {
	f := newTestFSM()
	defer func() {
		if recover() == nil {
			t.Fatal("unknown entry type without the ignore flag was applied")
		}
	}()
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{77}})
}

// memSink is a raft.SnapshotSink writing to memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMSnapshotRestoreKeepsObjectsMembersAndEvents(t *testing.T) {
	f := newTestFSM()
	f.Apply(logEntry(t, 3, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("a")}}))
	f.Apply(logEntry(t, 4, UpsertMemberType, &raftlogv1.Member{Id: "s1", GrpcAddress: "x:1"}))
	f.Apply(logEntry(t, 5, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("b")}}))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot is taken are not in it.
	f.Apply(logEntry(t, 6, ApplyObjectsType, &raftlogv1.ApplyObjects{Objects: []*meshfedv1.Object{clusterObj("c")}}))
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || sink.cancelled {
		t.Fatalf("persist: %v (cancelled %v)", err, sink.cancelled)
	}
	g := newTestFSM()
	old := g.State()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !old.Abandoned() {
		t.Fatal("old store not abandoned: its watchers would never learn of the restore")
	}
	st := g.State()
	objs, rev, _ := st.List(state.Filter{Kind: "Cluster"})
	if len(objs) != 2 || rev != 5 {
		t.Fatalf("restored %d clusters at revision %d, want 2 at 5", len(objs), rev)
	}
	if st.Member("s1") == nil {
		t.Fatal("member lost in snapshot")
	}
	evs, _, _, err := st.EventsAfter(3, state.Filter{})
	if err != nil || len(evs) != 1 || evs[0].GetRevision() != 5 {
		t.Fatalf("events after restore: %v %v", evs, err)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("not a snapshot")))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
}
