package state

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	memdb "github.com/hashicorp/go-memdb"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	tableMembers  = "members"
	tablePackages = "packages"
)

// DefaultEventHistory is how many change events a store keeps for watches.
const DefaultEventHistory = 50000

// entry is one stored object. Entries are immutable once inserted.
type entry struct {
	Key string
	Obj *meshfedv1.Object
}

// memberEntry wraps a member record for go-memdb.
type memberEntry struct {
	ID string
	M  *raftlogv1.Member
}

func schema() *memdb.DBSchema {
	tables := map[string]*memdb.TableSchema{
		tableMembers: {Name: tableMembers, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tablePackages: {Name: tablePackages, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Digest"}},
		}},
	}
	authTables(tables)
	return &memdb.DBSchema{Tables: tables}
}

// Rules are the checks every user write passes inside the apply.
type Rules interface {
	// CheckRefs validates an object's references against the state.
	CheckRefs(o *meshfedv1.Object, l objects.Lookup) error
	// Admit applies tenant and namespace policies to an object, seeing
	// the whole write.
	Admit(o *meshfedv1.Object, v policies.View) error
}

// storeRules are meshfed's rules: objects.ValidateRefs and, for meshes,
// policies.AdmitMesh (other kinds change policy; the scheduler rechecks
// stored meshes).
type storeRules struct{}

func (storeRules) CheckRefs(o *meshfedv1.Object, l objects.Lookup) error {
	return objects.ValidateRefs(o, l)
}

func (storeRules) Admit(o *meshfedv1.Object, v policies.View) error {
	if m := o.GetFunctionMesh(); m != nil {
		return policies.AdmitMesh(m, v)
	}
	return nil
}

// Config tunes a store.
type Config struct {
	// EventHistory bounds the change events kept for watches. Zero: DefaultEventHistory.
	EventHistory int
	// Rules replaces meshfed's rules, for tests of the store's mechanics
	// alone. Nil: objects.ValidateRefs and policies.AdmitMesh.
	Rules Rules
}

// Store holds the state. Reads are lock-free snapshots of the object tree and
// go-memdb; writes are serialized by the caller (the FSM applies one entry
// at a time) and by go-memdb's write lock.
type Store struct {
	db *memdb.MemDB
	// pub holds the published trees, replaced (under mu) by every commit
	// of a write transaction; see trees.
	pub atomic.Pointer[trees]
	cfg Config
	// rules checks user writes; set once by New.
	rules Rules
	// fn holds functions' state, beside go-memdb; set once by New.
	fn *fnStates

	// mu guards revision, events, compactRev and changed.
	mu sync.Mutex
	// revision is the index of the last entry applied; zero for an empty store.
	revision uint64
	// events holds the newest change events in revision order.
	events []*meshfedv1.Event
	// compactRev: events with revision > compactRev are all in events.
	compactRev uint64
	// changed is closed and replaced on every applied entry and on Abandon.
	changed chan struct{}
	// abandoned is set when a restore replaced this store.
	abandoned bool
	// batch, while a batch entry is applied, collects its sub-entries'
	// events (see BeginBatch); nil otherwise.
	batch *pendingBatch
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.EventHistory <= 0 {
		cfg.EventHistory = DefaultEventHistory
	}

	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("state: invalid schema: %v", err)) // static schema; cannot fail
	}
	// The store wakes its watchers itself (changed, events) and never
	// uses memdb's watch channels. memdb tracks mutations for those
	// channels only in its primary database, not in a snapshot of it, so
	// the store writes to a snapshot of the empty database: the same
	// transactions without a channel to close per changed node.
	db = db.Snapshot()
	rules := cfg.Rules
	if rules == nil {
		rules = storeRules{}
	}
	s := &Store{db: db, cfg: cfg, rules: rules, fn: newFnStates(), changed: make(chan struct{})}
	s.pub.Store(newTrees())
	return s
}

// Revision returns the index of the last applied entry.
func (s *Store) Revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision
}

// Changed returns a channel closed at the next applied entry (or when the
// store is abandoned after a restore).
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Abandoned reports whether a restore replaced this store.
func (s *Store) Abandoned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandoned
}

// Abandon marks the store replaced and wakes its watchers.
func (s *Store) Abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abandoned = true
	close(s.changed)
	s.changed = make(chan struct{})
}

