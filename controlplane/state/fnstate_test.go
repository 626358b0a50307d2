package state

import (
	"errors"
	"fmt"
	"testing"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func incr(key string, n int64) *meshfedv1.StateOp {
	return &meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Incr{Incr: n}}
}

func put(key, v string) *meshfedv1.StateOp {
	return &meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Put{Put: []byte(v)}}
}

func del(key string) *meshfedv1.StateOp {
	return &meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Delete{Delete: true}}
}

// counterOf reads key's counter, or -1 when it is absent.
func counterOf(s *Store, sc *meshfedv1.StateScope, key string) int64 {
	v := s.GetState(sc, []string{key})[0]
	if !v.GetExists() {
		return -1
	}
	return v.GetCounter()
}

func TestCommitStateRefusedOpChangesNothing(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	sc := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	if _, err := s.CommitState(1, &raftlogv1.CommitState{Scope: sc, Ops: []*meshfedv1.StateOp{incr("a", 1), put("v", "x"), put("gone", "y")}}); err != nil {
		t.Fatal(err)
	}
	// Every kind of change before the refused op, some twice to one key.
	bad := &raftlogv1.CommitState{Scope: sc, Writer: "w", Sequence: 1,
		Ops: []*meshfedv1.StateOp{incr("a", 5), incr("new", 1), incr("a", 1), del("gone"), put("v", "z"), incr("v", 1)}}
	if _, err := s.CommitState(2, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("increment of a value: %v, want ErrInvalid", err)
	}
	if a, n := counterOf(s, sc, "a"), counterOf(s, sc, "new"); a != 1 || n != -1 {
		t.Fatalf("after a refused commit a = %d, new = %d; want 1 and absent", a, n)
	}
	vals := s.GetState(sc, []string{"v", "gone"})
	if string(vals[0].GetValue()) != "x" || string(vals[1].GetValue()) != "y" {
		t.Fatalf("after a refused commit values are %v", vals)
	}
	// The refused commit did not record its sequence: the writer's next
	// attempt under it applies.
	bad.Ops = bad.Ops[:5]
	counters, err := s.CommitState(3, bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(counters) != 3 || counters[2].GetKey() != "a" || counters[2].GetCounter() != 7 {
		t.Fatalf("counters answered %v, want a at 7 last", counters)
	}
	if a := counterOf(s, sc, "a"); a != 7 {
		t.Fatalf("a = %d, want 7", a)
	}
	if s.Revision() != 3 {
		t.Fatalf("revision %d, want 3", s.Revision())
	}
}

func TestStateSnapshotIsPointInTimeAndRestores(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	sc := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	other := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "g"}
	if _, err := s.CommitState(1, &raftlogv1.CommitState{Scope: sc, Writer: "w", Sequence: 1, Ops: []*meshfedv1.StateOp{incr("a", 1), put("v", "x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitState(2, &raftlogv1.CommitState{Scope: other, Ops: []*meshfedv1.StateOp{incr("b", 2)}}); err != nil {
		t.Fatal(err)
	}
	sn := s.Snapshot()
	// Writes after the snapshot, to both scopes, do not reach it.
	if _, err := s.CommitState(3, &raftlogv1.CommitState{Scope: sc, Writer: "w", Sequence: 2, Ops: []*meshfedv1.StateOp{incr("a", 10), del("v")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitState(4, &raftlogv1.CommitState{Scope: other, Ops: []*meshfedv1.StateOp{incr("c", 1)}}); err != nil {
		t.Fatal(err)
	}
	p, err := sn.Proto()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := FromProto(Config{Rules: noRules{}}, p)
	if err != nil {
		t.Fatal(err)
	}
	if a, b, c := counterOf(restored, sc, "a"), counterOf(restored, other, "b"), counterOf(restored, other, "c"); a != 1 || b != 2 || c != -1 {
		t.Fatalf("restored a = %d, b = %d, c = %d; want 1, 2, absent", a, b, c)
	}
	if v := restored.GetState(sc, []string{"v"})[0]; string(v.GetValue()) != "x" {
		t.Fatalf("restored v = %v, want x", v)
	}
	if a := counterOf(s, sc, "a"); a != 11 {
		t.Fatalf("live a = %d, want 11", a)
	}
	// The writer's record came back with the state: its sequence 1,
	// retried after the restore, applies nothing; sequence 2 applies.
	for i, seq := range []uint64{1, 2} {
		if _, err := restored.CommitState(uint64(10+i), &raftlogv1.CommitState{Scope: sc, Writer: "w", Sequence: seq, Ops: []*meshfedv1.StateOp{incr("a", 10)}}); err != nil {
			t.Fatal(err)
		}
	}
	if a := counterOf(restored, sc, "a"); a != 11 {
		t.Fatalf("restored a after retries = %d, want 11", a)
	}
	// A second snapshot of the restored store encodes the same state.
	p2, err := restored.Snapshot().Proto()
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.GetState()) != len(p.GetState()) {
		t.Fatalf("re-snapshot holds %d state entries, want %d", len(p2.GetState()), len(p.GetState()))
	}
}

// BenchmarkCommitState applies, on one server's store, commits of 500
// increments over 1,000 keys of one function (about what one instance
// commits every 20 ms running word-count at 25,000 inputs/s): the cost of
// applying function state, paid by every server.
//
//	go test -run '^$' -bench CommitState ./controlplane/state/
func BenchmarkCommitState(b *testing.B) {
	const keys, perCommit = 1000, 500
	s := New(Config{Rules: noRules{}})
	sc := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	commits := make([]*raftlogv1.CommitState, keys/perCommit*7)
	for c := range commits {
		ops := make([]*meshfedv1.StateOp, perCommit)
		for i := range ops {
			ops[i] = &meshfedv1.StateOp{Key: fmt.Sprintf("w%d", ((c*perCommit+i)*7919)%keys), Op: &meshfedv1.StateOp_Incr{Incr: 1}}
		}
		commits[c] = &raftlogv1.CommitState{Scope: sc, Ops: ops, Writer: "w"}
	}
	b.ResetTimer()
	for n := range b.N {
		c := commits[n%len(commits)]
		c.Sequence = uint64(n + 1)
		if _, err := s.CommitState(uint64(n+1), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perCommit)/b.Elapsed().Seconds(), "updates/s")
}

// Readers and snapshots run beside commits (the FSM applies while gRPC
// handlers read and Raft persists a snapshot): run with -race.
func TestStateReadsAndSnapshotsBesideCommits(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	sc := &meshfedv1.StateScope{Tenant: "t", Namespace: "n", Mesh: "m", Function: "f"}
	const commits = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= commits; i++ {
			ops := []*meshfedv1.StateOp{incr("a", 1), incr(fmt.Sprintf("k%d", i%7), 1), put("v", fmt.Sprint(i))}
			if _, err := s.CommitState(uint64(i), &raftlogv1.CommitState{Scope: sc, Writer: "w", Sequence: uint64(i), Ops: ops}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var snaps []*Snapshot
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		// A commit is seen whole: a and v move together.
		vals := s.GetState(sc, []string{"a", "v"})
		if vals[0].GetExists() && fmt.Sprint(vals[0].GetCounter()) != string(vals[1].GetValue()) {
			t.Fatalf("a = %d beside v = %q: part of a commit seen", vals[0].GetCounter(), vals[1].GetValue())
		}
		if _, _, err := s.ScanState(sc, "", 3); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, s.Snapshot())
	}
	for _, sn := range snaps {
		p, err := sn.Proto()
		if err != nil {
			t.Fatal(err)
		}
		// Each snapshot holds whole commits, up to its revision: commit i
		// at index i sets a to i and v to "i".
		var a int64
		var v string
		for _, e := range p.GetState() {
			switch e.GetKey() {
			case "a":
				a = e.GetCounter()
			case "v":
				v = string(e.GetValue())
			}
		}
		if a != 0 && fmt.Sprint(a) != v || uint64(a) != sn.Revision() {
			t.Fatalf("snapshot at revision %d holds a = %d beside v = %q", sn.Revision(), a, v)
		}
	}
	if a := counterOf(s, sc, "a"); a != commits {
		t.Fatalf("a = %d, want %d", a, commits)
	}
}

func TestStateScopesNeverShareKeys(t *testing.T) {
	s := New(Config{Rules: noRules{}})
	a := &meshfedv1.StateScope{Tenant: "t", Namespace: "n/m", Mesh: "x", Function: "f"}
	b := &meshfedv1.StateScope{Tenant: "t/n", Namespace: "m", Mesh: "x", Function: "f"}
	if _, err := s.CommitState(1, &raftlogv1.CommitState{Scope: a, Ops: []*meshfedv1.StateOp{incr("k", 1)}}); err != nil {
		t.Fatal(err)
	}
	if n := counterOf(s, b, "k"); n != -1 {
		t.Fatalf("another scope reads k = %d, want absent", n)
	}
}
