package logstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

const (
	// DefaultSegmentSize is the size past which appends go to a new segment.
	DefaultSegmentSize = 64 << 20
	firstIndexFile     = "first-index"
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// SegmentSize is the size in bytes past which the next batch starts a
	// new segment file. Zero: DefaultSegmentSize.
	SegmentSize int64
}

// Recovery says what Open repaired.
type Recovery struct {
	// TruncatedFile is the segment whose unacknowledged tail was cut off;
	// empty when nothing was.
	TruncatedFile string
	// TruncatedAt is the offset the file was cut at; TruncatedBytes how
	// many bytes were dropped.
	TruncatedAt, TruncatedBytes int64
	// TruncatedReason describes the first bad record that was dropped.
	TruncatedReason string
	// Removed lists files dropped: segments wholly before the first index
	// (an interrupted compaction) and a last segment with no complete
	// record (an interrupted creation).
	Removed []string
}

// segment is one open segment file.
type segment struct {
	base uint64 // index of its first record
	path string
	f    *os.File
	// locs are the records, index base+i at locs[i]; guarded by Store.mu
	// for readers, changed only with Store.writeMu and Store.mu held.
	locs []loc
	// size is the offset appends continue at; guarded by Store.writeMu.
	size int64
}

func (g *segment) lastIndex() uint64 { return g.base + uint64(len(g.locs)) - 1 }

// Store is a Raft log store in a directory of segment files. It implements
// raft.LogStore and raft.MonotonicLogStore. Reads run concurrently with an
// append; appends and deletes run one at a time.
type Store struct {
	dir  string
	opts Options

	// writeMu serializes StoreLogs, DeleteRange and Close.
	writeMu sync.Mutex
	// floor is the persisted first index (0: none); guarded by writeMu.
	floor uint64
	// failed is set when a failed write could not be undone; guarded by
	// writeMu. Every later write returns it.
	failed error
	// buf is reused to encode batches; guarded by writeMu.
	buf []byte

	// mu guards the fields below; writers hold writeMu too.
	mu sync.RWMutex
	// segs are the segment files in index order; empty iff the log is.
	segs []*segment
	// first and last are the first and last stored index; 0 when empty.
	first, last uint64
	closed      bool

	recovered Recovery
}

var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
)

// Open opens or creates the log in dir, checking every record and
// truncating a torn tail (see the package comment).
func Open(dir string, opts Options) (*Store, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	s := &Store{dir: dir, opts: opts}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// Recovered says what Open repaired.
func (s *Store) Recovered() Recovery {
	return s.recovered
}

func (s *Store) recover() error {
	floor, err := readFirstIndex(s.dir)
	if err != nil {
		return err
	}
	s.floor = floor
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list log dir: %w", err)
	}
	var bases []uint64
	for _, e := range entries {
		if base, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		} else if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
	slices.Sort(bases)
	for i, base := range bases {
		if err := s.openSegment(base, i == len(bases)-1); err != nil {
			return err
		}
	}
	// Drop segments an interrupted compaction left wholly before the floor.
	for len(s.segs) > 0 && s.segs[0].lastIndex() < floor {
		g := s.segs[0]
		s.segs = s.segs[1:]
		g.f.Close()
		if err := os.Remove(g.path); err != nil {
			return fmt.Errorf("remove compacted segment: %w", err)
		}
		s.recovered.Removed = append(s.recovered.Removed, g.path)
	}
	for i := 1; i < len(s.segs); i++ {
		if prev := s.segs[i-1].lastIndex(); s.segs[i].base != prev+1 {
			return fmt.Errorf("%w: %s starts at index %d, the segment before ends at %d", ErrCorrupt, s.segs[i].path, s.segs[i].base, prev)
		}
	}
	if len(s.segs) > 0 {
		s.first = max(floor, s.segs[0].base)
		s.last = s.segs[len(s.segs)-1].lastIndex()
	}
	return nil
}

// openSegment checks one segment file and appends it to s.segs.
func (s *Store) openSegment(base uint64, last bool) error {
	path := filepath.Join(s.dir, segName(base))
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read log segment: %w", err)
	}
	sc, err := scanSegment(data, base)
	if err != nil {
		// A last segment whose header is bad and that holds no later batch
		// was being created when the process died: nothing in it was
		// acknowledged.
		if last && findBatchStart(data, 0, base+1) < 0 {
			s.recovered.Removed = append(s.recovered.Removed, path)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove torn segment: %w", err)
			}
			return nil
		}
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if sc.badErr != nil {
		switch {
		case !last:
			return fmt.Errorf("%w: %s offset %d: %v (not the last segment)", ErrCorrupt, path, sc.end, sc.badErr)
		case errors.Is(sc.badErr, ErrCorrupt):
			return fmt.Errorf("%s offset %d: %w", path, sc.end, sc.badErr)
		case sc.laterBatch >= 0:
			return fmt.Errorf("%w: %s offset %d: %v (a later batch starts at offset %d)", ErrCorrupt, path, sc.end, sc.badErr, sc.laterBatch)
		}
	}
	if last && len(sc.locs) == 0 {
		// Created for a batch that never completed.
		s.recovered.Removed = append(s.recovered.Removed, path)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove torn segment: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	if sc.end < int64(len(data)) {
		if err := f.Truncate(sc.end); err != nil {
			f.Close()
			return fmt.Errorf("truncate torn tail of %s: %w", path, err)
		}
		if err := datasync(f); err != nil {
			f.Close()
			return fmt.Errorf("sync %s: %w", path, err)
		}
		s.recovered.TruncatedFile = path
		s.recovered.TruncatedAt = sc.end
		s.recovered.TruncatedBytes = int64(len(data)) - sc.end
		s.recovered.TruncatedReason = sc.badErr.Error()
	}
	s.segs = append(s.segs, &segment{base: base, path: path, f: f, locs: sc.locs, size: sc.end})
	return nil
}

