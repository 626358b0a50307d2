package federation

import (
	"maps"
	"slices"
	"sort"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// Memo carries what one placement pass learned to the next, so that a
// pass over an unchanged federation redoes little. Stored objects are
// immutable and keep their identity until written again, so entries are
// keyed by pointers. It holds:
//
//   - which stored assignments already run the spec their function asks
//     for, so that such a pass compares no specs: keyed by the two specs'
//     pointers (and what else decides the effective spec: the instance,
//     the cluster it runs in and whether its input and output clusters are
//     usable);
//   - per mesh, its sort key and whether the last pass found it settled
//     (see settledMesh): the next pass skips it while nothing it depends
//     on changed.
//
// Only entries used in the last pass are kept. A Memo serves one caller
// at a time; the zero value is not usable (NewMemo), and a nil *Memo
// compares every spec and plans every mesh.
type Memo struct {
	// cur and next map a stored spec to what it was found equal to.
	cur, next map[*meshfedv1.FunctionSpec]memoEntry
	// meshes holds what the passes know of each mesh they saw last;
	// pass counts the passes.
	meshes map[*meshfedv1.FunctionMesh]*meshMemo
	pass   uint64
	// agents and moveAfterRestarts are the last pass's inputs that
	// settled meshes depend on beyond their own objects; clusters the
	// views of the clusters settled meshes use, as the pass that last
	// saw each of those meshes settled found them (only those: a
	// federation may name many clusters no mesh uses).
	agents            map[string]Agent
	clusters          map[string]seenCluster
	moveAfterRestarts int
	// passClusters are this pass's cluster views; nextClusters collects
	// the views of the clusters this pass's settled meshes use.
	passClusters map[string]ClusterView
	nextClusters map[string]seenCluster
}

// seenCluster is a cluster's view as a pass found it; ok is false when
// the pass had no view of it.
type seenCluster struct {
	view ClusterView
	ok   bool
}

// watch keeps this pass's view of cluster c for the next pass to compare.
func (m *Memo) watch(c string) {
	if _, done := m.nextClusters[c]; done {
		return
	}
	v, ok := m.passClusters[c]
	m.nextClusters[c] = seenCluster{view: v, ok: ok}
}

type memoEntry struct {
	fn                  *meshfedv1.FunctionSpec
	index               int
	run                 string
	inUsable, outUsable bool
}

// meshMemo is what the passes know of one mesh object.
type meshMemo struct {
	key string // meshKey
	// pass is the last pass that saw the mesh.
	pass uint64
	// settled is what the last pass found, when it found the mesh settled.
	settled *settledMesh
}

// settledMesh is a mesh for which a pass planned nothing, every function
// running in its home cluster (so the decision waited on no clock, no
// fallback and no policy) with every instance it wants placed on a ready,
// capable agent of that cluster, running the spec it asks for and below
// the restarts that move an instance. A later pass plans nothing for the
// same mesh object either while the same assignments exist, their agents
// and the clusters its functions run in, read from and write to are as
// they were, and the mesh is not blocked: its decision read nothing else
// (the loads of other agents only matter to instances being placed, other
// clusters only to functions failing over). Such a pass skips it.
type settledMesh struct {
	// assignments are the instances the mesh wants, at their index in
	// the pass's Input.Assignments; specs the spec comparisons that found
	// them current.
	assignments []*meshfedv1.Assignment
	at          []int
	specs       []memoEntry
	// clusters are those the mesh's functions run in, read from and
	// write to.
	clusters []string
}

// NewMemo returns an empty memo.
func NewMemo() *Memo {
	return &Memo{cur: map[*meshfedv1.FunctionSpec]memoEntry{}, next: map[*meshfedv1.FunctionSpec]memoEntry{},
		meshes: map[*meshfedv1.FunctionMesh]*meshMemo{}, nextClusters: map[string]seenCluster{}}
}

// same reports whether stored equals want(), the spec instance i of f
// runs in cluster run.
func (m *Memo) same(stored, f *meshfedv1.FunctionSpec, i int, run string, clusters map[string]ClusterView, want func() *meshfedv1.FunctionSpec) bool {
	if m == nil {
		return proto.Equal(stored, want())
	}
	e := memoEntry{fn: f, index: i, run: run,
		inUsable: clusters[f.GetInput().GetCluster()].Usable(), outUsable: clusters[f.GetOutput().GetCluster()].Usable()}
	if got, ok := m.next[stored]; ok && got == e {
		return true
	}
	if got, ok := m.cur[stored]; ok && got == e || proto.Equal(stored, want()) {
		m.next[stored] = e
		return true
	}
	return false
}

// sortedMeshes returns meshes in the order of their keys (the slice
// itself when they already are, as a store lists them) and, with a memo,
// what it knows of each, in the same order.
func (m *Memo) sortedMeshes(meshes []*meshfedv1.FunctionMesh) ([]*meshfedv1.FunctionMesh, []*meshMemo) {
	keys := make([]string, len(meshes))
	var memos []*meshMemo
	if m == nil {
		for i, mesh := range meshes {
			keys[i] = meshKey(mesh)
		}
	} else {
		m.pass++
		memos = make([]*meshMemo, len(meshes))
		for i, mesh := range meshes {
			e := m.meshes[mesh]
			if e == nil {
				e = &meshMemo{key: meshKey(mesh)}
				m.meshes[mesh] = e
			}
			e.pass, memos[i], keys[i] = m.pass, e, e.key
		}
		if len(m.meshes) > len(meshes) {
			for mesh, e := range m.meshes {
				if e.pass != m.pass {
					delete(m.meshes, mesh) // gone, or rewritten as a new object
				}
			}
		}
	}
	if slices.IsSorted(keys) {
		return meshes, memos
	}
	idx := make([]int, len(meshes))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return keys[idx[i]] < keys[idx[j]] })
	out := make([]*meshfedv1.FunctionMesh, len(meshes))
	var outMemos []*meshMemo
	if memos != nil {
		outMemos = make([]*meshMemo, len(meshes))
	}
	for i, j := range idx {
		out[i] = meshes[j]
		if memos != nil {
			outMemos[i] = memos[j]
		}
	}
	return out, outMemos
}

