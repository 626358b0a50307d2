package state

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// fnStates holds every function's state: per scope, a plain map from key
// to value. Function state is written at a far higher rate than objects
// (one commit per instance every few milliseconds, hundreds of keys each)
// and needs neither watches nor secondary indexes, so it lives beside
// go-memdb rather than in it: a commit costs one map write per key instead
// of a radix-tree path copy.
//
// Writes come from the FSM, one entry at a time; reads from any goroutine.
// A snapshot shares the maps it captures (see snapshot): the first write
// to a scope after a snapshot copies that scope's map, so taking a
// snapshot stays cheap and what it holds never changes.
type fnStates struct {
	// mu guards scopes and every map and flag they hold. Writers hold it
	// for a whole commit, so a reader sees a commit whole or not at all.
	mu     sync.RWMutex
	scopes map[string]*scopeState
}

// scopeState is one function's state.
type scopeState struct {
	sc *meshfedv1.StateScope
	// keys holds the function's keys and, under commitKeyPrefix, its
	// idempotent writers' last sequences (counters).
	keys map[string]fnValue
	// shared: a snapshot holds keys, so it must be copied before a write.
	shared bool
}

// fnValue is one key's value: a counter or a byte string.
type fnValue struct {
	isCounter bool
	counter   int64
	value     []byte
}

func newFnStates() *fnStates { return &fnStates{scopes: map[string]*scopeState{}} }

// scopeID names a function's state; NUL separators, as no name holds one,
// so two scopes never share an id.
func scopeID(sc *meshfedv1.StateScope) string {
	return sc.GetTenant() + "\x00" + sc.GetNamespace() + "\x00" + sc.GetMesh() + "\x00" + sc.GetFunction()
}

// writableLocked returns the scope's state ready for writes, creating it
// or copying a map a snapshot shares.
func (f *fnStates) writableLocked(sc *meshfedv1.StateScope) *scopeState {
	id := scopeID(sc)
	st := f.scopes[id]
	if st == nil {
		st = &scopeState{sc: &meshfedv1.StateScope{Tenant: sc.GetTenant(), Namespace: sc.GetNamespace(), Mesh: sc.GetMesh(), Function: sc.GetFunction()},
			keys: map[string]fnValue{}}
		f.scopes[id] = st
	}
	if st.shared {
		st.keys, st.shared = maps.Clone(st.keys), false
	}
	return st
}

// snapshot returns the scopes' maps as they are, by scope id, and marks
// them shared. The caller must not write to them. Store.Snapshot calls it
// with Store.mu held (lock order: Store.mu, then mu).
func (f *fnStates) snapshot() map[string]*scopeState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]*scopeState, len(f.scopes))
	for id, st := range f.scopes {
		st.shared = true
		out[id] = &scopeState{sc: st.sc, keys: st.keys}
	}
	return out
}

// stateEntries encodes snapshot scopes for a Raft snapshot, in scope and
// key order.
func stateEntries(scopes map[string]*scopeState) []*raftlogv1.StateEntry {
	var out []*raftlogv1.StateEntry
	for _, id := range slices.Sorted(maps.Keys(scopes)) {
		st := scopes[id]
		for _, k := range slices.Sorted(maps.Keys(st.keys)) {
			v := st.keys[k]
			out = append(out, &raftlogv1.StateEntry{Scope: st.sc, Key: k, Counter: v.counter, Value: v.value, IsCounter: v.isCounter})
		}
	}
	return out
}

// restore loads a snapshot's state entries into an empty fnStates.
func (f *fnStates) restore(entries []*raftlogv1.StateEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		f.writableLocked(e.GetScope()).keys[e.GetKey()] = fnValue{isCounter: e.GetIsCounter(), counter: e.GetCounter(), value: e.GetValue()}
	}
}

// GetState reads keys of a function's state.
func (s *Store) GetState(sc *meshfedv1.StateScope, keys []string) []*meshfedv1.StateValue {
	s.fn.mu.RLock()
	defer s.fn.mu.RUnlock()
	st := s.fn.scopes[scopeID(sc)]
	out := make([]*meshfedv1.StateValue, 0, len(keys))
	for _, k := range keys {
		v := &meshfedv1.StateValue{Key: k}
		if st != nil {
			if e, ok := st.keys[k]; ok {
				v.Exists, v.IsCounter, v.Counter, v.Value = true, e.isCounter, e.counter, e.value
			}
		}
		out = append(out, v)
	}
	return out
}