// IsMonotonic implements raft.MonotonicLogStore: the store refuses gaps, so
// Raft empties it after restoring a snapshot instead of leaving a gap.
func (s *Store) IsMonotonic() bool { return true }

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.first, nil
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.last, nil
}

var readBufs = sync.Pool{New: func() any { return new([]byte) }}

// GetLog implements raft.LogStore.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.last == 0 || index < s.first || index > s.last {
		return raft.ErrLogNotFound
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > index }) - 1
	g := s.segs[i]
	at := g.locs[index-g.base]
	bp := readBufs.Get().(*[]byte)
	if cap(*bp) < int(at.size) {
		*bp = make([]byte, at.size)
	}
	b := (*bp)[:at.size]
	defer func() {
		if cap(*bp) <= 1<<20 { // do not keep one huge entry's buffer
			readBufs.Put(bp)
		}
	}()
	if _, err := g.f.ReadAt(b, at.off); err != nil {
		return fmt.Errorf("read log %d from %s offset %d: %w", index, g.path, at.off, err)
	}
	if err := decodeRecord(b, index, l); err != nil {
		return fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, g.path, at.off, err)
	}
	return nil
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore: it appends the batch, which must
// continue the stored indexes one by one (or start anywhere when the log is
// empty), and syncs once.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	if logs[0].Index == 0 {
		return fmt.Errorf("%w: index 0", ErrNotContiguous)
	}
	if s.last != 0 && logs[0].Index != s.last+1 {
		return fmt.Errorf("%w: batch starts at %d, last stored is %d", ErrNotContiguous, logs[0].Index, s.last)
	}
	for i, l := range logs {
		if n := recordSize(l) - headerSize; n > maxPayload {
			return fmt.Errorf("%w: entry %d encodes to %d bytes, at most %d fit a record", ErrTooLarge, l.Index, n, maxPayload)
		}
		if i > 0 && l.Index != logs[i-1].Index+1 {
			return fmt.Errorf("%w: %d follows %d in the batch", ErrNotContiguous, l.Index, logs[i-1].Index)
		}
	}

	var g *segment
	fresh := len(s.segs) == 0 || s.segs[len(s.segs)-1].size >= s.opts.SegmentSize
	pos := int64(0)
	buf := s.buf[:0]
	if fresh {
		if len(s.segs) == 0 && s.floor > logs[0].Index {
			// The log restarts below a compaction floor (after a snapshot
			// was installed): lower the floor first or reopening would
			// hide the new records.
			if err := writeFirstIndex(s.dir, logs[0].Index); err != nil {
				return err
			}
			s.floor = logs[0].Index
		}
		buf = appendSegHeader(buf, logs[0].Index)
	} else {
		g = s.segs[len(s.segs)-1]
		pos = g.size
	}
	locs := make([]loc, 0, len(logs))
	for i, l := range logs {
		var flags byte
		if i == 0 {
			flags = flagBatchStart
		}
		start := len(buf)
		buf = appendRecord(buf, l, flags)
		locs = append(locs, loc{off: pos + int64(start), size: uint32(len(buf) - start)})
	}
	s.buf = buf
	if cap(s.buf) > 16<<20 {
		s.buf = nil // do not pin one huge batch's buffer
	}

	if fresh {
		var err error
		if g, err = s.createSegment(logs[0].Index, buf); err != nil {
			return err
		}
	} else if err := s.appendLocked(g, buf); err != nil {
		return err
	}

	s.mu.Lock()
	if fresh {
		s.segs = append(s.segs, g)
	}
	g.locs = append(g.locs, locs...)
	if s.first == 0 {
		s.first = logs[0].Index
	}
	s.last = logs[len(logs)-1].Index
	s.mu.Unlock()
	return nil
}

