package logstore

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder: it returns
// an error or a log that encodes back to the same bytes, never panics.
func FuzzDecodeRecord(f *testing.F) {
	for _, i := range []uint64{1, 2, 3, 6, 97} {
		f.Add(appendRecord(nil, entry(i), flagBatchStart), i)
	}
	f.Add([]byte("MW\x01\x00\xff\xff\xff\xff"), uint64(1))
	f.Fuzz(func(t *testing.T, rec []byte, index uint64) {
		var l raft.Log
		if err := decodeRecord(rec, index, &l); err != nil {
			return
		}
		if again := appendRecord(nil, &l, rec[3]); !bytes.Equal(again, rec) {
			t.Fatalf("decoded %+v re-encodes to %x, not %x", l, again, rec)
		}
	})
}

// FuzzScanSegment feeds arbitrary bytes to the segment scanner: it returns
// an error or records that all lie inside the data and decode.
func FuzzScanSegment(f *testing.F) {
	seg := appendSegHeader(nil, 1)
	for i := uint64(1); i <= 4; i++ {
		seg = appendRecord(seg, entry(i), byte(i%2))
	}
	f.Add(seg, uint64(1))
	f.Add(seg[:len(seg)-3], uint64(1))
	f.Add(appendSegHeader(nil, 9), uint64(9))
	f.Fuzz(func(t *testing.T, data []byte, base uint64) {
		sc, err := scanSegment(data, base)
		if err != nil {
			return
		}
		if sc.end > int64(len(data)) || (sc.badErr == nil && sc.end != int64(len(data))) {
			t.Fatalf("scan end %d of %d bytes, bad %v", sc.end, len(data), sc.badErr)
		}
		for i, at := range sc.locs {
			var l raft.Log
			if err := decodeRecord(data[at.off:at.off+int64(at.size)], base+uint64(i), &l); err != nil {
				t.Fatalf("scanned record %d does not decode: %v", i, err)
			}
		}
	})
}
