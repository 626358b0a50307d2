package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// writeTxn is the go-memdb write transaction of one object write. Outside
// a batch it is the write's own. Inside one (see BeginBatch) it is the
// batch's, shared by the sub-entries before and after: one transaction per
// batch entry instead of one per sub-entry. A failing sub-entry must leave
// nothing, so a write in a shared transaction logs what each key held
// before it changed it, and abort puts that back.
type writeTxn struct {
	*memdb.Txn
	// shared: the batch's transaction; commit and abort leave it open.
	shared bool
	// undo holds, per change staged in a shared transaction, what the key
	// held before, oldest first.
	undo []undoStep
	// done is set once the write committed or aborted.
	done bool
}

// undoStep is one key's content before a change: old nil means absent.
type undoStep struct {
	table, id string
	old       any
}

// beginWrite returns the transaction for a write at index: the batch's
// when a batch at index is being applied and this is not a dry run (dry
// runs come from other goroutines and never share it), else a new one.
func (s *Store) beginWrite(index uint64, dryRun bool) *writeTxn {
	s.mu.Lock()
	b := s.batch
	s.mu.Unlock()
	if b == nil || dryRun || b.index != index {
		return &writeTxn{Txn: s.db.Txn(true)}
	}
	if b.txn == nil {
		b.txn = s.db.Txn(true)
	}
	return &writeTxn{Txn: b.txn, shared: true}
}

// insert stages obj, whose "id" index value is id, in table.
func (t *writeTxn) insert(table, id string, obj any) error {
	if err := t.remember(table, id); err != nil {
		return err
	}
	return t.Insert(table, obj)
}

// insertOver is insert for a caller that knows what table holds at id in
// this transaction (held, nil when absent), so the undo log needs no read.
func (t *writeTxn) insertOver(table, id string, obj, held any) error {
	if t.shared {
		t.undo = append(t.undo, undoStep{table: table, id: id, old: held})
	}
	return t.Insert(table, obj)
}

// remove stages the removal of the object id from table, if present.
func (t *writeTxn) remove(table, id string) error {
	if err := t.remember(table, id); err != nil {
		return err
	}
	_, err := t.DeleteAll(table, "id", id)
	return err
}

// remember logs what table holds at id, in a shared transaction.
func (t *writeTxn) remember(table, id string) error {
	if !t.shared {
		return nil
	}
	old, err := t.First(table, "id", id)
	if err != nil {
		return fmt.Errorf("read %s: %w", id, err)
	}
	t.undo = append(t.undo, undoStep{table: table, id: id, old: old})
	return nil
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
		u := t.undo[i]
		var err error
		if u.old == nil {
			_, err = t.DeleteAll(u.table, "id", u.id)
		} else {
			err = t.Insert(u.table, u.old)
		}
		if err != nil {
			panic(fmt.Sprintf("state: undo %s: %v", u.id, err)) // static schema; restores what was stored
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
		t.Commit()
	}
	s.commitLocked(index, evs)
}
