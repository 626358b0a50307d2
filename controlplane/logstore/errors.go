package logstore

import "errors"

// Sentinel errors of the log store. Errors returned by the store wrap these
// with the file, offset or indexes involved.
var (
	// ErrCorrupt marks a record or file that fails its checks where a torn
	// write cannot explain it; the store refuses to open.
	ErrCorrupt = errors.New("log store corrupt")
	// ErrNotContiguous marks a StoreLogs batch whose indexes do not follow
	// the last stored index one by one.
	ErrNotContiguous = errors.New("log indexes not contiguous")
	// ErrTooLarge marks an entry too large for one record (1 GiB).
	ErrTooLarge = errors.New("log entry too large")
	// ErrMiddleDelete marks a DeleteRange that neither starts at the first
	// index nor reaches the last one; Raft never asks for it.
	ErrMiddleDelete = errors.New("delete range inside the log")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("log store closed")
	// ErrFailed is returned after a write failed and could not be undone;
	// the store must be reopened so recovery can check the files.
	ErrFailed = errors.New("log store failed; reopen to recover")
)
