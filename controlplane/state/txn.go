package state

import (
	memdb "github.com/hashicorp/go-memdb"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// writeTxn is the write transaction of one object write: a go-memdb write
// transaction and clones of the trees. Outside a batch it is the
// write's own. Inside one (see BeginBatch) it is the batch's, shared by the
// sub-entries before and after: one transaction per batch entry instead of
// one per sub-entry. A failing sub-entry must leave nothing, so a write in a
// shared transaction logs what each key held before it changed it, and
// abort puts that back.
type writeTxn struct {
	*memdb.Txn
	// trees are the transaction's, published on commit.
	*trees
	// shared: the batch's transaction; commit and abort leave it open.
	shared bool
	// undo holds, per change staged in a shared transaction, what the key
	// held before, oldest first.
	undo []undoStep
	// done is set once the write committed or aborted.
	done bool
}

// undoStep is what one object key held before a change: old nil means
// absent.
type undoStep struct {
	key string
	old *entry
}

// beginWrite returns the transaction for a write at index: the batch's
// when a batch at index is being applied and this is not a dry run (dry
// runs come from other goroutines and never share it), else a new one.
func (s *Store) beginWrite(index uint64, dryRun bool) *writeTxn {
	s.mu.Lock()
	b := s.batch
	s.mu.Unlock()
	if b == nil || dryRun || b.index != index {
		// go-memdb's write lock, taken first, serializes the clones of
		// the published tree.
		txn := s.db.Txn(true)
		return &writeTxn{Txn: txn, trees: s.pub.Load().clone()}
	}
	if b.txn == nil {
		b.txn = s.db.Txn(true)
		b.trees = s.pub.Load().clone()
	}
	return &writeTxn{Txn: b.txn, trees: b.trees, shared: true}
}

// getObj returns the entry the transaction holds at key, or nil.
func (t *writeTxn) getObj(key string) *entry { return objGet(t.objs, key) }

// putObj stages e at its key, for a caller that knows what the
// transaction holds there (held, nil when absent), so the undo log needs
// no read.
func (t *writeTxn) putObj(e, held *entry) {
	if t.shared {
		t.undo = append(t.undo, undoStep{key: e.Key, old: held})
	}
	t.objs.ReplaceOrInsert(e)
}

// removeObj stages the removal of the object at key, if present.
func (t *writeTxn) removeObj(key string) {
	old, ok := t.objs.Delete(&entry{Key: key})
	if t.shared && ok {
		t.undo = append(t.undo, undoStep{key: key, old: old})
	}
}

// abort drops what the write staged, unless it committed: its own
// transaction whole, or its changes to the shared one, newest first.
func (t *writeTxn) abort() {
	if t.done {
		return
	}
	t.done = true
	if !t.shared {
		t.Abort()
		return
	}
	for i := len(t.undo) - 1; i >= 0; i-- {
		if u := t.undo[i]; u.old == nil {
			t.objs.Delete(&entry{Key: u.key})
		} else {
			t.objs.ReplaceOrInsert(u.old)
		}
	}
}

// commitWrite makes t's write visible at index with its events: at once
// for its own transaction, with the rest of the batch for a shared one.
func (s *Store) commitWrite(t *writeTxn, index uint64, evs []*meshfedv1.Event) {
	t.done = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.shared {
		s.pub.Store(t.trees)
		t.Commit()
	}
	s.commitLocked(index, evs)
}
