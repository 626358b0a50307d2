package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Snapshot is a point-in-time, read-only view of a store. Taking one is cheap
// (go-memdb is immutable underneath); encoding it is left to Proto.
type Snapshot struct {
	txn        *memdb.Txn
	trees      *trees
	revision   uint64
	compactRev uint64
	events     []*meshfedv1.Event
	// fn is the functions' state, shared with the store (see fnStates).
	fn map[string]*scopeState
}

// Snapshot captures the current state.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Snapshot{
		txn:        s.db.Txn(false),
		trees:      s.pub.Load(),
		revision:   s.revision,
		compactRev: s.compactRev,
		events:     s.events[:len(s.events):len(s.events)],
		fn:         s.fn.snapshot(),
	}
}

// Revision is the revision the snapshot was taken at.
func (sn *Snapshot) Revision() uint64 { return sn.revision }

// Proto encodes the snapshot.
func (sn *Snapshot) Proto() (*raftlogv1.Snapshot, error) {
	out := &raftlogv1.Snapshot{Revision: sn.revision, CompactRevision: sn.compactRev, Events: sn.events}
	out.Objects = make([]*meshfedv1.Object, 0, sn.trees.objs.Len())
	sn.trees.objs.Ascend(func(e *entry) bool {
		out.Objects = append(out.Objects, e.Obj)
		return true
	})
	it, err := sn.txn.Get(tableMembers, "id")
	if err != nil {
		return nil, fmt.Errorf("snapshot members: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out.Members = append(out.Members, raw.(*memberEntry).M)
	}
	out.State = stateEntries(sn.fn)
	if it, err = sn.txn.Get(tablePackages, "id"); err != nil {
		return nil, fmt.Errorf("snapshot packages: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out.Packages = append(out.Packages, raw.(*packageEntry).P)
	}
	if it, err = sn.txn.Get(tableKeys, "id"); err != nil {
		return nil, fmt.Errorf("snapshot signing keys: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out.SigningKeys = append(out.SigningKeys, raw.(*keyEntry).K)
	}
	if it, err = sn.txn.Get(tableTokens, "id"); err != nil {
		return nil, fmt.Errorf("snapshot tokens: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out.Tokens = append(out.Tokens, raw.(*tokenEntry).T)
	}
	out.Audit = make([]*meshfedv1.AuditRecord, 0, sn.trees.audit.Len())
	sn.trees.audit.Ascend(func(r *meshfedv1.AuditRecord) bool {
		out.Audit = append(out.Audit, r)
		return true
	})
	return out, nil
}

// FromProto builds a new store from an encoded snapshot.
func FromProto(cfg Config, snap *raftlogv1.Snapshot) (*Store, error) {
	s := New(cfg)
	txn := s.db.Txn(true)
	defer txn.Abort()
	t := newTrees()
	for i, o := range snap.GetObjects() {
		if objects.KindOf(o) == nil {
			return nil, fmt.Errorf("snapshot object %d is empty", i)
		}
		t.objs.ReplaceOrInsert(&entry{Key: objects.KeyOf(o), Obj: o})
	}
	for _, m := range snap.GetMembers() {
		if err := txn.Insert(tableMembers, &memberEntry{ID: m.GetId(), M: m}); err != nil {
			return nil, fmt.Errorf("restore member %q: %w", m.GetId(), err)
		}
	}
	s.fn.restore(snap.GetState())
	for _, p := range snap.GetPackages() {
		if err := txn.Insert(tablePackages, &packageEntry{Digest: p.GetDigest(), P: p}); err != nil {
			return nil, fmt.Errorf("restore package %s: %w", p.GetDigest(), err)
		}
	}
	for _, k := range snap.GetSigningKeys() {
		if err := txn.Insert(tableKeys, &keyEntry{ID: k.GetId(), K: k}); err != nil {
			return nil, fmt.Errorf("restore signing key %s: %w", k.GetId(), err)
		}
	}
	for _, t := range snap.GetTokens() {
		if err := txn.Insert(tableTokens, &tokenEntry{ID: t.GetId(), T: t}); err != nil {
			return nil, fmt.Errorf("restore token %s: %w", t.GetId(), err)
		}
	}
	for _, r := range snap.GetAudit() {
		t.audit.ReplaceOrInsert(r)
	}
	s.pub.Store(t)
	txn.Commit()
	s.revision = snap.GetRevision()
	s.compactRev = snap.GetCompactRevision()
	s.events = snap.GetEvents()
	if len(s.events) == 0 {
		s.compactRev = s.revision
	}
	if over := len(s.events) - s.cfg.EventHistory; over > 0 {
		s.compactRev = s.events[over-1].GetRevision()
		s.events = s.events[over:]
	}
	return s, nil
}
