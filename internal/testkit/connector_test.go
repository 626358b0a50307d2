package testkit

import (
	"errors"
	"testing"

	"github.com/meshfed/meshfed/connector"
)

func TestWantConfigErrors(t *testing.T) {
	refused := connector.Invalid("listen", "required")
	for _, c := range []struct {
		name     string
		err      error
		want     []string
		failWith string // "": passes
	}{
		{"valid, none wanted", nil, nil, ""},
		{"refused, none wanted", refused, nil, "refused: listen: required"},
		{"accepted, some wanted", nil, []string{"listen"}, "accepted"},
		{"refused as wanted", refused, []string{"listen: req"}, ""},
		{"refused otherwise", refused, []string{"token"}, "errors\nlisten: required\ndo not contain [\"token\"]"},
		{"a plain error, keyless", errors.New("boom"), []string{": boom"}, ""},
	} {
		f := &fakeTB{TB: t}
		WantConfigErrors(f, c.err, c.want...)
		if f.failed != c.failWith {
			t.Errorf("%s: failed with %q, want %q", c.name, f.failed, c.failWith)
		}
	}
}
