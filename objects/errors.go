package objects

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/meshfed/meshfed/internal/errlist"
)

// ErrInvalid is matched (errors.Is) by every *FieldError and FieldErrors this
// package returns: the input is bad and retrying it unchanged cannot help.
// The gRPC boundary maps it to InvalidArgument.
var ErrInvalid = errors.New("invalid object")

// FieldError is one problem with one field of one document.
type FieldError struct {
	// File is the name the input was read from. Empty: not from a file
	// (Validate on an object built in memory).
	File string
	// Doc is the 1-based number of the document in File, counting only
	// documents with content. Zero: unknown.
	Doc int
	// Path is the field path, with JSON (camelCase) field names and list
	// indexes: "spec.functions[1].output.cluster". Empty: the whole document.
	Path string
	// Reason says what is wrong, and where it helps, what would be right.
	Reason string
}

// Error formats the error as "<file>: doc <n>: <path>: <reason>", leaving out
// the parts that are not known.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Doc > 0 {
		b.WriteString("doc ")
		b.WriteString(strconv.Itoa(e.Doc))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// FieldErrors is every problem found in one input, in document and then field
// order. A non-nil FieldErrors returned as an error is never empty.
type FieldErrors []*FieldError

// Error joins the errors with newlines.
func (l FieldErrors) Error() string { return errlist.Error(l) }

// Is reports whether target is ErrInvalid.
func (l FieldErrors) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the single errors, so errors.As finds a *FieldError.
func (l FieldErrors) Unwrap() []error { return errlist.Unwrap(l) }

// In returns a copy of the errors with File and Doc set, for validation
// errors of an object decoded from doc of file.
func (l FieldErrors) In(file string, doc int) FieldErrors {
	out := make(FieldErrors, len(l))
	for i, e := range l {
		c := *e
		c.File, c.Doc = file, doc
		out[i] = &c
	}
	return out
}

// AsFieldErrors returns the field errors in err: the list itself, a single
// *FieldError as a list of one, or nil when err carries none.
func AsFieldErrors(err error) FieldErrors { return errlist.As[FieldErrors](err) }

// errs collects field errors; its zero value is ready to use.
type errs struct {
	list FieldErrors
}

func (c *errs) add(path, format string, args ...any) {
	reason := format
	if len(args) > 0 {
		reason = fmt.Sprintf(format, args...)
	}
	c.list = append(c.list, &FieldError{Path: errlist.Clip(path, maxPathLen), Reason: errlist.Clip(reason, maxReasonLen)})
}

// Bounds on what one error repeats of the input, so that absurd input
// cannot make absurd messages.
const (
	maxPathLen   = 256
	maxReasonLen = 512
)

// err returns the collected errors, or nil when there are none.
func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// index appends a list index to a path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// mapKey appends a map key to a path.
func mapKey(path, key string) string {
	return path + "[" + key + "]"
}
