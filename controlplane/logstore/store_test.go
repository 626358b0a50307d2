package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// entry is the deterministic log at index i used by the tests: its term,
// data and extensions follow from i, so a reader can check any entry.
func entry(i uint64) *raft.Log {
	l := &raft.Log{
		Index: i,
		Term:  i/7 + 1,
		Type:  raft.LogType(i % 4),
		Data:  bytes.Repeat([]byte{byte(i)}, int(i%97)+1),
	}
	if i%3 == 0 {
		l.Extensions = []byte(fmt.Sprintf("ext-%d", i))
	}
	if i%2 == 0 {
		l.AppendedAt = time.Unix(1_700_000_000, int64(i)).UTC()
	}
	return l
}

func entries(from, to uint64) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, entry(i))
	}
	return ls
}

func open(t *testing.T, dir string, segSize int64) *Store {
	t.Helper()
	s, err := Open(dir, Options{SegmentSize: segSize})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkRange asserts the store holds exactly [first, last] with the
// deterministic entries.
func checkRange(t *testing.T, s *Store, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("range [%d, %d], want [%d, %d]", f, l, first, last)
	}
	for _, i := range []uint64{first - 1, last + 1} {
		var got raft.Log
		if err := s.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) && (i != 0 || first != 0) {
			t.Fatalf("GetLog(%d) outside [%d, %d]: %v, want ErrLogNotFound", i, first, last, err)
		}
	}
	if first == 0 {
		return
	}
	for i := first; i <= last; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		checkEntry(t, &got, entry(i))
	}
}

func checkEntry(t *testing.T, got, want *raft.Log) {
	t.Helper()
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
		!got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("entry %d: got %+v, want %+v", want.Index, got, want)
	}
}

func TestStoreInterface(t *testing.T) {
	type step struct {
		store    []*raft.Log // StoreLogs
		del      [2]uint64   // DeleteRange when del[1] != 0
		wantErr  error
		reopen   bool
		segSize  int64
		first    uint64 // expected range after the step
		last     uint64
		skipRead bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"empty", []step{{first: 0, last: 0}, {reopen: true}}},
		{"append and read", []step{
			{store: entries(1, 10), first: 1, last: 10},
			{store: []*raft.Log{entry(11)}, first: 1, last: 11},
			{reopen: true, first: 1, last: 11},
		}},
		{"first batch may start anywhere", []step{{store: entries(100, 105), first: 100, last: 105}}},
		{"gap after last refused", []step{
			{store: entries(1, 5), first: 1, last: 5},
			{store: entries(7, 8), wantErr: ErrNotContiguous, first: 1, last: 5},
			{store: entries(5, 6), wantErr: ErrNotContiguous, first: 1, last: 5},
		}},
		{"gap inside batch refused", []step{
			{store: []*raft.Log{entry(1), entry(3)}, wantErr: ErrNotContiguous},
		}},
		{"index zero refused", []step{{store: []*raft.Log{{Index: 0}}, wantErr: ErrNotContiguous}}},
		{"head compaction", []step{
			{store: entries(1, 50), first: 1, last: 50},
			{del: [2]uint64{1, 20}, first: 21, last: 50},
			{reopen: true, first: 21, last: 50},
			{store: entries(51, 60), first: 21, last: 60},
		}},
		{"head compaction across segments", []step{
			{store: entries(1, 10), segSize: 256, first: 1, last: 10},
			{store: entries(11, 20), first: 1, last: 20},
			{store: entries(21, 30), first: 1, last: 30},
			{del: [2]uint64{1, 25}, first: 26, last: 30},
			{reopen: true, first: 26, last: 30},
		}},
		{"tail truncation inside a segment", []step{
			{store: entries(1, 30), first: 1, last: 30},
			{del: [2]uint64{17, 30}, first: 1, last: 16},
			{reopen: true, first: 1, last: 16},
			{store: entries(17, 40), first: 1, last: 40},
			{reopen: true, first: 1, last: 40},
		}},
		{"tail truncation across segments", []step{
			{store: entries(1, 10), segSize: 256, first: 1, last: 10},
			{store: entries(11, 20), first: 1, last: 20},
			{store: entries(21, 30), first: 1, last: 30},
			{del: [2]uint64{11, 30}, first: 1, last: 10},
			{reopen: true, first: 1, last: 10},
			{store: entries(11, 12), first: 1, last: 12},
			{del: [2]uint64{5, 12}, first: 1, last: 4},
			{reopen: true, first: 1, last: 4},
		}},
		{"delete everything then restart below the old floor", []step{
			{store: entries(1, 100), first: 1, last: 100},
			{del: [2]uint64{1, 100}, first: 0, last: 0},
			{reopen: true, first: 0, last: 0},
			{store: entries(60, 70), first: 60, last: 70},
			{reopen: true, first: 60, last: 70},
		}},
		{"delete everything then restart above it", []step{
			{store: entries(1, 10), first: 1, last: 10},
			{del: [2]uint64{1, 10}, first: 0, last: 0},
			{store: entries(500, 501), first: 500, last: 501},
			{reopen: true, first: 500, last: 501},
		}},
		{"middle delete refused", []step{
			{store: entries(1, 10), first: 1, last: 10},
			{del: [2]uint64{3, 5}, wantErr: ErrMiddleDelete, first: 1, last: 10},
		}},
		{"delete outside the log is a no-op", []step{
			{store: entries(5, 10), first: 5, last: 10},
			{del: [2]uint64{1, 4}, first: 5, last: 10},
			{del: [2]uint64{11, 20}, first: 5, last: 10},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			segSize := int64(0)
			for _, st := range tt.steps {
				if st.segSize != 0 {
					segSize = st.segSize
				}
			}
			s := open(t, dir, segSize)
			for i, st := range tt.steps {
				var err error
				switch {
				case st.reopen:
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = open(t, dir, segSize)
				case st.store != nil:
					err = s.StoreLogs(st.store)
				case st.del[1] != 0:
					err = s.DeleteRange(st.del[0], st.del[1])
				}
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d: err %v, want %v", i, err, st.wantErr)
				}
				checkRange(t, s, st.first, st.last)
			}
		})
	}
}

