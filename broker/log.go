package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/meshfed/meshfed/broker/wire"
)

// A topic's log is a directory of segment files. Each segment is one
// ledger: it is named by the id of its first entry (20 digits) and its
// ledger id, "<first>-<ledger>.log". Segments written before ledger ids
// existed are named "<first>.log" and all belong to ledger 1, whose entry
// ids are the topic's entry ids. A segment is a sequence of records:
//
//	u32 body length | u32 CRC32C(body) | body
//	body: u64 entry id | u64 sequence id | u64 highest sequence id |
//	      u16 producer name length | producer name | u32 payload CRC32C |
//	      payload (metadata size, metadata, payload as the producer sent it)
//
// Recovery scans every record; the first record that is short or fails its
// checksum ends the log and the segment is truncated there (a torn write
// from a crash). Records are only ever appended, so everything before it
// was written completely.

const recordHeader = 8

// entryInfo is the in-memory index entry of one stored entry.
type entryInfo struct {
	id         int64
	seg        *segment
	off        int64  // offset of the payload within seg
	size       uint32 // payload length
	crc        uint32 // CRC32C of the payload, resent with MESSAGE
	numMsgs    int32
	batched    bool
	publishMs  int64
	deliverAt  int64 // deliver_at_time in ms, 0 when not delayed
	keyHash    uint32
	hasKey     bool
	producer   string
	seq, hiSeq uint64
}

type segment struct {
	base int64 // first entry id in the segment
	// ledger is the segment's ledger id; an entry's message id is
	// (ledger, id - ledgerBase). ledgerBase is base, or 0 for the
	// segments of ledger 1 written before ledger ids existed. Both are
	// fixed when the segment is created.
	ledger, ledgerBase int64
	path               string
	f                  *os.File
	size               int64
	last               int64 // last entry id in the segment; base-1 when empty
	// lastPublishMs is the publish time of the newest entry, for retention.
	lastPublishMs int64
}

// entryLog is the on-disk log of one topic partition. Its methods are not
// safe for concurrent use except read, which only uses ReadAt; the topic
// serialises appends (one appender goroutine) and index changes (topic.mu).
type entryLog struct {
	dir     string
	segSize int64
	segs    []*segment
	// sealed makes the next append start a new segment (and ledger), as
	// a topic does every time it is loaded.
	sealed bool
	// newLedger hands out the ledger id of each new segment.
	newLedger func() (int64, error)
}

// legacyLedger is the ledger of segments written before ledger ids.
const legacyLedger = 1

type appendRecord struct {
	id          int64
	seq, hiSeq  uint64
	producer    string
	payloadCRC  uint32
	payload     []byte
	meta        *wire.Metadata
	publishedMs int64
}

func segName(base, ledger int64) string { return fmt.Sprintf("%020d-%d.log", base, ledger) }

// parseSegName reads a segment file name: "<first>-<ledger>.log", or the
// older "<first>.log" (ledger 1).
func parseSegName(name string) (base, ledger, ledgerBase int64, ok bool) {
	stem, found := strings.CutSuffix(name, ".log")
	if !found {
		return 0, 0, 0, false
	}
	b, l, hasLedger := strings.Cut(stem, "-")
	base, err := strconv.ParseInt(b, 10, 64)
	if err != nil || base < 0 {
		return 0, 0, 0, false
	}
	if !hasLedger {
		return base, legacyLedger, 0, true
	}
	ledger, err = strconv.ParseInt(l, 10, 64)
	if err != nil || ledger <= legacyLedger {
		return 0, 0, 0, false
	}
	return base, ledger, base, true
}

