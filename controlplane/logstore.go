package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/meshfed/meshfed/controlplane/logstore"
)

// Raft log stores a server can keep its log in (Config.RaftLogStore).
const (
	// RaftLogStoreAuto keeps the store a data dir already has and gives a
	// new data dir the segment log (RaftLogStoreWAL).
	RaftLogStoreAuto = "auto"
	// RaftLogStoreBolt keeps log and stable store in raft-boltdb
	// (raft/raft.db), as every server before the segment log did.
	RaftLogStoreBolt = "bolt"
	// RaftLogStoreWAL keeps the log in controlplane/logstore segment files
	// (raft/log/) and the stable store in raft-boltdb (raft/stable.db).
	RaftLogStoreWAL = "wal"
)

// File names under <data dir>/raft of each store.
const (
	boltLogFile    = "raft.db"
	walLogDir      = "log"
	walStableFile  = "stable.db"
	raftStoreFlags = "--raft-log-store"
)

// raftStores are the Raft log and stable store a server opened.
type raftStores struct {
	kind   string // RaftLogStoreBolt or RaftLogStoreWAL
	log    raft.LogStore
	stable raft.StableStore
	// closers close what was opened, in order.
	closers []func() error
}

// Close closes the stores.
func (r *raftStores) Close() error {
	var errs []error
	for _, c := range r.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// chooseRaftLogStore decides which log store dir (<data dir>/raft) uses:
// the one its files show, or for a new dir the one asked for (auto: the
// segment log). Asking for the other store than the dir holds is an error:
// the log is never migrated silently.
func chooseRaftLogStore(dir, want string) (string, error) {
	if want == "" {
		want = RaftLogStoreAuto
	}
	if want != RaftLogStoreAuto && want != RaftLogStoreBolt && want != RaftLogStoreWAL {
		return "", fmt.Errorf("raft log store %q: want %s, %s or %s", want, RaftLogStoreAuto, RaftLogStoreBolt, RaftLogStoreWAL)
	}
	has := ""
	if _, err := os.Stat(filepath.Join(dir, boltLogFile)); err == nil {
		has = RaftLogStoreBolt
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("look for the raft log: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, walLogDir)); err == nil {
		if has != "" {
			return "", fmt.Errorf("data dir %s holds both %s and %s/: remove the one not in use", dir, boltLogFile, walLogDir)
		}
		has = RaftLogStoreWAL
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("look for the raft log: %w", err)
	}
	switch {
	case has == "" && want == RaftLogStoreAuto:
		return RaftLogStoreWAL, nil
	case has == "":
		return want, nil
	case want == RaftLogStoreAuto || want == has:
		return has, nil
	default:
		return "", fmt.Errorf("%s %s: data dir %s already keeps its raft log in the %s store; it is not migrated (pass %s %s or %s, or start from an empty data dir)",
			raftStoreFlags, want, dir, has, raftStoreFlags, has, RaftLogStoreAuto)
	}
}

// openRaftStores opens the Raft log and stable store under dir
// (<data dir>/raft).
func openRaftStores(dir, want string, logger *slog.Logger) (*raftStores, error) {
	kind, err := chooseRaftLogStore(dir, want)
	if err != nil {
		return nil, err
	}
	logger.Info("raft log store", "store", kind, "dir", dir)
	if kind == RaftLogStoreBolt {
		path := filepath.Join(dir, boltLogFile)
		b, err := raftboltdb.New(raftboltdb.Options{Path: path})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", path, err)
		}
		return &raftStores{kind: kind, log: b, stable: b, closers: []func() error{b.Close}}, nil
	}
	logDir := filepath.Join(dir, walLogDir)
	l, err := logstore.Open(logDir, logstore.Options{})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", logDir, err)
	}
	if r := l.Recovered(); r.TruncatedFile != "" || len(r.Removed) > 0 {
		logger.Warn("raft log repaired on open: an unacknowledged tail cut off or an interrupted compaction finished",
			"file", r.TruncatedFile, "offset", r.TruncatedAt, "bytes", r.TruncatedBytes,
			"reason", r.TruncatedReason, "removed", r.Removed)
	}
	path := filepath.Join(dir, walStableFile)
	b, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open raft stable store %s: %w", path, err)
	}
	return &raftStores{kind: kind, log: l, stable: b, closers: []func() error{l.Close, b.Close}}, nil
}
