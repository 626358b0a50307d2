package logstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// A record frame is a fixed header followed by the encoded entry:
//
//	[0:2]   magic 'M' 'W'
//	[2]     format version (1)
//	[3]     flags (flagBatchStart on the first record of a StoreLogs batch)
//	[4:8]   payload length, little endian
//	[8:16]  Raft index, little endian
//	[16:20] CRC32C (Castagnoli) of bytes [0:16] and the payload
//
// The payload is the entry: term (8 bytes), AppendedAt in Unix nanoseconds
// (8 bytes, 0 for the zero time), type (1 byte), data length (4 bytes), the
// data, and the extensions as the rest.
const (
	headerSize     = 20
	payloadFixed   = 8 + 8 + 1 + 4
	recordVersion  = 1
	flagBatchStart = 1 << 0
	// maxPayload bounds a record's payload so a corrupt length is refused
	// before anything is allocated for it.
	maxPayload = 1 << 30
)

var (
	recordMagic = [2]byte{'M', 'W'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// recordSize is the framed size of log l.
func recordSize(l *raft.Log) int {
	return headerSize + payloadFixed + len(l.Data) + len(l.Extensions)
}

// appendRecord appends the frame of l to buf.
func appendRecord(buf []byte, l *raft.Log, flags byte) []byte {
	start := len(buf)
	n := payloadFixed + len(l.Data) + len(l.Extensions)
	buf = append(buf, recordMagic[0], recordMagic[1], recordVersion, flags)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
	buf = binary.LittleEndian.AppendUint64(buf, l.Index)
	buf = append(buf, 0, 0, 0, 0) // CRC, filled below
	buf = binary.LittleEndian.AppendUint64(buf, l.Term)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(at))
	buf = append(buf, byte(l.Type))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(l.Data)))
	buf = append(buf, l.Data...)
	buf = append(buf, l.Extensions...)
	rec := buf[start:]
	crc := crc32.Update(crc32.Checksum(rec[:16], castagnoli), castagnoli, rec[headerSize:])
	binary.LittleEndian.PutUint32(rec[16:20], crc)
	return buf
}

// header is a decoded record header.
type header struct {
	flags byte
	size  uint32 // payload length
	index uint64
	crc   uint32
}

// parseHeader decodes a record header; it checks the magic, version and
// length bound, not the checksum.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("record header: %d of %d bytes", len(b), headerSize)
	}
	if b[0] != recordMagic[0] || b[1] != recordMagic[1] {
		return header{}, fmt.Errorf("record header: bad magic %#x %#x", b[0], b[1])
	}
	if b[2] != recordVersion {
		return header{}, fmt.Errorf("record header: unknown version %d", b[2])
	}
	h := header{
		flags: b[3],
		size:  binary.LittleEndian.Uint32(b[4:8]),
		index: binary.LittleEndian.Uint64(b[8:16]),
		crc:   binary.LittleEndian.Uint32(b[16:20]),
	}
	if h.size < payloadFixed || h.size > maxPayload {
		return header{}, fmt.Errorf("record header: payload length %d out of range [%d, %d]", h.size, payloadFixed, maxPayload)
	}
	return h, nil
}

// checkRecord verifies the checksum of a whole frame rec (header and
// payload) whose header is h.
func checkRecord(rec []byte, h header) error {
	if len(rec) != headerSize+int(h.size) {
		return fmt.Errorf("record %d: %d of %d bytes", h.index, len(rec), headerSize+int(h.size))
	}
	crc := crc32.Update(crc32.Checksum(rec[:16], castagnoli), castagnoli, rec[headerSize:])
	if crc != h.crc {
		return fmt.Errorf("record %d: checksum %#08x, header says %#08x", h.index, crc, h.crc)
	}
	return nil
}

// decodeRecord decodes the frame rec, which must hold exactly one record
// with the given index, into l. l's slices do not alias rec.
func decodeRecord(rec []byte, index uint64, l *raft.Log) error {
	h, err := parseHeader(rec)
	if err != nil {
		return err
	}
	if h.index != index {
		return fmt.Errorf("record: index %d where %d was expected", h.index, index)
	}
	if err := checkRecord(rec, h); err != nil {
		return err
	}
	p := rec[headerSize:]
	dataLen := binary.LittleEndian.Uint32(p[17:21])
	if uint64(dataLen) > uint64(len(p)-payloadFixed) {
		return fmt.Errorf("record %d: data length %d exceeds payload of %d", index, dataLen, len(p)-payloadFixed)
	}
	l.Index = index
	l.Term = binary.LittleEndian.Uint64(p[0:8])
	l.AppendedAt = time.Time{}
	if at := int64(binary.LittleEndian.Uint64(p[8:16])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	l.Type = raft.LogType(p[16])
	rest := p[payloadFixed:]
	l.Data = cloneOrNil(rest[:dataLen])
	l.Extensions = cloneOrNil(rest[dataLen:])
	return nil
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
