package testkit

import (
	"errors"
	"fmt"
	"time"
)

// TB is the part of testing.TB the kit uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Cond is a condition Eventually polls: a func() bool, a func() error
// (nil: met; otherwise why not yet) or a func() (bool, string) (the string
// says why not yet).
type Cond interface {
	func() bool | func() error | func() (bool, string)
}

// Poll intervals: Eventually starts at minPoll and doubles up to maxPoll,
// so fast conditions are seen quickly and slow ones cost little CPU.
const (
	minPoll = 5 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// Eventually calls cond until it is met, failing the test with what and
// cond's last reason when timeout passes first. It never sleeps longer than
// the time left.
func Eventually[C Cond](t TB, timeout time.Duration, what string, cond C) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Poll calls cond until it is met and returns nil, or returns an error
// holding cond's last reason once timeout passes first.
func Poll[C Cond](timeout time.Duration, cond C) error {
	check := asCheck(cond)
	deadline := time.Now().Add(timeout)
	wait := minPoll
	for {
		err := check()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("not met within %s: %w", timeout, err)
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, maxPoll)
	}
}

// errNotYet is the reason a func() bool condition gives when false.
var errNotYet = errors.New("condition false")

// asCheck turns any Cond into a func() error.
func asCheck[C Cond](cond C) func() error {
	switch f := any(cond).(type) {
	case func() bool:
		return func() error {
			if f() {
				return nil
			}
			return errNotYet
		}
	case func() error:
		return f
	case func() (bool, string):
		return func() error {
			ok, why := f()
			if ok {
				return nil
			}
			return errors.New(why)
		}
	}
	panic(fmt.Sprintf("testkit: condition type %T", cond)) // unreachable for the types Cond admits
}
