package state

import (
	"fmt"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Result of one object in an apply.
const (
	ResultCreated    = "created"
	ResultConfigured = "configured"
	ResultUnchanged  = "unchanged"
)

// ApplyResult is what an apply returns: the objects as stored and, per
// object, whether it was created, configured or unchanged.
type ApplyResult struct {
	Revision uint64
	Objects  []*meshfedv1.Object
	Results  []string
}

// writeMode says whose write an object put is, which decides what happens
// to its status and resourceVersion.
type writeMode int

const (
	// userWrite: users never write status; the stored one is kept.
	userWrite writeMode = iota
	// systemWrite: the control plane's own write; a status given replaces
	// the stored one, none keeps it.
	systemWrite
	// statusWrite: only the status changes and resourceVersion stays.
	statusWrite
)

// Apply writes every object of a user's req at revision index, or none of
// them. With dryRun it computes the result without changing the store.
// Unless dryRun, the store keeps req's objects themselves (no copy): the
// caller (the FSM, which decoded them) must not use them afterwards. The
// control plane's own writes are UpdateStatus, ApplyPlan and RegisterAgent.
func (s *Store) Apply(index uint64, req *raftlogv1.ApplyObjects, dryRun bool) (*ApplyResult, error) {
	if req.GetSystem() || req.GetStatusOnly() || len(req.GetDeletes()) > 0 {
		return nil, fmt.Errorf("system, status_only and deletes belong to the control plane's own writes, not a user's apply: %w", ErrInvalid)
	}
	w := s.newWriter(index, req.GetNow(), dryRun)
	defer w.txn.abort()
	res := &ApplyResult{Revision: index}
	// prior holds what each written key stored before this write (nil when
	// new): admission judges growth against it.
	prior := make(map[string]*meshfedv1.Object, len(req.GetObjects()))
	for i, in := range req.GetObjects() {
		k := objects.KindOf(in)
		if k == nil {
			return nil, fmt.Errorf("object %d: empty object: %w", i+1, ErrInvalid)
		}
		if k.System {
			return nil, fmt.Errorf("object %d: kind %s is written by the control plane only: %w", i+1, k.Name, ErrInvalid)
		}
		old, err := w.read(i+1, k, in)
		if err != nil {
			return nil, err
		}
		prior[objects.KeyOf(in)] = old
		if err := checkVersion(k, in, old); err != nil {
			return nil, err
		}
		if err := s.rules.CheckRefs(in, txnLookup{w.txn.objs}); err != nil {
			if fe := objects.AsFieldErrors(err); len(fe) > 0 {
				err = fe.In("", i+1) // "doc N: field.path: reason", N counting from 1
			}
			return nil, invalid{err}
		}
		obj, result, err := w.put(old, in, k, userWrite, !dryRun)
		if err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, obj)
		res.Results = append(res.Results, result)
	}
	view := admitView{txnView{w.txn.objs}, prior}
	for i, o := range res.Objects {
		if err := s.rules.Admit(o, view); err != nil {
			return nil, docError{doc: i + 1, err: err}
		}
	}
	if !dryRun {
		w.commit()
	}
	return res, nil
}

// writer is one write transaction of objects and the events it makes.
type writer struct {
	s     *Store
	txn   *writeTxn
	index uint64
	now   *timestamppb.Timestamp
	evs   []*meshfedv1.Event
	// seen holds the keys written so far: one write names a key once.
	seen map[string]bool
}

func (s *Store) newWriter(index uint64, now *timestamppb.Timestamp, dryRun bool) *writer {
	return &writer{s: s, txn: s.beginWrite(index, dryRun), index: index, now: now, seen: map[string]bool{}}
}

// read returns what object doc n's key stores (nil when new), refusing a
// key written twice in one write.
func (w *writer) read(n int, k *objects.Kind, in *meshfedv1.Object) (*meshfedv1.Object, error) {
	key := objects.KeyOf(in)
	if w.seen[key] {
		return nil, fmt.Errorf("object %d: %s %s appears twice in one apply: %w", n, k.Name, objects.DisplayName(in), ErrInvalid)
	}
	w.seen[key] = true
	if e := w.txn.getObj(key); e != nil {
		return e.Obj, nil
	}
	return nil, nil
}

