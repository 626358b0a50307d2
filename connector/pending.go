package connector

import (
	"fmt"
	"strconv"
)

// Pending holds what a source has read and not yet committed, in read
// order, and numbers it: the positions are "1", "2", ... across the
// source's life. A source whose upstream has no positions of its own
// hands these out in Read and takes the committed prefix back in Commit.
// It is not safe for concurrent use: the source guards it.
type Pending[T any] struct {
	items []T
	// last is the position of the last item added; items[0] is at
	// last-len(items)+1.
	last uint64
}

// Add appends item and returns its position.
func (p *Pending[T]) Add(item T) string {
	p.items = append(p.items, item)
	p.last++
	return strconv.FormatUint(p.last, 10)
}

// Take removes and returns the items up to position, in read order; none
// when position is before them (committed already). A position that is
// not a number is an error.
func (p *Pending[T]) Take(position string) ([]T, error) {
	n, err := strconv.ParseUint(position, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("position %q: %w", position, err)
	}
	first := p.last - uint64(len(p.items)) + 1
	if n < first {
		return nil, nil
	}
	k := min(int(n-first+1), len(p.items))
	done := p.items[:k]
	// A fresh array for the rest: the one done is in is not written
	// again, and the committed items are not kept alive.
	p.items = append(p.items[:0:0], p.items[k:]...)
	return done, nil
}

// TakeAll removes and returns every item; the positions go on from where
// they were.
func (p *Pending[T]) TakeAll() []T {
	all := p.items
	p.items = nil
	return all
}