// skipSettled returns, aligned with memos (the pass's meshes), those the
// last pass found settled that this pass can skip, and marks their
// assignments wanted (by index in in.Assignments). A settled mesh that
// cannot be skipped lends its spec comparisons to this pass.
func (m *Memo) skipSettled(in Input, memos []*meshMemo, wanted []bool) []bool {
	if m == nil {
		return nil
	}
	changed, changedClusters, allChanged := m.inputsChanged(in)
	skip := make([]bool, len(memos))
	var pos map[*meshfedv1.Assignment]int // of in.Assignments, built when first needed
	indexOf := func(a *meshfedv1.Assignment, at int) (int, bool) {
		if at < len(in.Assignments) && in.Assignments[at] == a {
			return at, true // where it was: no assignment came or went before it
		}
		if pos == nil {
			pos = make(map[*meshfedv1.Assignment]int, len(in.Assignments))
			for j, a := range in.Assignments {
				pos[a] = j
			}
		}
		j, ok := pos[a]
		return j, ok
	}
	for i, e := range memos {
		sm := e.settled
		e.settled = nil
		if sm == nil {
			continue
		}
		ok := !allChanged
		for _, c := range sm.clusters {
			if !ok {
				break
			}
			ok = !changedClusters[c]
		}
		if ok && len(in.Blocked) > 0 {
			_, blocked := in.Blocked[e.key]
			ok = !blocked
		}
		for k, a := range sm.assignments {
			if !ok {
				break
			}
			sm.at[k], ok = indexOf(a, sm.at[k])
			ok = ok && (len(changed) == 0 || !changed[a.GetSpec().GetAgent()])
		}
		if !ok {
			for k, a := range sm.assignments {
				if _, known := m.cur[a.GetSpec().GetFunctionSpec()]; !known {
					m.cur[a.GetSpec().GetFunctionSpec()] = sm.specs[k]
				}
			}
			continue
		}
		for _, j := range sm.at {
			wanted[j] = true
		}
		for _, c := range sm.clusters {
			m.watch(c)
		}
		skip[i] = true
		e.settled = sm
	}
	return skip
}

// inputsChanged compares this pass's agents, the clusters settled meshes
// use and the restart threshold with the last pass's and remembers this
// pass's: it returns the agents that changed or left, the clusters whose
// view changed (or that came or went), or allChanged when anything every
// settled mesh may depend on changed.
func (m *Memo) inputsChanged(in Input) (changed, changedClusters map[string]bool, allChanged bool) {
	agents := make(map[string]Agent, len(in.Agents))
	for _, a := range in.Agents {
		if _, dup := agents[a.Name]; dup {
			allChanged = true // which one placement sees is not this memo's to say
		}
		agents[a.Name] = a
	}
	for name, old := range m.agents {
		if a, ok := agents[name]; !ok || !sameAgent(a, old) {
			if changed == nil {
				changed = map[string]bool{}
			}
			changed[name] = true
		}
	}
	for name, old := range m.clusters {
		if v, ok := in.Clusters[name]; ok != old.ok || v != old.view {
			if changedClusters == nil {
				changedClusters = map[string]bool{}
			}
			changedClusters[name] = true
		}
	}
	allChanged = allChanged || m.agents == nil || in.MoveAfterRestarts != m.moveAfterRestarts
	m.agents, m.passClusters, m.moveAfterRestarts = agents, in.Clusters, in.MoveAfterRestarts
	return changed, changedClusters, allChanged
}

// sameAgent reports whether placement sees a and b alike.
func sameAgent(a, b Agent) bool {
	return a.Name == b.Name && a.Cluster == b.Cluster && a.Capacity == b.Capacity && a.Ready == b.Ready &&
		a.CPUMillis == b.CPUMillis && a.MemoryBytes == b.MemoryBytes &&
		slices.Equal(a.Runtimes, b.Runtimes) && slices.Equal(a.Interpreters, b.Interpreters) && maps.Equal(a.Labels, b.Labels)
}

// settle records that this pass found mesh (of e) settled with these
// assignments, at these indexes of its Input.Assignments.
func (m *Memo) settle(e *meshMemo, mesh *meshfedv1.FunctionMesh, assignments []*meshfedv1.Assignment, at []int) {
	sm := &settledMesh{assignments: assignments, at: at, specs: make([]memoEntry, len(assignments))}
	for i, a := range assignments {
		sm.specs[i] = m.next[a.GetSpec().GetFunctionSpec()]
	}
	for _, f := range objects.MeshFunctions(mesh.GetSpec()) {
		for _, c := range []string{PlacementCluster(f), f.GetInput().GetCluster(), f.GetOutput().GetCluster()} {
			if !slices.Contains(sm.clusters, c) {
				sm.clusters = append(sm.clusters, c)
				m.watch(c)
			}
		}
	}
	e.settled = sm
}

// endPass forgets the spec comparisons the pass did not use.
func (m *Memo) endPass() {
	if m == nil {
		return
	}
	m.cur, m.next = m.next, make(map[*meshfedv1.FunctionSpec]memoEntry, len(m.next))
	m.clusters, m.nextClusters = m.nextClusters, make(map[string]seenCluster, len(m.nextClusters))
	m.passClusters = nil
}
