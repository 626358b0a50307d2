package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// epochBook remembers the highest epoch seen per assignment, on disk, so an
// agent that restarts never resumes an assignment whose epoch moved on.
type epochBook struct {
	path string

	// mu guards seen.
	mu   sync.Mutex
	seen map[string]uint64
}

func openEpochBook(dir string) (*epochBook, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	b := &epochBook{path: filepath.Join(dir, "epochs.json"), seen: map[string]uint64{}}
	data, err := os.ReadFile(b.path)
	switch {
	case os.IsNotExist(err):
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("read epochs: %w", err)
	}
	if err := json.Unmarshal(data, &b.seen); err != nil {
		return nil, fmt.Errorf("parse %s: %w (delete it only if no instance of this agent can still be running)", b.path, err)
	}
	return b, nil
}

// admit records epoch for key and reports whether it may run: an epoch
// lower than one already seen is stale.
func (b *epochBook) admit(key string, epoch uint64) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if epoch < b.seen[key] {
		return false, nil
	}
	if epoch == b.seen[key] {
		return true, nil
	}
	b.seen[key] = epoch
	return true, b.saveLocked()
}

func (b *epochBook) saveLocked() error {
	data, err := json.Marshal(b.seen)
	if err != nil {
		return err
	}
	tmp := b.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write epochs: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write epochs: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write epochs: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write epochs: %w", err)
	}
	return os.Rename(tmp, b.path)
}
