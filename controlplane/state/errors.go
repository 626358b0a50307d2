package state

import "errors"

// Sentinel errors. Callers test them with errors.Is; the gRPC boundary maps
// them to status codes.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a resourceVersion precondition did not hold.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the write is malformed or references what does not exist.
	ErrInvalid = errors.New("invalid")
	// ErrFailedPrecondition: the write would break what other objects rely on.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrCompacted: the requested revision is older than the event history.
	ErrCompacted = errors.New("revision compacted")
)
