package broker

import "fmt"

// readEntry returns the stored payload of the entry a client names by
// message id (ledger, entry), or an error if the topic holds no such entry.
func (t *topic) readEntry(ledger, entry int64) ([]byte, error) {
	t.mu.Lock()
	e := t.entryLocked(entry)
	var info entryInfo
	if e != nil && ledger == ledgerID {
		info = *e
	}
	t.mu.Unlock()
	if info.seg == nil {
		return nil, errorf(ErrTopicNotFound, "no entry %d:%d in %s", ledger, entry, t.full)
	}
	data, err := t.log.read(&info)
	if err != nil {
		return nil, fmt.Errorf("read entry %d:%d: %w", ledger, entry, err)
	}
	return data, nil
}

// entryIDLocked maps a client's message id (ledger, entry) to the entry id
// the topic uses internally.
func (t *topic) entryIDLocked(ledger, entry int64) int64 { return entry }