func TestClosedStoreRefuses(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	if err := s.StoreLogs(entries(1, 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var l raft.Log
	for name, err := range map[string]error{
		"StoreLogs":   s.StoreLogs(entries(3, 3)),
		"GetLog":      s.GetLog(1, &l),
		"DeleteRange": s.DeleteRange(1, 1),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// segFiles lists the segment files of dir in index order.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRecovery(t *testing.T) {
	// Each case writes entries 1..30 in batches of 10, one segment per
	// batch unless oneSegment, damages the files, and reopens.
	tests := []struct {
		name       string
		oneSegment bool
		damage     func(t *testing.T, files []string)
		wantErr    string // substring; empty: open succeeds
		last       uint64 // last index after a successful open
	}{
		{"clean", false, func(*testing.T, []string) {}, "", 30},
		{"torn last record", false, func(t *testing.T, fs []string) { cut(t, fs[len(fs)-1], 7) }, "", 29},
		{"torn last header", false, func(t *testing.T, fs []string) {
			// cut inside the header of record 30
			cut(t, fs[len(fs)-1], int64(recordSize(entry(30))-5))
		}, "", 29},
		{"garbage appended", false, func(t *testing.T, fs []string) { appendBytes(t, fs[len(fs)-1], []byte("MW\x01\x01garbage")) }, "", 30},
		{"zeros appended", false, func(t *testing.T, fs []string) { appendBytes(t, fs[len(fs)-1], make([]byte, 4096)) }, "", 30},
		{"flipped byte in last record", false, func(t *testing.T, fs []string) { flip(t, fs[len(fs)-1], -3) }, "", 29},
		{"flipped byte in an earlier segment", false, func(t *testing.T, fs []string) { flip(t, fs[0], -3) }, "not the last segment", 0},
		{"flipped byte before a later batch", true, func(t *testing.T, fs []string) {
			// record 1 starts the first batch; two batches follow
			flip(t, fs[0], segHeaderSize+headerSize+2)
		}, "a later batch starts", 0},
		{"flipped byte in the last batch", true, func(t *testing.T, fs []string) {
			// record 22 is inside the last batch, which was never
			// followed by another: indistinguishable from a torn write.
			// The records before it stay.
			flip(t, fs[0], segHeaderSize+int64(sizes(1, 21))+headerSize+2)
		}, "", 21},
		{"segment missing in the middle", false, func(t *testing.T, fs []string) {
			if len(fs) < 3 {
				t.Fatalf("want 3 segments, have %d", len(fs))
			}
			os.Remove(fs[1])
		}, "the segment before ends at", 0},
		{"bad segment header", false, func(t *testing.T, fs []string) { flip(t, fs[0], 3) }, "segment header", 0},
		{"corrupt first-index file", false, func(t *testing.T, fs []string) {
			appendBytes(t, filepath.Join(filepath.Dir(fs[0]), firstIndexFile), []byte("xyz"))
		}, firstIndexFile, 0},
		{"torn new segment", false, func(t *testing.T, fs []string) {
			appendBytes(t, filepath.Join(filepath.Dir(fs[0]), segName(31)), []byte("MFWAL"))
		}, "", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			segSize := int64(1)
			if tt.oneSegment {
				segSize = 1 << 20
			}
			s := open(t, dir, segSize)
			for b := uint64(0); b < 3; b++ {
				if err := s.StoreLogs(entries(b*10+1, b*10+10)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			files := segFiles(t, dir)
			tt.damage(t, files)
			s2, err := Open(dir, Options{SegmentSize: segSize})
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("open: %v, want ErrCorrupt containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), dir) {
					t.Fatalf("open error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s2.Close()
			checkRange(t, s2, 1, tt.last)
			// The repaired log takes the next batch where it ends.
			if err := s2.StoreLogs(entries(tt.last+1, tt.last+3)); err != nil {
				t.Fatal(err)
			}
			s2.Close()
			s3 := open(t, dir, segSize)
			checkRange(t, s3, 1, tt.last+3)
			if r := s3.Recovered(); r.TruncatedFile != "" || len(r.Removed) != 0 {
				t.Fatalf("second open repaired again: %+v", r)
			}
		})
	}
}

// sizes is the framed size of entries from..to.
func sizes(from, to uint64) int {
	n := 0
	for i := from; i <= to; i++ {
		n += recordSize(entry(i))
	}
	return n
}

func cut(t *testing.T, path string, n int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-n); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// flip inverts one byte of path at off (negative: from the end).
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentReadsDuringAppends(t *testing.T) {
	s := open(t, t.TempDir(), 4096)
	done := make(chan error)
	go func() {
		for b := uint64(0); b < 50; b++ {
			if err := s.StoreLogs(entries(b*4+1, b*4+4)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			checkRange(t, s, 1, 200)
			return
		default:
		}
		last, _ := s.LastIndex()
		for i := uint64(1); i <= last; i += 7 {
			var got raft.Log
			if err := s.GetLog(i, &got); err != nil {
				t.Fatalf("GetLog(%d) with last %d: %v", i, last, err)
			}
			checkEntry(t, &got, entry(i))
		}
	}
}

// TestLeftoverSegmentsBelowFloor keeps copies of segments a compaction
// removed, as a crash before the removals reached the disk would, and
// checks that reopening drops them instead of seeing a gap.
func TestLeftoverSegmentsBelowFloor(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, 1) // one segment per batch
			for b := uint64(0); b < 3; b++ {
				if err := s.StoreLogs(entries(b*10+1, b*10+10)); err != nil {
					t.Fatal(err)
				}
			}
			saved := map[string][]byte{}
			for _, f := range segFiles(t, dir) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				saved[f] = b
			}
			first, last := uint64(16), uint64(30)
			if all {
				if err := s.DeleteRange(1, 30); err != nil {
					t.Fatal(err)
				}
				if err := s.StoreLogs(entries(500, 505)); err != nil {
					t.Fatal(err)
				}
				first, last = 500, 505
			} else if err := s.DeleteRange(1, 15); err != nil {
				t.Fatal(err)
			}
			s.Close()
			for f, b := range saved {
				if _, err := os.Stat(f); os.IsNotExist(err) {
					if err := os.WriteFile(f, b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			s2 := open(t, dir, 1)
			checkRange(t, s2, first, last)
			if len(s2.Recovered().Removed) == 0 {
				t.Fatalf("reopen removed nothing: %+v", s2.Recovered())
			}
		})
	}
}

// TestGetLogDetectsCorruption damages a record after Open checked it: the
// read fails with ErrCorrupt naming the file, never returns wrong data.
func TestGetLogDetectsCorruption(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	if err := s.StoreLogs(entries(1, 5)); err != nil {
		t.Fatal(err)
	}
	f := segFiles(t, dir)[0]
	flip(t, f, segHeaderSize+int64(sizes(1, 2))+headerSize+3) // inside record 3
	var l raft.Log
	err := s.GetLog(3, &l)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f) {
		t.Fatalf("GetLog of a damaged record: %v, want ErrCorrupt naming %s", err, f)
	}
	if err := s.GetLog(4, &l); err != nil {
		t.Fatalf("GetLog of an intact record: %v", err)
	}
}
