package objects

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"app": "wc", "tier": "gold", "example.com/zone": "eu-1", "empty": ""}
	tests := []struct {
		in    string
		match bool
		str   string
	}{
		{"", true, ""},
		{"   ", true, ""},
		{"app=wc", true, "app=wc"},
		{"app==wc", true, "app=wc"},
		{" app = wc , tier!=silver ", true, "app=wc,tier!=silver"},
		{"app=other", false, "app=other"},
		{"app!=wc", false, "app!=wc"},
		{"missing!=x", true, "missing!=x"},
		{"tier", true, "tier"},
		{"missing", false, "missing"},
		{"!missing", true, "!missing"},
		{"!app", false, "!app"},
		{"example.com/zone=eu-1", true, "example.com/zone=eu-1"},
		{"empty=", true, "empty="},
		{"tier in (gold, silver)", true, "tier in (gold,silver)"},
		{"tier in (silver)", false, "tier in (silver)"},
		{"missing in (a)", false, "missing in (a)"},
		{"tier notin (silver),app", true, "tier notin (silver),app"},
		{"tier notin (gold)", false, "tier notin (gold)"},
		{"missing notin (gold)", true, "missing notin (gold)"},
		{"app=wc,tier=silver", false, "app=wc,tier=silver"},
	}
	for _, tc := range tests {
		s, err := ParseSelector(tc.in)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tc.in, err)
			continue
		}
		if got := s.Matches(labels); got != tc.match {
			t.Errorf("%q.Matches = %v, want %v", tc.in, got, tc.match)
		}
		if s.String() != tc.str {
			t.Errorf("%q.String() = %q, want %q", tc.in, s.String(), tc.str)
		}
		if s.Empty() != (tc.str == "") {
			t.Errorf("%q.Empty() = %v", tc.in, s.Empty())
		}
		if again, err := ParseSelector(s.String()); err != nil || again.String() != s.String() {
			t.Errorf("%q: reparse of %q: %v %v", tc.in, s.String(), again, err)
		}
	}
	if !(Selector{}).Matches(nil) {
		t.Error("zero selector does not match")
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"app=wc,", `"": empty requirement`},
		{",app", "empty requirement"},
		{"=wc", "missing label key"},
		{"!", "missing label key"},
		{"app=w c", `label value "w c"`},
		{"app=a=b", "label value"},
		{"a b", `label key "a b"`},
		{"-app", `label key "-app"`},
		{"app!", `label key "app!"`},
		{"tier in (gold", "unbalanced parentheses"},
		{"tier in gold)", "unbalanced parentheses"},
		{"tier in ()", "in needs at least one value"},
		{"tier notin ( )", "notin needs at least one value"},
		{"tier in (a,)", "empty value in the set"},
		{"tier in (a b)", "label value"},
	}
	for _, tc := range tests {
		_, err := ParseSelector(tc.in)
		if err == nil {
			t.Errorf("ParseSelector(%q) accepted", tc.in)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "invalid label selector") {
			t.Errorf("ParseSelector(%q) = %v, want it to contain %q", tc.in, err, tc.reason)
		}
	}
}
