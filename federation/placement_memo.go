package federation

import (
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// Memo remembers, from one placement pass to the next, which stored
// assignments already run the spec their function asks for, so that a
// pass over an unchanged federation compares no specs. Stored objects are
// immutable and keep their identity until written again, so an entry is
// keyed by the two specs' pointers (and what else decides the effective
// spec: the instance, the cluster it runs in and whether its input and
// output clusters are usable). Only entries used in the last pass are
// kept. A Memo serves one caller at a time; the zero value is not usable
// (NewMemo), and a nil *Memo compares every spec.
type Memo struct {
	// cur and next map a stored spec to what it was found equal to.
	cur, next map[*meshfedv1.FunctionSpec]memoEntry
}

type memoEntry struct {
	fn                  *meshfedv1.FunctionSpec
	index               int
	run                 string
	inUsable, outUsable bool
}

// NewMemo returns an empty memo.
func NewMemo() *Memo {
	return &Memo{cur: map[*meshfedv1.FunctionSpec]memoEntry{}, next: map[*meshfedv1.FunctionSpec]memoEntry{}}
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

// endPass forgets the entries the pass did not use.
func (m *Memo) endPass() {
	if m == nil {
		return
	}
	m.cur, m.next = m.next, make(map[*meshfedv1.FunctionSpec]memoEntry, len(m.next))
}
