// Package errlist holds what the packages that report many problems at once
// (objects' field errors, policies' violations) share: joining and
// unwrapping a list of errors, finding one in an error, and clipping the
// outside input an error message repeats.
package errlist

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Error joins the errors' messages with newlines.
func Error[E error](l []E) string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors of l as []error, for an Unwrap method that lets
// errors.As and errors.Is look at each one.
func Unwrap[E error](l []E) []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// As returns the list in err, a single E found in err as a list of one, or
// nil when err carries neither.
func As[L interface {
	~[]E
	error
}, E error](err error) L {
	var l L
	if errors.As(err, &l) {
		return l
	}
	var e E
	if errors.As(err, &e) {
		return L{e}
	}
	return nil
}

// Clip makes s valid UTF-8 and at most max bytes long, marking a cut with
// "...", so that absurd input cannot make absurd messages.
func Clip(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
