package state

import (
	"fmt"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// The control plane's own writes, one method per log entry type. They skip
// the rules users' writes pass (reference checks, admission): the leader
// computed them from the stored state.

// UpdateStatus replaces the status of existing objects at index, keeping
// their spec, metadata and resourceVersion. Objects that no longer exist
// are skipped: the thing reported on was deleted meanwhile.
func (s *Store) UpdateStatus(index uint64, req *raftlogv1.UpdateStatus) error {
	w := s.newWriter(index, req.GetNow(), false)
	defer w.txn.abort()
	for i, in := range req.GetObjects() {
		k := objects.KindOf(in)
		if k == nil {
			return fmt.Errorf("object %d: empty object: %w", i+1, ErrInvalid)
		}
		old, err := w.read(i+1, k, in)
		if err != nil {
			return err
		}
		if old == nil {
			continue
		}
		if _, _, err := w.put(old, withStatusOf(old, in), k, statusWrite, true); err != nil {
			return err
		}
	}
	w.commit()
	return nil
}

// ApplyPlan writes a scheduler pass at index: the assignments placed or
// changed and those removed, all or none. A put or delete carrying a
// resourceVersion applies only if the stored assignment still has it.
func (s *Store) ApplyPlan(index uint64, req *raftlogv1.ApplyPlan) error {
	w := s.newWriter(index, req.GetNow(), false)
	defer w.txn.abort()
	k, err := objects.LookupKind(objects.KindAssignment)
	if err != nil {
		return err
	}
	for i, a := range req.GetPuts() {
		if a == nil {
			return fmt.Errorf("puts[%d]: empty assignment: %w", i, ErrInvalid)
		}
		if err := w.putSystem(i+1, k, objects.Wrap(a)); err != nil {
			return err
		}
	}
	for i, d := range req.GetDeletes() {
		if d.GetKind() != k.Name {
			return fmt.Errorf("deletes[%d]: kind %q: a plan deletes assignments only: %w", i, d.GetKind(), ErrInvalid)
		}
		if err := w.delete(i, d); err != nil {
			return err
		}
	}
	w.commit()
	return nil
}

// RegisterAgent records an agent's registration at index.
func (s *Store) RegisterAgent(index uint64, req *raftlogv1.RegisterAgent) error {
	if req.GetAgent().GetMetadata().GetName() == "" {
		return fmt.Errorf("agent.metadata.name: required: %w", ErrInvalid)
	}
	w := s.newWriter(index, req.GetNow(), false)
	defer w.txn.abort()
	in := objects.Wrap(req.GetAgent())
	if err := w.putSystem(1, objects.KindOf(in), in); err != nil {
		return err
	}
	w.commit()
	return nil
}

// putSystem stages the control plane's put of object n: spec and, when
// given, status. The store keeps in itself (the FSM decoded it).
func (w *writer) putSystem(n int, k *objects.Kind, in *meshfedv1.Object) error {
	old, err := w.read(n, k, in)
	if err != nil {
		return err
	}
	if err := checkVersion(k, in, old); err != nil {
		return err
	}
	_, _, err = w.put(old, in, k, systemWrite, true)
	return err
}

// delete stages the removal of d; an object already gone is skipped.
func (w *writer) delete(i int, d *raftlogv1.DeleteObject) error {
	key := objects.Key(d.GetKind(), d.GetTenant(), d.GetNamespace(), d.GetName())
	e := w.txn.getObj(key)
	if e == nil {
		return nil
	}
	old := e.Obj
	if rv := d.GetResourceVersion(); rv != 0 && objects.Meta(old).GetResourceVersion() != rv {
		return fmt.Errorf("deletes[%d]: %s changed: %w", i, key, ErrConflict)
	}
	w.txn.removeObj(key)
	w.evs = append(w.evs, &meshfedv1.Event{Type: meshfedv1.EventType_EVENT_TYPE_DELETE, Object: old, Revision: w.index})
	return nil
}
