package wasm

import "errors"

// ErrBadModule is wrapped by every Start error caused by the module itself:
// bytes that are not WebAssembly, a missing or mistyped export, an import
// the host does not provide, or an ABI version the host does not speak.
var ErrBadModule = errors.New("bad wasm module")

// ErrClosed is returned by Start and Process after Close.
var ErrClosed = errors.New("wasm runtime closed")

// FunctionError is a message the function itself failed (meshfed_process
// returned an error result). It is not a crash: the module keeps running.
type FunctionError struct {
	// Message is the guest's error text.
	Message string
	// Host is the first error of a host call (state, context) made while
	// processing the message; nil when none failed.
	Host error
}

func (e *FunctionError) Error() string {
	if e.Host != nil {
		return "wasm function: " + e.Message + " (host: " + e.Host.Error() + ")"
	}
	return "wasm function: " + e.Message
}

// Unwrap returns the host call error, if any.
func (e *FunctionError) Unwrap() error { return e.Host }
