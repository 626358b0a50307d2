// Package logstore is the Raft log store of the control plane: append-only
// segment files of checksummed records, one sync per StoreLogs call and an
// in-memory index of record offsets.
//
// A data directory holds segment files named by the index of their first
// record (00000000000000000001.wal, …) and a file "first-index" that records
// the first index kept after compaction. Every record is framed with its
// length, its Raft index and a CRC32C of the whole frame. Records are only
// ever appended; a segment is closed to appends when it reaches the size
// limit and a new one starts with the next batch, so a batch never spans two
// files.
//
// Recovery on Open trusts nothing it cannot check: a record that is
// incomplete or fails its checksum at the end of the last segment is a write
// that was never acknowledged (the process died before the sync returned)
// and is truncated away; a bad record anywhere else, or one followed by the
// start of a later batch, is corruption and Open fails naming the file and
// offset.
//
// DeleteRange serves both uses Raft has for it: dropping the head after a
// snapshot (whole segments are removed once the persisted first index has
// passed them) and dropping a conflicting tail (files are truncated at a
// record boundary and synced). Raft never deletes from the middle; the store
// refuses it.
package logstore