// appendLocked writes buf at the end of g and syncs; on failure it cuts
// the file back so no partial batch stays behind.
func (s *Store) appendLocked(g *segment, buf []byte) error {
	_, err := g.f.WriteAt(buf, g.size)
	if err == nil {
		err = datasync(g.f)
	}
	if err != nil {
		if terr := g.f.Truncate(g.size); terr != nil {
			s.failed = fmt.Errorf("%w: cut back %s after a failed write: %v", ErrFailed, g.path, terr)
		}
		return fmt.Errorf("append to %s: %w", g.path, err)
	}
	g.size += int64(len(buf))
	return nil
}

// createSegment writes a new segment holding buf (header and records),
// syncs it and its directory entry.
func (s *Store) createSegment(base uint64, buf []byte) (*segment, error) {
	path := filepath.Join(s.dir, segName(base))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log segment: %w", err)
	}
	_, err = f.WriteAt(buf, 0)
	if err == nil {
		err = datasync(f)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		f.Close()
		if rerr := os.Remove(path); rerr != nil && !os.IsNotExist(rerr) {
			s.failed = fmt.Errorf("%w: remove %s after a failed write: %v", ErrFailed, path, rerr)
		}
		return nil, fmt.Errorf("write new log segment %s: %w", path, err)
	}
	return &segment{base: base, path: path, f: f, size: int64(len(buf))}, nil
}

func (s *Store) writableLocked() error {
	if s.failed != nil {
		return s.failed
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// DeleteRange implements raft.LogStore for the two ranges Raft deletes: a
// head (min at or before the first index: compaction after a snapshot, or
// everything after a snapshot is installed) and a tail (max at or past the
// last index: entries that conflict with a new leader's).
func (s *Store) DeleteRange(min, max uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	if s.last == 0 || min > max || max < s.first || min > s.last {
		return nil
	}
	switch {
	case min <= s.first && max >= s.last:
		return s.deleteHeadLocked(max+1, true)
	case min <= s.first:
		return s.deleteHeadLocked(max+1, false)
	case max >= s.last:
		return s.deleteTailLocked(min)
	default:
		return fmt.Errorf("%w: [%d, %d] of [%d, %d]", ErrMiddleDelete, min, max, s.first, s.last)
	}
}

// deleteHeadLocked persists first as the first index, then removes the
// segments wholly before it (all of them when all is set).
func (s *Store) deleteHeadLocked(first uint64, all bool) error {
	if err := writeFirstIndex(s.dir, first); err != nil {
		return err
	}
	s.floor = first
	s.mu.Lock()
	var drop []*segment
	if all {
		drop, s.segs = s.segs, nil
		s.first, s.last = 0, 0
	} else {
		n := 0
		for n < len(s.segs)-1 && s.segs[n].lastIndex() < first {
			n++
		}
		drop = slices.Clone(s.segs[:n])
		s.segs = slices.Delete(s.segs, 0, n)
		s.first = first
	}
	s.mu.Unlock()
	// Files left behind by a failure here are below the persisted first
	// index and Open removes them; until then the store takes no writes, so
	// a later segment can never meet a leftover one.
	var errs []error
	for _, g := range drop {
		g.f.Close()
		if err := os.Remove(g.path); err != nil {
			errs = append(errs, fmt.Errorf("remove compacted segment: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.failed = fmt.Errorf("%w: %v", ErrFailed, err)
		return err
	}
	return nil
}

// deleteTailLocked removes the records from index min on: later segments
// first (their removal made durable), then the file holding min is cut at
// min's record and synced, so a crash at any step leaves a prefix of the
// log.
func (s *Store) deleteTailLocked(min uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := false
	for len(s.segs) > 0 && s.segs[len(s.segs)-1].base >= min {
		g := s.segs[len(s.segs)-1]
		g.f.Close()
		if err := os.Remove(g.path); err != nil {
			s.failed = fmt.Errorf("%w: remove %s: %v", ErrFailed, g.path, err)
			return fmt.Errorf("truncate log: %w", err)
		}
		s.segs = s.segs[:len(s.segs)-1]
		removed = true
	}
	if removed {
		if err := syncDir(s.dir); err != nil {
			s.failed = fmt.Errorf("%w: sync log dir: %v", ErrFailed, err)
			return fmt.Errorf("truncate log: sync dir: %w", err)
		}
	}
	s.last = min - 1
	g := s.segs[len(s.segs)-1] // min > first, so a segment holds min-1
	keep := min - g.base
	if keep == uint64(len(g.locs)) {
		return nil
	}
	off := g.locs[keep].off
	if err := g.f.Truncate(off); err != nil {
		s.failed = fmt.Errorf("%w: truncate %s: %v", ErrFailed, g.path, err)
		return fmt.Errorf("truncate log: %w", err)
	}
	if err := datasync(g.f); err != nil {
		s.failed = fmt.Errorf("%w: sync %s: %v", ErrFailed, g.path, err)
		return fmt.Errorf("truncate log: sync: %w", err)
	}
	g.locs = g.locs[:keep]
	g.size = off
	return nil
}

// Close closes the segment files. Every later call returns ErrClosed.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, g := range s.segs {
		if err := g.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", g.path, err))
		}
	}
	return errors.Join(errs...)
}
