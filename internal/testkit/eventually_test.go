package testkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestEventuallyReturnsOnceMet(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, "third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	m := 0
	Eventually(t, 5*time.Second, "second call", func() error {
		if m++; m < 2 {
			return errors.New("first")
		}
		return nil
	})
	Eventually(t, 5*time.Second, "at once", func() (bool, string) { return true, "" })
}

func TestEventuallyFailsWithLastReason(t *testing.T) {
	cases := []struct {
		name string
		run  func(tb TB)
		want string
	}{
		{"bool", func(tb TB) { Eventually(tb, 20*time.Millisecond, "bool cond", func() bool { return false }) }, "bool cond: not met within 20ms: condition false"},
		{"error", func(tb TB) {
			Eventually(tb, 20*time.Millisecond, "error cond", func() error { return errors.New("still 2 of 3") })
		}, "error cond: not met within 20ms: still 2 of 3"},
		{"reason", func(tb TB) {
			Eventually(tb, 20*time.Millisecond, "reason cond", func() (bool, string) { return false, "no leader" })
		}, "reason cond: not met within 20ms: no leader"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			start := time.Now()
			c.run(f)
			if f.failed != c.want {
				t.Errorf("failure %q, want %q", f.failed, c.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s past a 20ms deadline", d)
			}
		})
	}
}

func TestPollErrorWrapsLastReason(t *testing.T) {
	sentinel := errors.New("sentinel")
	err := Poll(10*time.Millisecond, func() error { return sentinel })
	if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), "not met within 10ms") {
		t.Fatalf("Poll = %v, want the sentinel wrapped with the timeout", err)
	}
}
