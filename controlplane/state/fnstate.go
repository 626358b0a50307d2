package state

import (
	"fmt"
	"strings"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// stateEntry is one key of a function's state.
type stateEntry struct {
	ID string
	E  *raftlogv1.StateEntry
}

func stateID(sc *meshfedv1.StateScope, key string) string {
	return sc.GetTenant() + "/" + sc.GetNamespace() + "/" + sc.GetMesh() + "/" + sc.GetFunction() + "\x00" + key
}

// GetState reads keys of a function's state.
func (s *Store) GetState(sc *meshfedv1.StateScope, keys []string) []*meshfedv1.StateValue {
	txn := s.db.Txn(false)
	out := make([]*meshfedv1.StateValue, 0, len(keys))
	for _, k := range keys {
		v := &meshfedv1.StateValue{Key: k}
		if raw, err := txn.First(tableFnState, "id", stateID(sc, k)); err == nil && raw != nil {
			e := raw.(*stateEntry).E
			v.Exists, v.IsCounter, v.Counter, v.Value = true, e.GetIsCounter(), e.GetCounter(), e.GetValue()
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
	prefix := stateID(sc, "")
	it, err := s.db.Txn(false).LowerBound(tableFnState, "id", prefix+after)
	if err != nil {
		return nil, false, fmt.Errorf("scan state: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		se := raw.(*stateEntry)
		key, ok := strings.CutPrefix(se.ID, prefix)
		if !ok {
			break
		}
		if after != "" && key == after || strings.HasPrefix(key, commitKeyPrefix) {
			continue
		}
		if len(values) == limit {
			return values, true, nil
		}
		e := se.E
		values = append(values, &meshfedv1.StateValue{Key: key, Exists: true, IsCounter: e.GetIsCounter(), Counter: e.GetCounter(), Value: e.GetValue()})
	}
	return values, false, nil
}

// commitKeyPrefix starts the key of an idempotent writer's commit record
// (user keys never start with \x01).
const commitKeyPrefix = "\x01commit\x00"

// CommitState applies state operations atomically at index. An increment of
// a key holding a value (or a put to a counter) is refused.
func (s *Store) CommitState(index uint64, req *raftlogv1.CommitState) ([]*meshfedv1.StateValue, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	sc := req.GetScope()
	var counters []*meshfedv1.StateValue
	var commitID string
	if w := req.GetWriter(); w != "" {
		// The writer's last committed sequence lives beside the state,
		// under a key no user key can take (keys never start with \x01).
		commitID = stateID(sc, commitKeyPrefix+w)
		raw, err := txn.First(tableFnState, "id", commitID)
		if err != nil {
			return nil, fmt.Errorf("read commit record: %w", err)
		}
		if raw != nil && uint64(raw.(*stateEntry).E.GetCounter()) >= req.GetSequence() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.commitLocked(index, nil)
			return nil, nil // already applied: a retry after an unknown outcome
		}
		if err := txn.Insert(tableFnState, &stateEntry{ID: commitID, E: &raftlogv1.StateEntry{Scope: sc, Key: commitKeyPrefix + w,
			Counter: int64(req.GetSequence()), IsCounter: true}}); err != nil {
			return nil, err
		}
	}
	for i, op := range req.GetOps() {
		id := stateID(sc, op.GetKey())
		raw, err := txn.First(tableFnState, "id", id)
		if err != nil {
			return nil, fmt.Errorf("read state %q: %w", op.GetKey(), err)
		}
		var cur *raftlogv1.StateEntry
		if raw != nil {
			cur = raw.(*stateEntry).E
		}
		switch o := op.GetOp().(type) {
		case *meshfedv1.StateOp_Incr:
			if cur != nil && !cur.GetIsCounter() {
				return nil, fmt.Errorf("ops[%d]: key %q holds a value, not a counter: %w", i, op.GetKey(), ErrInvalid)
			}
			n := cur.GetCounter() + o.Incr
			if err := txn.Insert(tableFnState, &stateEntry{ID: id, E: &raftlogv1.StateEntry{Scope: sc, Key: op.GetKey(), Counter: n, IsCounter: true}}); err != nil {
				return nil, err
			}
			counters = append(counters, &meshfedv1.StateValue{Key: op.GetKey(), Counter: n, IsCounter: true, Exists: true})
		case *meshfedv1.StateOp_Put:
			if cur != nil && cur.GetIsCounter() {
				return nil, fmt.Errorf("ops[%d]: key %q is a counter: %w", i, op.GetKey(), ErrInvalid)
			}
			if err := txn.Insert(tableFnState, &stateEntry{ID: id, E: &raftlogv1.StateEntry{Scope: sc, Key: op.GetKey(), Value: o.Put}}); err != nil {
				return nil, err
			}
		case *meshfedv1.StateOp_Delete:
			if _, err := txn.DeleteAll(tableFnState, "id", id); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("ops[%d]: no operation set: %w", i, ErrInvalid)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
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
