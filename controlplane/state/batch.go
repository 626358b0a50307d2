package state

import meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"

// pendingBatch collects what the sub-entries of one batch entry commit
// until EndBatch publishes it.
type pendingBatch struct {
	// index is the Raft index of the batch entry: every sub-entry's revision.
	index uint64
	// events are the sub-entries' change events, in apply order.
	events []*meshfedv1.Event
	// auditSeq numbers the next audit record stored at index (sub-entries
	// share the index, so their records must not share a sequence number).
	auditSeq uint32
}

// BeginBatch starts applying the sub-entries of the batch entry at index.
// Each sub-entry's write lands in the store as it is applied (later
// sub-entries see earlier ones), but the revision, the change events and the
// wake-up of watchers are published together by EndBatch: a watcher or a
// reader of Revision never sees part of a batch under the batch's revision.
// The caller (the FSM, which applies one entry at a time) must call
// EndBatch before applying anything else.
func (s *Store) BeginBatch(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = &pendingBatch{index: index}
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
