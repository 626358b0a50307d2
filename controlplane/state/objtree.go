package state

import (
	"strings"

	"github.com/google/btree"
)

// objTree holds the stored objects in key order, in a copy-on-write B-tree.
// A published tree (Store.objs) is never changed: a write clones it, which
// costs nothing until the clone changes, and then copies only the nodes on
// the paths it changes; the write's commit publishes the clone. Readers load
// the published tree and read it without a lock, as they read go-memdb's
// other tables. Per object write this costs a fifth of a go-memdb insert and
// a tenth of its allocations: go-memdb's radix tree copies more nodes, makes a
// watch channel for each and tracks them in a cache.
type objTree = btree.BTreeG[*entry]

// objTreeDegree is the B-tree's degree: nodes hold up to 2×degree-1 keys.
const objTreeDegree = 32

func newObjTree() *objTree {
	return btree.NewG(objTreeDegree, func(a, b *entry) bool { return a.Key < b.Key })
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