// checkVersion enforces the resourceVersion precondition in carries.
func checkVersion(k *objects.Kind, in, old *meshfedv1.Object) error {
	want := objects.Meta(in).GetResourceVersion()
	switch {
	case want == 0:
		return nil
	case old == nil:
		return fmt.Errorf("%s %s: expected resourceVersion %d but the object does not exist: %w", k.Name, objects.DisplayName(in), want, ErrConflict)
	case objects.Meta(old).GetResourceVersion() != want:
		return fmt.Errorf("%s %s: expected resourceVersion %d but it is %d: %w", k.Name, objects.DisplayName(in), want, objects.Meta(old).GetResourceVersion(), ErrConflict)
	}
	return nil
}

// put merges in over old and stages the result, with its event unless
// nothing changed. With owned, in becomes the stored object (the caller
// gives it up); else it is copied.
func (w *writer) put(old, in *meshfedv1.Object, k *objects.Kind, mode writeMode, owned bool) (*meshfedv1.Object, string, error) {
	obj, result := merge(old, in, w.index, w.now, mode, k, owned)
	if result == ResultUnchanged {
		return obj, result, nil
	}
	key := objects.KeyOf(obj)
	// old is what the transaction holds at key (read just before), so
	// the undo log takes it instead of reading the key again.
	var held *entry
	if old != nil {
		held = &entry{Key: key, Obj: old}
	}
	w.txn.putObj(&entry{Key: key, Obj: obj}, held)
	ev := &meshfedv1.Event{Type: meshfedv1.EventType_EVENT_TYPE_PUT, Object: obj, Revision: w.index}
	if from := old.GetAssignment().GetSpec().GetAgent(); from != "" && from != obj.GetAssignment().GetSpec().GetAgent() {
		ev.PreviousAgent = from
	}
	w.evs = append(w.evs, ev)
	return obj, result, nil
}

// commit makes the staged write visible and wakes watchers.
func (w *writer) commit() {
	w.s.commitWrite(w.txn, w.index, w.evs)
}

// merge builds the object to store from the stored one (nil when new) and
// the one written: in itself when owned, else a copy. Server-written
// metadata is kept or set; user writes keep the stored status.
func merge(old, in *meshfedv1.Object, index uint64, now *timestamppb.Timestamp, mode writeMode, k *objects.Kind, owned bool) (*meshfedv1.Object, string) {
	obj := in
	if !owned {
		obj = proto.CloneOf(in)
	}
	md := objects.Meta(obj)
	msg := objects.Unwrap(obj).ProtoReflect()
	setString(msg, "api_version", objects.APIVersion)
	setString(msg, "kind", k.Name)
	if old == nil {
		md.ResourceVersion, md.CreateRevision, md.Generation = index, index, 1
		md.CreateTime, md.UpdateTime = tsOrNil(now), tsOrNil(now)
		if mode == userWrite {
			clearField(msg, "status")
		}
		return obj, ResultCreated
	}
	omd := objects.Meta(old)
	oldMsg := objects.Unwrap(old).ProtoReflect()
	statusFD := msg.Descriptor().Fields().ByName("status")
	keepStatus := mode == userWrite || statusFD == nil || !msg.Has(statusFD)
	if keepStatus && statusFD != nil {
		// Users never write status; system writes without one keep it.
		// Stored objects are never changed, so the new version shares
		// the stored status rather than a copy of it.
		if oldMsg.Has(statusFD) {
			msg.Set(statusFD, oldMsg.Get(statusFD))
		} else {
			msg.Clear(statusFD)
		}
	}
	specChanged := !sameMsg(fieldMsg(msg, "spec"), fieldMsg(oldMsg, "spec")) || !equalLabels(md.GetLabels(), omd.GetLabels())
	statusChanged := !keepStatus && !sameMsg(fieldMsg(msg, "status"), fieldMsg(oldMsg, "status"))
	md.CreateRevision, md.CreateTime, md.Generation = omd.GetCreateRevision(), tsOrNil(omd.GetCreateTime()), omd.GetGeneration()
	if !specChanged && !statusChanged {
		return old, ResultUnchanged
	}
	if specChanged {
		md.Generation++
	}
	if mode == statusWrite {
		// Status reports do not move resourceVersion: it versions what
		// users write, so their compare-and-swap never races the
		// control plane's own bookkeeping. Watchers still get the event.
		md.ResourceVersion, md.UpdateTime = omd.GetResourceVersion(), tsOrNil(omd.GetUpdateTime())
		return obj, ResultConfigured
	}
	md.ResourceVersion, md.UpdateTime = index, tsOrNil(now)
	return obj, ResultConfigured
}

