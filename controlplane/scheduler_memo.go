package controlplane

import (
	"errors"
	"slices"

	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// schedulerMemo carries what one scheduler pass learned to the next, so a
// pass over an unchanged federation redoes little: stored objects are
// immutable and keep their identity until written again, so results are
// keyed by the objects' pointers. Leader-only, used by the scheduler
// goroutine alone, rebuilt with every leadership.
type schedulerMemo struct {
	// plan memoizes placement's spec comparisons.
	plan *federation.Memo
	// admitted holds the meshes of the last pass policies.Recheck
	// accepted, valid while no policy object changed since policyRev of
	// policyStore.
	admitted    map[*meshfedv1.FunctionMesh]bool
	policyStore *state.Store
	policyRev   uint64
	// statusOf holds, per mesh whose computed status equalled its stored
	// one, the assignments it was computed from; next collects this pass's.
	statusOf, nextStatus map[*meshfedv1.FunctionMesh][]*meshfedv1.Assignment
	// lists are the meshes and assignments the last pass listed.
	lists listCache
	// statusFrom is every assignment the last status pass read, in the
	// order listed: while a pass lists the very same, each mesh in
	// statusOf has the same assignments as then.
	statusFrom []*meshfedv1.Assignment
}

func newSchedulerMemo() *schedulerMemo {
	return &schedulerMemo{plan: federation.NewMemo(), statusOf: map[*meshfedv1.FunctionMesh][]*meshfedv1.Assignment{}}
}

// policyKinds are the kinds policies.Recheck reads.
var policyKinds = []string{objects.KindCluster, objects.KindTenant, objects.KindNamespace, objects.KindGrant}

// admittedMeshes returns the meshes known to pass policies.Recheck, after
// forgetting them all if a policy object changed since the last pass (or
// the store was replaced, or its history compacted).
func (m *schedulerMemo) admittedMeshes(st *state.Store) map[*meshfedv1.FunctionMesh]bool {
	if m.policyStore == st {
		evs, rev, _, err := st.EventsAfter(m.policyRev, state.Filter{Kinds: policyKinds})
		if err == nil && len(evs) == 0 {
			m.policyRev = rev
			return m.admitted
		}
		if err != nil && !errors.Is(err, state.ErrCompacted) {
			m.policyStore = nil
			return map[*meshfedv1.FunctionMesh]bool{}
		}
	}
	m.policyStore, m.policyRev, m.admitted = st, st.Revision(), map[*meshfedv1.FunctionMesh]bool{}
	return m.admitted
}

// statusUnchanged reports whether mesh's status was found equal to the
// one computed from the same assignments in the last pass.
func (m *schedulerMemo) statusUnchanged(mesh *meshfedv1.FunctionMesh, as []*meshfedv1.Assignment) bool {
	prev, ok := m.statusOf[mesh]
	if ok && slices.Equal(prev, as) {
		m.nextStatus[mesh] = as
		return true
	}
	return false
}

// unchangedSince reports whether mesh's status was found equal to the
// one computed from its assignments in the last pass, and those are the
// same now: the pass lists the very assignments the last one did.
func (m *schedulerMemo) unchangedSince(mesh *meshfedv1.FunctionMesh, sameAssignments bool) bool {
	if !sameAssignments {
		return false
	}
	prev, ok := m.statusOf[mesh]
	if ok {
		m.nextStatus[mesh] = prev
	}
	return ok
}

// beginStatus starts a pass's status memo over current, the pass's
// assignments, and reports whether they are the very ones the last
// pass read; endStatus keeps what the pass used.
func (m *schedulerMemo) beginStatus(current []*meshfedv1.Assignment) (sameAssignments bool) {
	m.nextStatus = make(map[*meshfedv1.FunctionMesh][]*meshfedv1.Assignment, len(m.statusOf))
	sameAssignments = slices.Equal(current, m.statusFrom)
	m.statusFrom = current
	return sameAssignments
}

func (m *schedulerMemo) endStatus() { m.statusOf, m.nextStatus = m.nextStatus, nil }

// listCache is the scheduler's last listing of meshes and assignments.
// A store writes an event for every object it changes, so while no event
// of a kind came after the revision read before the listing, the store
// holds the very objects listed (the same pointers: stored objects keep
// their identity until written) and the listing is reused.
type listCache struct {
	// store is the store listed; nil: nothing reusable.
	store *state.Store
	// rev is the store revision read before the listing.
	rev         uint64
	meshes      []*meshfedv1.FunctionMesh
	assignments []*meshfedv1.Assignment
}

// unchanged reports, per kind, whether the last listing of st still
// holds, and advances the cache to st's current revision: the caller
// lists again the kinds that changed before using the cache.
func (c *listCache) unchanged(st *state.Store) (meshes, assignments bool) {
	rev := st.Revision() // before reading the events: a later write shows next pass
	if c.store == st {
		evs, _, _, err := st.EventsAfter(c.rev, state.Filter{Kinds: []string{objects.KindFunctionMesh, objects.KindAssignment}})
		if err == nil {
			meshes, assignments = true, true
			for _, ev := range evs {
				switch o := ev.GetObject(); {
				case o.GetFunctionMesh() != nil:
					meshes = false
				case o.GetAssignment() != nil:
					assignments = false
				default: // the filter's to say; list both again
					meshes, assignments = false, false
				}
			}
		}
	}
	c.store, c.rev = st, rev
	return meshes, assignments
}