// openLog opens (creating if needed) the log in dir and returns it with the
// index of every stored entry, oldest first. The log is sealed: the first
// append starts a new segment with a ledger id from newLedger.
func openLog(dir string, segSize int64, newLedger func() (int64, error)) (*entryLog, []entryInfo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create topic dir: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, nil, err
	}
	type segFile struct {
		path                     string
		base, ledger, ledgerBase int64
	}
	var files []segFile
	for _, n := range names {
		if b, l, lb, ok := parseSegName(filepath.Base(n)); ok {
			files = append(files, segFile{n, b, l, lb})
		}
	}
	// Ledger ids grow with every segment, so (first entry, ledger) orders
	// the segments even where an empty segment shares its first entry id
	// with the one after it.
	sort.Slice(files, func(i, j int) bool {
		if files[i].base != files[j].base {
			return files[i].base < files[j].base
		}
		return files[i].ledger < files[j].ledger
	})
	l := &entryLog{dir: dir, segSize: segSize, sealed: true, newLedger: newLedger}
	var index []entryInfo
	for i, f := range files {
		s, entries, err := openSegment(f.path, f.base, i == len(files)-1)
		if err != nil {
			l.close()
			return nil, nil, err
		}
		s.ledger, s.ledgerBase = f.ledger, f.ledgerBase
		if len(index) > 0 && len(entries) > 0 && entries[0].id != index[len(index)-1].id+1 {
			// A gap can only come from a lost middle segment; keep what is
			// contiguous with the newest data.
			index = index[:0]
		}
		for j := range entries {
			entries[j].seg = s
		}
		index = append(index, entries...)
		l.segs = append(l.segs, s)
	}
	return l, index, nil
}

// openSegment scans a segment file. When last is true a torn tail is
// truncated; a corrupt record in an older segment ends that segment.
func openSegment(path string, base int64, last bool) (*segment, []entryInfo, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, st.Size()), data); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read segment: %w", err)
	}
	s := &segment{base: base, path: path, f: f, last: base - 1}
	var entries []entryInfo
	off := int64(0)
	for {
		rec, id, info, ok := decodeRecord(data[off:])
		if !ok || id != s.last+1 {
			break
		}
		info.off += off
		info.id = id
		entries = append(entries, info)
		s.last = id
		if info.publishMs > s.lastPublishMs {
			s.lastPublishMs = info.publishMs
		}
		off += int64(rec)
	}
	s.size = off
	if off != st.Size() && last {
		if err := f.Truncate(off); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("truncate torn segment tail: %w", err)
		}
	}
	return s, entries, nil
}

// decodeRecord parses the record at the start of b, returning its total
// length, entry id and index entry (off relative to b).
func decodeRecord(b []byte) (int, int64, entryInfo, bool) {
	if len(b) < recordHeader {
		return 0, 0, entryInfo{}, false
	}
	n := binary.BigEndian.Uint32(b)
	if n < 34 || uint64(n) > uint64(len(b)-recordHeader) {
		return 0, 0, entryInfo{}, false
	}
	body := b[recordHeader : recordHeader+int(n)]
	if wire.CRC32C(body) != binary.BigEndian.Uint32(b[4:]) {
		return 0, 0, entryInfo{}, false
	}
	id := int64(binary.BigEndian.Uint64(body))
	seq := binary.BigEndian.Uint64(body[8:])
	hi := binary.BigEndian.Uint64(body[16:])
	nl := int(binary.BigEndian.Uint16(body[24:]))
	if 26+nl+4 > len(body) {
		return 0, 0, entryInfo{}, false
	}
	name := string(body[26 : 26+nl])
	pcrc := binary.BigEndian.Uint32(body[26+nl:])
	payload := body[30+nl:]
	meta, err := wire.ParseMetadata(payload)
	if err != nil {
		return 0, 0, entryInfo{}, false
	}
	info := indexEntry(meta, pcrc, uint32(len(payload)))
	info.off = int64(recordHeader + 30 + nl)
	info.producer, info.seq, info.hiSeq = name, seq, hi
	return recordHeader + int(n), id, info, true
}

func indexEntry(meta *wire.Metadata, crc, size uint32) entryInfo {
	e := entryInfo{size: size, crc: crc, numMsgs: meta.NumMessages, batched: meta.Batched,
		publishMs: int64(meta.PublishTime), deliverAt: meta.DeliverAt}
	if k := meta.Key(); len(k) > 0 {
		e.hasKey = true
		e.keyHash = murmur3(k) % keyHashRange
	}
	return e
}

