package exec

import "errors"

var (
	// ErrProtocol reports a frame the function should not have sent: an
	// unknown type, a malformed body, a frame out of order or for another
	// message. The process is killed and restarted.
	ErrProtocol = errors.New("exec protocol error")

	// ErrFrameTooLarge reports a frame over the size limit, in either
	// direction. It wraps ErrProtocol when the function sent it.
	ErrFrameTooLarge = errors.New("exec frame too large")

	// ErrVersionMismatch reports a function that answered HELLO with a
	// protocol version this host does not speak.
	ErrVersionMismatch = errors.New("exec protocol version mismatch")

	// ErrClosed is returned by Process after Close.
	ErrClosed = errors.New("exec function closed")

	// ErrBadBundle reports code that cannot be packed into an exec bundle
	// (GoBundle, PythonBundle).
	ErrBadBundle = errors.New("cannot bundle function code")
)

// FunctionError is a message failure the function reported itself (a FAIL
// frame, e.g. an exception in the user's code). The process keeps running.
type FunctionError struct {
	// MessageID is the protocol id of the failed message.
	MessageID uint64
	// Reason is the text the function sent.
	Reason string
}

func (e *FunctionError) Error() string {
	return "function failed the message: " + e.Reason
}