// withStatusOf returns old carrying the status of in, as a new object
// that shares old's other fields (stored objects are never changed) except
// its metadata, which merge sets: a status write copies no spec.
func withStatusOf(old, in *meshfedv1.Object) *meshfedv1.Object {
	src := objects.Unwrap(old).ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	copyField(dst, src, "metadata")
	copyField(dst, objects.Unwrap(in).ProtoReflect(), "status")
	return objects.Wrap(dst.Interface())
}

// sameMsg reports whether a and b are equal messages; the same message
// (a status write keeps its spec) is equal without comparing.
func sameMsg(a, b proto.Message) bool {
	return a == b || proto.Equal(a, b)
}

// Delete removes one object at revision index. It refuses to delete a tenant
// or namespace that still holds objects, or a cluster a mesh refers to.
// A deleted mesh's assignments stay until the scheduler removes them; see
// DeleteCascade.
func (s *Store) Delete(index uint64, req *raftlogv1.DeleteObject, dryRun bool) (*meshfedv1.Object, error) {
	return s.deleteObject(index, req, dryRun, false)
}

// DeleteCascade is Delete, except that deleting a FunctionMesh also
// deletes its Assignments in the same write: one revision, the mesh's
// event first, then one per assignment in key order. What it removes
// depends on the stored state alone, so every server removes the same.
func (s *Store) DeleteCascade(index uint64, req *raftlogv1.DeleteObject, dryRun bool) (*meshfedv1.Object, error) {
	return s.deleteObject(index, req, dryRun, true)
}

func (s *Store) deleteObject(index uint64, req *raftlogv1.DeleteObject, dryRun, cascade bool) (*meshfedv1.Object, error) {
	k, err := objects.LookupKind(req.GetKind())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	txn := s.beginWrite(index, dryRun)
	defer txn.abort()
	key := objects.Key(k.Name, req.GetTenant(), req.GetNamespace(), req.GetName())
	e := txn.getObj(key)
	if e == nil {
		return nil, fmt.Errorf("%s %q: %w", k.Name, displayKey(req.GetTenant(), req.GetNamespace(), req.GetName()), ErrNotFound)
	}
	old := e.Obj
	if rv := req.GetResourceVersion(); rv != 0 && objects.Meta(old).GetResourceVersion() != rv {
		return nil, fmt.Errorf("%s %s: expected resourceVersion %d but it is %d: %w", k.Name, objects.DisplayName(old), rv, objects.Meta(old).GetResourceVersion(), ErrConflict)
	}
	if err := checkDependents(txn.objs, k, req); err != nil {
		return nil, err
	}
	txn.removeObj(key)
	evs := []*meshfedv1.Event{{Type: meshfedv1.EventType_EVENT_TYPE_DELETE, Object: old, Revision: index}}
	if cascade && k.Name == objects.KindFunctionMesh {
		gone, err := deleteAssignmentsOf(txn, req.GetTenant(), req.GetNamespace(), req.GetName())
		if err != nil {
			return nil, err
		}
		for _, a := range gone {
			evs = append(evs, &meshfedv1.Event{Type: meshfedv1.EventType_EVENT_TYPE_DELETE, Object: a, Revision: index})
		}
	}
	if dryRun {
		return old, nil
	}
	s.commitWrite(txn, index, evs)
	return old, nil
}

