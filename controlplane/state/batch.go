package state

import (
	memdb "github.com/hashicorp/go-memdb"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// pendingBatch collects what the sub-entries of one batch entry commit
// until EndBatch publishes it.
type pendingBatch struct {
	// index is the Raft index of the batch entry: every sub-entry's revision.
	index uint64
	// events are the sub-entries' change events, in apply order.
	events []*meshfedv1.Event
	// txn is the write transaction the sub-entries' object writes and
	// audit records share (see beginWrite); nil until the first of them
	// and after FlushBatch. Used by the applying goroutine only.
	txn *memdb.Txn
	// trees are what txn's writes change in the trees, published with it.
	trees *trees
	// auditSeq numbers the next audit record stored at index (sub-entries
	// share the index, so their records must not share a sequence number).
	auditSeq uint32
}

// BeginBatch starts applying the sub-entries of the batch entry at index.
// Object writes and audit records of the sub-entries share one go-memdb
// transaction (each sub-entry still fails alone: see writeTxn), so later
// sub-entries see earlier ones; the transaction, the revision, the change
// events and the wake-up of watchers are published together by EndBatch: a
// reader never sees part of a batch. A sub-entry that writes other tables
// calls FlushBatch first. The caller (the FSM, which applies one entry at a
// time) must call EndBatch before applying anything else.
func (s *Store) BeginBatch(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = &pendingBatch{index: index}
}

// FlushBatch commits what the batch's sub-entries wrote so far in the
// shared transaction, so that a sub-entry writing in a transaction of its
// own (function state, members, packages, tokens) can take go-memdb's
// write lock. What it committed is visible to readers before EndBatch.
func (s *Store) FlushBatch() {
	s.mu.Lock()
	b := s.batch
	s.mu.Unlock()
	if b == nil || b.txn == nil {
		return
	}
	s.mu.Lock()
	s.pub.Store(b.trees)
	b.txn.Commit()
	s.mu.Unlock()
	b.txn, b.trees = nil, nil
}

// EndBatch publishes the batch BeginBatch started.
func (s *Store) EndBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batch
	if b == nil {
		return
	}
	s.batch = nil
	if b.txn != nil {
		s.pub.Store(b.trees)
		b.txn.Commit()
	}
	s.commitLocked(b.index, b.events)
}

// auditSeqLocked reserves n audit sequence numbers at index and returns the
// first: zero outside a batch, else the next free one of the batch.
func (s *Store) auditSeqLocked(index uint64, n int) uint32 {
	if s.batch == nil || s.batch.index != index {
		return 0
	}
	seq := s.batch.auditSeq
	s.batch.auditSeq += uint32(n)
	return seq
}
