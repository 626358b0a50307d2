package logstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A segment file starts with a header:
//
//	[0:8]   magic "MFWALSEG"
//	[8:12]  format version (1), little endian
//	[12:16] zero
//	[16:24] base index: the index of the segment's first record
//	[24:28] CRC32C of bytes [0:24]
//	[28:32] zero
//
// and continues with records (record.go) whose indexes count up from base.
const (
	segHeaderSize = 32
	segVersion    = 1
	segSuffix     = ".wal"
)

var segMagic = [8]byte{'M', 'F', 'W', 'A', 'L', 'S', 'E', 'G'}

// segName is the file name of the segment starting at base.
func segName(base uint64) string {
	return fmt.Sprintf("%020d%s", base, segSuffix)
}

// parseSegName returns the base index a segment file name encodes.
func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(s, 10, 64)
	return base, err == nil
}

func appendSegHeader(buf []byte, base uint64) []byte {
	start := len(buf)
	buf = append(buf, segMagic[:]...)
	buf = binary.LittleEndian.AppendUint32(buf, segVersion)
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.LittleEndian.AppendUint64(buf, base)
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf[start:start+24], castagnoli))
	return append(buf, 0, 0, 0, 0)
}

func parseSegHeader(b []byte) (uint64, error) {
	if len(b) < segHeaderSize {
		return 0, fmt.Errorf("segment header: %d of %d bytes", len(b), segHeaderSize)
	}
	if [8]byte(b[:8]) != segMagic {
		return 0, fmt.Errorf("segment header: bad magic %q", b[:8])
	}
	if crc := crc32.Checksum(b[:24], castagnoli); crc != binary.LittleEndian.Uint32(b[24:28]) {
		return 0, fmt.Errorf("segment header: checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[8:12]); v != segVersion {
		return 0, fmt.Errorf("segment header: unknown version %d", v)
	}
	return binary.LittleEndian.Uint64(b[16:24]), nil
}

// loc is where one record's frame lies in its segment file.
type loc struct {
	off  int64
	size uint32 // whole frame, header included
}

// scan is what scanSegment found in a segment's bytes.
type scan struct {
	locs []loc // valid records, in order, indexes base, base+1, …
	end  int64 // offset just past the last valid record
	// badErr describes the first invalid record, at offset end; nil when
	// the valid records reach the end of the data.
	badErr error
	// laterBatch is the offset of a valid record starting a batch after
	// the invalid one (-1: none). Such a batch was written only after the
	// invalid record's batch was synced, so the invalid record is
	// corruption, not a torn write.
	laterBatch int64
}

// scanSegment checks a segment's bytes (header included) whose name says
// it starts at base. A bad header is returned as an error; bad records are
// reported in the scan for the caller to judge.
func scanSegment(data []byte, base uint64) (scan, error) {
	hb, err := parseSegHeader(data)
	if err != nil {
		return scan{}, err
	}
	if hb != base {
		return scan{}, fmt.Errorf("segment header: base index %d, file name says %d", hb, base)
	}
	s := scan{end: segHeaderSize, laterBatch: -1}
	next := base
	for s.end < int64(len(data)) {
		size, err := validRecordAt(data, s.end, next)
		if err != nil {
			s.badErr = err
			break
		}
		s.locs = append(s.locs, loc{off: s.end, size: uint32(size)})
		s.end += int64(size)
		next++
	}
	if s.badErr != nil {
		s.laterBatch = findBatchStart(data, s.end+1, next)
	}
	return s, nil
}

// validRecordAt checks the record at off, which must carry index want, and
// returns its frame size.
func validRecordAt(data []byte, off int64, want uint64) (int, error) {
	h, err := parseHeader(data[off:])
	if err != nil {
		return 0, err
	}
	size := headerSize + int(h.size)
	if int64(size) > int64(len(data))-off {
		return 0, fmt.Errorf("record %d: %d of %d bytes", h.index, int64(len(data))-off, size)
	}
	if err := checkRecord(data[off:off+int64(size)], h); err != nil {
		return 0, err
	}
	if h.index != want {
		// A valid checksum over the wrong index is never a torn write.
		return 0, fmt.Errorf("%w: record index %d where %d was expected", ErrCorrupt, h.index, want)
	}
	return size, nil
}

// findBatchStart looks from off on for a valid record with the batch-start
// flag and an index at least minIndex, and returns its offset or -1.
func findBatchStart(data []byte, off int64, minIndex uint64) int64 {
	for i := off; i+headerSize <= int64(len(data)); i++ {
		if data[i] != recordMagic[0] || data[i+1] != recordMagic[1] {
			continue
		}
		h, err := parseHeader(data[i:])
		if err != nil || h.flags&flagBatchStart == 0 || h.index < minIndex {
			continue
		}
		size := int64(headerSize) + int64(h.size)
		if size > int64(len(data))-i {
			continue
		}
		if checkRecord(data[i:i+size], h) == nil {
			return i
		}
	}
	return -1
}

// syncDir makes a directory's entries (created, renamed, removed files)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if e := d.Close(); err == nil {
		err = e
	}
	return err
}

// writeFirstIndex persists the first index kept, replacing the file
// atomically: 8 bytes little endian and their CRC32C.
func writeFirstIndex(dir string, first uint64) error {
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, first)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, firstIndexFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write first index: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write first index: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync first index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close first index: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, firstIndexFile)); err != nil {
		return fmt.Errorf("replace first index: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync log dir: %w", err)
	}
	return nil
}

// readFirstIndex returns the persisted first index, 0 when none was ever
// written.
func readFirstIndex(dir string) (uint64, error) {
	path := filepath.Join(dir, firstIndexFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read first index: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("%w: %s: %d bytes or bad checksum", ErrCorrupt, path, len(b))
	}
	return binary.LittleEndian.Uint64(b[:8]), nil
}
