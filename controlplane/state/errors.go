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

// invalid marks err as ErrInvalid without changing its message.
type invalid struct{ err error }

func (e invalid) Error() string        { return e.err.Error() }
func (e invalid) Unwrap() error        { return e.err }
func (e invalid) Is(target error) bool { return target == ErrInvalid }