// ScanState reads the keys of a function's state in key order: those after
// after (exclusive; empty: from the first), at most limit of them. more
// reports that keys remain past the last one returned. The commit records
// of idempotent writers are not state and are left out.
func (s *Store) ScanState(sc *meshfedv1.StateScope, after string, limit int) (values []*meshfedv1.StateValue, more bool, err error) {
	s.fn.mu.RLock()
	defer s.fn.mu.RUnlock()
	st := s.fn.scopes[scopeID(sc)]
	if st == nil {
		return nil, false, nil
	}
	var keys []string
	for k := range st.keys {
		if k > after && !strings.HasPrefix(k, commitKeyPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > limit {
		keys, more = keys[:limit], true
	}
	values = make([]*meshfedv1.StateValue, 0, len(keys))
	for _, k := range keys {
		e := st.keys[k]
		values = append(values, &meshfedv1.StateValue{Key: k, Exists: true, IsCounter: e.isCounter, Counter: e.counter, Value: e.value})
	}
	return values, more, nil
}

// commitKeyPrefix starts the key of an idempotent writer's commit record
// (user keys never start with \x01).
const commitKeyPrefix = "\x01commit\x00"

// undo is a key's value before a commit changed it, to roll the commit
// back if a later operation of it is refused.
type undo struct {
	key     string
	prev    fnValue
	existed bool
}

// CommitState applies state operations atomically at index: all of them or,
// when one is refused, none. An increment of a key holding a value (or a
// put to a counter) is refused. A writer's sequence applies once: a commit
// at or below the writer's last applied sequence changes nothing (a retry
// after an unknown outcome).
func (s *Store) CommitState(index uint64, req *raftlogv1.CommitState) ([]*meshfedv1.StateValue, error) {
	// Under mu, so a Snapshot (which takes mu, then fn.mu) sees the
	// commit together with its revision or neither.
	s.mu.Lock()
	defer s.mu.Unlock()
	counters, err := s.fn.commit(req)
	if err != nil {
		return nil, err
	}
	s.commitLocked(index, nil)
	return counters, nil
}

func (f *fnStates) commit(req *raftlogv1.CommitState) ([]*meshfedv1.StateValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.writableLocked(req.GetScope())
	undos := make([]undo, 0, len(req.GetOps())+1)
	set := func(key string, v fnValue) {
		prev, existed := st.keys[key]
		undos = append(undos, undo{key, prev, existed})
		st.keys[key] = v
	}
	if w := req.GetWriter(); w != "" {
		// The writer's last committed sequence lives beside the state,
		// under a key no user key can take (keys never start with \x01).
		id := commitKeyPrefix + w
		if rec, ok := st.keys[id]; ok && uint64(rec.counter) >= req.GetSequence() {
			return nil, nil // already applied: a retry after an unknown outcome
		}
		set(id, fnValue{isCounter: true, counter: int64(req.GetSequence())})
	}
	// One allocation for every counter the answer returns.
	incrs := 0
	for _, op := range req.GetOps() {
		if _, ok := op.GetOp().(*meshfedv1.StateOp_Incr); ok {
			incrs++
		}
	}
	values := make([]meshfedv1.StateValue, incrs)
	counters := make([]*meshfedv1.StateValue, 0, incrs)
	refuse := func(err error) ([]*meshfedv1.StateValue, error) {
		for i := len(undos) - 1; i >= 0; i-- {
			if u := undos[i]; u.existed {
				st.keys[u.key] = u.prev
			} else {
				delete(st.keys, u.key)
			}
		}
		return nil, err
	}
	for i, op := range req.GetOps() {
		key := op.GetKey()
		cur, exists := st.keys[key]
		switch o := op.GetOp().(type) {
		case *meshfedv1.StateOp_Incr:
			if exists && !cur.isCounter {
				return refuse(fmt.Errorf("ops[%d]: key %q holds a value, not a counter: %w", i, key, ErrInvalid))
			}
			n := cur.counter + o.Incr
			set(key, fnValue{isCounter: true, counter: n})
			v := &values[len(counters)]
			v.Key, v.Counter, v.IsCounter, v.Exists = key, n, true, true
			counters = append(counters, v)
		case *meshfedv1.StateOp_Put:
			if exists && cur.isCounter {
				return refuse(fmt.Errorf("ops[%d]: key %q is a counter: %w", i, key, ErrInvalid))
			}
			set(key, fnValue{value: o.Put})
		case *meshfedv1.StateOp_Delete:
			if exists {
				undos = append(undos, undo{key, cur, true})
				delete(st.keys, key)
			}
		default:
			return refuse(fmt.Errorf("ops[%d]: no operation set: %w", i, ErrInvalid))
		}
	}
	return counters, nil
}

// packageEntry is one stored package.
type packageEntry struct {
	Digest string
	P      *raftlogv1.PutPackage
}

// PutPackage stores a package at index.
func (s *Store) PutPackage(index uint64, p *raftlogv1.PutPackage) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if err := txn.Insert(tablePackages, &packageEntry{Digest: p.GetDigest(), P: p}); err != nil {
		return fmt.Errorf("put package %s: %w", p.GetDigest(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
	return nil
}

// Package returns a stored package, or ErrNotFound.
func (s *Store) Package(digest string) (*raftlogv1.PutPackage, error) {
	raw, err := s.db.Txn(false).First(tablePackages, "id", digest)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("package %s: %w", digest, ErrNotFound)
	}
	return raw.(*packageEntry).P, nil
}
