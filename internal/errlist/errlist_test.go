package errlist

import (
	"errors"
	"fmt"
	"testing"
)

type oneErr struct{ s string }

func (e *oneErr) Error() string { return e.s }

type listErr []*oneErr

func (l listErr) Error() string   { return Error(l) }
func (l listErr) Unwrap() []error { return Unwrap(l) }

func TestList(t *testing.T) {
	l := listErr{{"a"}, {"b"}}
	if got := l.Error(); got != "a\nb" {
		t.Fatalf("Error() = %q", got)
	}
	var one *oneErr
	if !errors.As(fmt.Errorf("wrapped: %w", l), &one) || one.s != "a" {
		t.Fatalf("errors.As found %v", one)
	}
	if got := As[listErr](fmt.Errorf("wrapped: %w", l)); len(got) != 2 {
		t.Fatalf("As(list) = %v", got)
	}
	if got := As[listErr](fmt.Errorf("wrapped: %w", &oneErr{"c"})); len(got) != 1 || got[0].s != "c" {
		t.Fatalf("As(single) = %v", got)
	}
	if got := As[listErr](errors.New("other")); got != nil {
		t.Fatalf("As(other) = %v", got)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 8, "abcde..."},
		{"ab\xffc", 10, "ab\uFFFDc"},
		{"aé€bcdef", 6, "aé..."},
		{"a€bcdef", 6, "a..."}, // never cuts inside a rune
	} {
		if got := Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
