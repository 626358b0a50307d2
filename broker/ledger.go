package broker

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/meshfed/meshfed/broker/wire"
)

// Message ids are (ledger, entry within the ledger), as in Pulsar. Each
// segment of a topic's log is one ledger; a topic starts a new ledger every
// time it is loaded and at every segment roll, with an id from a
// broker-wide counter, so ids grow across restarts and differ between
// brokers. Inside the broker every entry keeps its topic-wide entry id;
// positionLocked and entryIDLocked translate at the protocol and admin
// boundary. Segments written before ledger ids existed form ledger 1,
// whose entry ids are the topic's entry ids, so their message ids do not
// change.

const (
	// ledgerIDMin and ledgerIDMax bound the random first ledger id of a
	// fresh data directory: two brokers almost surely never hand out the
	// same ids, and every id is above the 2^19 some clients assume ledger
	// ids of production clusters exceed.
	ledgerIDMin = 1 << 20
	ledgerIDMax = 1 << 32
	// ledgerBlock is how many ledger ids one metadata write reserves.
	ledgerBlock = 64
)

// initLedgersLocked picks the first ledger id of a data dir that has none
// and persists the metadata.
func (b *Broker) initLedgersLocked() error {
	if b.meta.LedgerReserved < ledgerIDMin {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return fmt.Errorf("broker: pick first ledger id: %w", err)
		}
		b.meta.LedgerReserved = ledgerIDMin + int64(binary.BigEndian.Uint64(r[:])%(ledgerIDMax-ledgerIDMin))
		if err := b.saveMetadataLocked(); err != nil {
			return fmt.Errorf("broker: save metadata: %w", err)
		}
	}
	b.ledgerNext = b.meta.LedgerReserved
	return nil
}

// newLedger hands out the next ledger id. Ids are reserved in blocks
// written to metadata.json before any of them is used, so they strictly
// increase across restarts and crashes.
func (b *Broker) newLedger() (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ledgerNext >= b.meta.LedgerReserved {
		old := b.meta.LedgerReserved
		b.meta.LedgerReserved = b.ledgerNext + ledgerBlock
		if err := b.saveMetadataLocked(); err != nil {
			b.meta.LedgerReserved = old
			return 0, fmt.Errorf("reserve ledger ids: %w", err)
		}
	}
	id := b.ledgerNext
	b.ledgerNext++
	return id, nil
}

// positionLocked returns the message id (ledger, entry within ledger) of
// entry id. Ids not stored are placed next to the nearest stored entry's
// ledger: first-1 becomes (first ledger, its first entry - 1), next becomes
// (last ledger, its last entry + 1), which entryIDLocked maps back to the
// same ids. A topic with no stored entry has only (-1, -1).
func (t *topic) positionLocked(id int64) wire.MessageID {
	mid := wire.MessageID{LedgerID: -1, EntryID: -1, Partition: int32(t.name.partition), BatchIndex: -1}
	var s *segment
	switch e := t.entryLocked(id); {
	case e != nil:
		s = e.seg
	case len(t.entries) == 0:
		return mid
	case id < t.first:
		s = t.entries[0].seg
	default:
		s = t.entries[len(t.entries)-1].seg
	}
	mid.LedgerID, mid.EntryID = s.ledger, id-s.ledgerBase
	return mid
}

// entryPosition is positionLocked for a stored entry (no lock needed: a
// segment's ledger never changes).
func (t *topic) entryPosition(e *entryInfo) wire.MessageID {
	return wire.MessageID{LedgerID: e.seg.ledger, EntryID: e.id - e.seg.ledgerBase,
		Partition: int32(t.name.partition), BatchIndex: -1}
}

// entryIDLocked maps a client's message id (ledger, entry) to the entry id
// the topic uses internally: the first entry at or after that position.
// An id in a stored ledger maps arithmetically, bounded to that ledger
// (entry -1 gives its first entry, one past its last entry the first entry
// of the next ledger). An id in a ledger the topic does not hold (removed
// by retention, or never its own) maps to the first entry of the next
// ledger it does hold, or to the next entry to be written. Callers treat
// earliest and latest themselves.
func (t *topic) entryIDLocked(ledger, entry int64) int64 {
	n := len(t.entries)
	i := sort.Search(n, func(i int) bool { return t.entries[i].seg.ledger >= ledger })
	if i == n {
		return t.next
	}
	if t.entries[i].seg.ledger != ledger {
		return t.entries[i].id
	}
	s := t.entries[i].seg
	lower := t.entries[i].id
	j := i + sort.Search(n-i, func(k int) bool { return t.entries[i+k].seg.ledger > ledger })
	upper := t.next
	if j < n {
		upper = t.entries[j].id
	}
	id := s.ledgerBase + entry
	if entry < 0 || id < lower {
		id = lower
	}
	if id > upper {
		id = upper
	}
	return id
}

// storedEntryLocked returns the stored entry a client names exactly by
// (ledger, entry), or nil.
func (t *topic) storedEntryLocked(ledger, entry int64) *entryInfo {
	if entry < 0 {
		return nil
	}
	e := t.entryLocked(t.entryIDLocked(ledger, entry))
	if e == nil || e.seg.ledger != ledger || e.id-e.seg.ledgerBase != entry {
		return nil
	}
	return e
}
