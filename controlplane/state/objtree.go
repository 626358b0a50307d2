package state

import (
	"strings"

	"github.com/google/btree"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// trees are the store's copy-on-write trees: the objects and the audit
// records. A published set (Store.pub) is never changed: a write clones it,
// which costs nothing until a clone changes, and then copies only the nodes
// on the paths it changes; the write's commit publishes the clones. Readers
// load the published set and read it without a lock. Per object write this
// costs a fifth of a go-memdb insert and a tenth of its allocations:
// go-memdb's radix tree copies more nodes, makes a watch channel for each
// and tracks them in a cache.
type trees struct {
	objs  *objTree
	audit *auditTree
}

func newTrees() *trees { return &trees{objs: newObjTree(), audit: newAuditTree()} }

// clone returns trees for a write to change; t stays as it is. Clones of
// one published set must not run concurrently: writers take go-memdb's
// write lock first.
func (t *trees) clone() *trees { return &trees{objs: t.objs.Clone(), audit: t.audit.Clone()} }

// objTree holds the stored objects in key order.
type objTree = btree.BTreeG[*entry]

// auditTree holds the audit records in log order: by revision, then seq.
type auditTree = btree.BTreeG[*meshfedv1.AuditRecord]

// treeDegree is the B-trees' degree: nodes hold up to 2×degree-1 items.
const treeDegree = 32

func newObjTree() *objTree {
	return btree.NewG(treeDegree, func(a, b *entry) bool { return a.Key < b.Key })
}

func newAuditTree() *auditTree {
	return btree.NewG(treeDegree, func(a, b *meshfedv1.AuditRecord) bool {
		return a.GetRevision() < b.GetRevision() || a.GetRevision() == b.GetRevision() && a.GetSeq() < b.GetSeq()
	})
}

// objGet returns the entry stored at key, or nil.
func objGet(t *objTree, key string) *entry {
	e, _ := t.Get(&entry{Key: key})
	return e
}

// objScan calls fn with the entries whose key starts with prefix, in key
// order, until fn returns false.
func objScan(t *objTree, prefix string, fn func(*entry) bool) {
	t.AscendGreaterOrEqual(&entry{Key: prefix}, func(e *entry) bool {
		return strings.HasPrefix(e.Key, prefix) && fn(e)
	})
}

// objList returns the objects whose key starts with prefix, in key order.
func objList(t *objTree, prefix string) []*entry {
	var out []*entry
	objScan(t, prefix, func(e *entry) bool {
		out = append(out, e)
		return true
	})
	return out
}