// commitLocked records a new revision and its events and wakes watchers.
func (s *Store) commitLocked(index uint64, evs []*meshfedv1.Event) {
	if s.batch != nil {
		s.batch.events = append(s.batch.events, evs...)
		return
	}
	if index > s.revision {
		s.revision = index
	}
	s.events = append(s.events, evs...)
	// Trim only once the history exceeds its bound by a quarter, so the
	// copy is amortised over many writes instead of paid on each one.
	if over := len(s.events) - s.cfg.EventHistory; over > s.cfg.EventHistory/4 {
		s.compactRev = s.events[over-1].GetRevision()
		s.events = append(make([]*meshfedv1.Event, 0, s.cfg.EventHistory+s.cfg.EventHistory/4+1), s.events[over:]...)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Touch advances the revision without changing objects (entries that only
// affect Raft-level state still move the revision, so readers waiting for an
// index are released).
func (s *Store) Touch(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitLocked(index, nil)
}

// Get returns a copy-safe (read-only) object, or ErrNotFound.
func (s *Store) Get(kind, tenant, namespace, name string) (*meshfedv1.Object, uint64, error) {
	rev := s.Revision()
	e := objGet(s.pub.Load().objs, objects.Key(kind, tenant, namespace, name))
	if e == nil {
		return nil, rev, fmt.Errorf("%s %q: %w", kind, displayKey(tenant, namespace, name), ErrNotFound)
	}
	return e.Obj, rev, nil
}

// Filter selects objects for List and Watch. Empty fields match everything.
type Filter struct {
	Kind, Tenant, Namespace string
	// Kinds, when set, lists the kinds to match instead of Kind (which
	// is then empty).
	Kinds []string
	// Agent, when set, narrows assignments to those whose spec.agent is
	// Agent; an event of a put that moved one away from Agent matches too.
	// Other kinds are not narrowed by it.
	Agent string
	// Selector, when set, must match the object's labels.
	Selector func(labels map[string]string) bool
	// Match, when set, must accept the object (watches use it to drop
	// what the caller may not read).
	Match func(o *meshfedv1.Object) bool
}

func (f Filter) prefix() string {
	if f.Kind == "" {
		return ""
	}
	p := f.Kind + "/"
	if f.Tenant == "" {
		return p
	}
	p += f.Tenant + "/"
	if f.Namespace == "" {
		return p
	}
	return p + f.Namespace + "/"
}

// Matches reports whether an object passes the filter.
func (f Filter) Matches(o *meshfedv1.Object) bool {
	return f.matchesKeyed(objects.KeyOf(o), o)
}

// matchesKeyed is Matches for an object whose store key is known.
func (f Filter) matchesKeyed(key string, o *meshfedv1.Object) bool {
	if !strings.HasPrefix(key, f.prefix()) {
		return false
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, objects.KindOf(o).Name) {
		return false
	}
	if f.Agent != "" && o.GetAssignment() != nil && o.GetAssignment().GetSpec().GetAgent() != f.Agent {
		return false
	}
	md := objects.Meta(o)
	if f.Kind == "" && (f.Tenant != "" && md.GetTenant() != f.Tenant || f.Namespace != "" && md.GetNamespace() != f.Namespace) {
		return false
	}
	if f.Tenant != "" && f.Namespace == "" && md.GetTenant() != f.Tenant {
		return false
	}
	return (f.Selector == nil || f.Selector(md.GetLabels())) && (f.Match == nil || f.Match(o))
}

// List returns the objects matching f, in key order per kind (kinds in
// f.Kinds order), and the revision read.
func (s *Store) List(f Filter) ([]*meshfedv1.Object, uint64, error) {
	rev := s.Revision()
	objs := s.pub.Load().objs
	prefixes := []string{f.prefix()}
	if len(f.Kinds) > 0 {
		prefixes = prefixes[:0]
		for _, k := range f.Kinds {
			one := f
			one.Kind = k
			prefixes = append(prefixes, one.prefix())
		}
	}
	// When the prefix says all the filter asks (a kind, perhaps a tenant
	// and namespace), every object under it matches: nothing to check.
	byPrefix := f.Agent == "" && f.Selector == nil && f.Match == nil && (f.Kind != "" || len(f.Kinds) > 0 || f.Tenant == "" && f.Namespace == "")
	var out []*meshfedv1.Object
	for _, p := range prefixes {
		objScan(objs, p, func(e *entry) bool {
			if byPrefix || f.matchesKeyed(e.Key, e.Obj) {
				out = append(out, e.Obj)
			}
			return true
		})
	}
	return out, rev, nil
}

// matchesEvent reports whether an event passes the filter: its object
// does, or it moved an assignment away from f.Agent.
func (f Filter) matchesEvent(ev *meshfedv1.Event) bool {
	if f.Matches(ev.GetObject()) {
		return true
	}
	if f.Agent == "" || ev.GetPreviousAgent() != f.Agent {
		return false
	}
	moved := f
	moved.Agent = ""
	return moved.Matches(ev.GetObject())
}

// EventsAfter returns the events with revision > rev that match f, the
// current revision, and a channel closed on the next change. It returns
// ErrCompacted when events after rev are no longer all kept.
func (s *Store) EventsAfter(rev uint64, f Filter) ([]*meshfedv1.Event, uint64, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev < s.compactRev {
		return nil, s.revision, s.changed, fmt.Errorf("revision %d (oldest kept %d): %w", rev, s.compactRev, ErrCompacted)
	}
	// Binary search the first event after rev.
	lo, hi := 0, len(s.events)
	for lo < hi {
		mid := (lo + hi) / 2
		if s.events[mid].GetRevision() <= rev {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	var out []*meshfedv1.Event
	for _, ev := range s.events[lo:] {
		if f.matchesEvent(ev) {
			out = append(out, ev)
		}
	}
	return out, s.revision, s.changed, nil
}

// CompactRevision returns the revision after which the event history is complete.
func (s *Store) CompactRevision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactRev
}

// Members returns the recorded control-plane members.
func (s *Store) Members() []*raftlogv1.Member {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableMembers, "id")
	if err != nil {
		return nil
	}
	var out []*raftlogv1.Member
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*memberEntry).M)
	}
	return out
}

// Member returns one member record, or nil.
func (s *Store) Member(id string) *raftlogv1.Member {
	raw, err := s.db.Txn(false).First(tableMembers, "id", id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*memberEntry).M
}

// UpsertMember records a member's addresses at index.
func (s *Store) UpsertMember(index uint64, m *raftlogv1.Member) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if err := txn.Insert(tableMembers, &memberEntry{ID: m.GetId(), M: proto.Clone(m).(*raftlogv1.Member)}); err != nil {
		return fmt.Errorf("upsert member %q: %w", m.GetId(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
	return nil
}

// RemoveMember forgets a member at index. Removing an unknown member is not an error.
func (s *Store) RemoveMember(index uint64, id string) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	if _, err := txn.DeleteAll(tableMembers, "id", id); err != nil {
		return fmt.Errorf("remove member %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
	return nil
}

func displayKey(tenant, namespace, name string) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{tenant, namespace, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

func tsOrNil(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
}