// deleteAssignmentsOf stages the removal of mesh tenant/namespace/mesh's
// assignments and returns them in key order.
func deleteAssignmentsOf(txn *writeTxn, tenant, namespace, mesh string) ([]*meshfedv1.Object, error) {
	var gone []*meshfedv1.Object
	for _, e := range objList(txn.objs, objects.Key(objects.KindAssignment, tenant, namespace, "")) {
		if e.Obj.GetAssignment().GetSpec().GetMesh() == mesh {
			gone = append(gone, e.Obj)
			txn.removeObj(e.Key)
		}
	}
	return gone, nil
}

// checkDependents refuses deletes that would orphan other objects.
func checkDependents(objs *objTree, k *objects.Kind, req *raftlogv1.DeleteObject) error {
	var prefixes []string
	switch k.Name {
	case objects.KindTenant:
		for _, dk := range objects.Kinds {
			if dk.Scope != objects.ScopeGlobal {
				prefixes = append(prefixes, dk.Name+"/"+req.GetName()+"/")
			}
		}
	case objects.KindNamespace:
		for _, dk := range objects.Kinds {
			if dk.Scope == objects.ScopeNamespace {
				prefixes = append(prefixes, dk.Name+"/"+req.GetTenant()+"/"+req.GetName()+"/")
			}
		}
	case objects.KindCluster:
		for _, e := range objList(objs, objects.KindFunctionMesh+"/") {
			o := e.Obj
			if meshUsesCluster(o.GetFunctionMesh(), req.GetName()) {
				return fmt.Errorf("cluster %q is used by FunctionMesh %s; delete or change the mesh first: %w", req.GetName(), objects.DisplayName(o), ErrFailedPrecondition)
			}
		}
	}
	for _, p := range prefixes {
		var first *entry
		objScan(objs, p, func(e *entry) bool {
			first = e
			return false
		})
		if first != nil {
			o := first.Obj
			return fmt.Errorf("%s %q still holds %s %s; delete it first: %w", k.Name, displayKey(req.GetTenant(), "", req.GetName()), objects.KindOf(o).Name, objects.DisplayName(o), ErrFailedPrecondition)
		}
	}
	return nil
}

func meshUsesCluster(m *meshfedv1.FunctionMesh, cluster string) bool {
	for _, f := range objects.MeshFunctions(m.GetSpec()) {
		if f.GetInput().GetCluster() == cluster || f.GetOutput().GetCluster() == cluster || f.GetPlacement().GetCluster() == cluster {
			return true
		}
		for _, c := range f.GetFailover().GetClusters() {
			if c == cluster {
				return true
			}
		}
	}
	return false
}

// txnLookup lets reference checks see the write transaction, including the
// objects inserted earlier in the same apply.
type txnLookup struct{ objs *objTree }

func (l txnLookup) Exists(kind, tenant, namespace, name string) bool {
	return objGet(l.objs, objects.Key(kind, tenant, namespace, name)) != nil
}

func setString(m protoreflect.Message, field, v string) {
	if fd := m.Descriptor().Fields().ByName(protoreflect.Name(field)); fd != nil {
		m.Set(fd, protoreflect.ValueOfString(v))
	}
}

func clearField(m protoreflect.Message, field string) {
	if fd := m.Descriptor().Fields().ByName(protoreflect.Name(field)); fd != nil {
		m.Clear(fd)
	}
}

func copyField(dst, src protoreflect.Message, field string) {
	fd := dst.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil {
		return
	}
	if src.Has(fd) {
		dst.Set(fd, protoreflect.ValueOfMessage(proto.Clone(src.Get(fd).Message().Interface()).ProtoReflect()))
	} else {
		dst.Clear(fd)
	}
}

func fieldMsg(m protoreflect.Message, field string) proto.Message {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil || !m.Has(fd) {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