func encodeRecord(dst []byte, r *appendRecord) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recordHeader)...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.id))
	dst = binary.BigEndian.AppendUint64(dst, r.seq)
	dst = binary.BigEndian.AppendUint64(dst, r.hiSeq)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.producer)))
	dst = append(dst, r.producer...)
	dst = binary.BigEndian.AppendUint32(dst, r.payloadCRC)
	dst = append(dst, r.payload...)
	body := dst[start+recordHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], wire.CRC32C(body))
	return dst
}

// append writes records (ids consecutive after the current tail) in one
// write, rolling to a new segment first when the current one is full, and
// syncs the file when sync is set. It returns their index entries.
func (l *entryLog) append(recs []*appendRecord, buf []byte, sync bool) ([]entryInfo, []byte, error) {
	if len(recs) == 0 {
		return nil, buf, nil
	}
	if len(l.segs) == 0 || l.sealed || l.segs[len(l.segs)-1].size >= l.segSize {
		if err := l.roll(recs[0].id); err != nil {
			return nil, buf, err
		}
	}
	s := l.segs[len(l.segs)-1]
	buf = buf[:0]
	infos := make([]entryInfo, len(recs))
	for i, r := range recs {
		start := len(buf)
		buf = encodeRecord(buf, r)
		info := indexEntry(r.meta, r.payloadCRC, uint32(len(r.payload)))
		info.seg = s
		info.off = s.size + int64(start) + int64(recordHeader+30+len(r.producer))
		info.producer, info.seq, info.hiSeq = r.producer, r.seq, r.hiSeq
		info.id = r.id
		infos[i] = info
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		return nil, buf, fmt.Errorf("write segment: %w", err)
	}
	if sync {
		if err := s.f.Sync(); err != nil {
			return nil, buf, fmt.Errorf("sync segment: %w", err)
		}
	}
	s.size += int64(len(buf))
	s.last = recs[len(recs)-1].id
	for _, in := range infos {
		if in.publishMs > s.lastPublishMs {
			s.lastPublishMs = in.publishMs
		}
	}
	return infos, buf, nil
}

// roll starts a new segment, with a new ledger, whose first entry is
// base. An empty last segment (a roll whose first write failed, or a crash
// right after a roll) is removed first so no two segments hold the same
// entries.
func (l *entryLog) roll(base int64) error {
	if n := len(l.segs); n > 0 && l.segs[n-1].size == 0 && l.segs[n-1].base == base {
		s := l.segs[n-1]
		s.f.Close()
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove empty segment: %w", err)
		}
		l.segs = l.segs[:n-1]
	}
	ledger, err := l.newLedger()
	if err != nil {
		return fmt.Errorf("new ledger: %w", err)
	}
	path := filepath.Join(l.dir, segName(base, ledger))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.segs = append(l.segs, &segment{base: base, ledger: ledger, ledgerBase: base, path: path, f: f, last: base - 1})
	l.sealed = false
	return nil
}

// read returns the payload of an entry.
func (l *entryLog) read(e *entryInfo) ([]byte, error) {
	b := make([]byte, e.size)
	if _, err := e.seg.f.ReadAt(b, e.off); err != nil {
		return nil, fmt.Errorf("read entry: %w", err)
	}
	return b, nil
}

// dropBefore deletes whole segments (never the active one) whose entries
// are all below id and for which keep returns false.
func (l *entryLog) dropBefore(id int64, keep func(*segment) bool) (int, error) {
	n := 0
	for len(l.segs) > 1 && l.segs[0].last < id && !keep(l.segs[0]) {
		s := l.segs[0]
		s.f.Close()
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("remove segment: %w", err)
		}
		l.segs = l.segs[1:]
		n++
	}
	return n, nil
}

func (l *entryLog) sizeBytes() int64 {
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

func (l *entryLog) close() {
	for _, s := range l.segs {
		s.f.Close()
	}
	l.segs = nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
