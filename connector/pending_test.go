package connector

import (
	"slices"
	"testing"
)

func TestPendingTakesTheCommittedPrefix(t *testing.T) {
	var p Pending[string]
	for i, v := range []string{"a", "b", "c", "d"} {
		if got, want := p.Add(v), string(rune('1'+i)); got != want {
			t.Fatalf("Add(%q) = position %q, want %q", v, got, want)
		}
	}
	steps := []struct {
		position string
		want     []string
	}{
		{"2", []string{"a", "b"}},
		{"1", nil}, // committed already
		{"2", nil},
		{"9", []string{"c", "d"}}, // past the end: all there is
	}
	for _, s := range steps {
		got, err := p.Take(s.position)
		if err != nil || !slices.Equal(got, s.want) {
			t.Fatalf("Take(%q) = %q, %v; want %q", s.position, got, err, s.want)
		}
	}
	if got := p.Add("e"); got != "5" {
		t.Fatalf("Add after Take = position %q, want 5", got)
	}
	if _, err := p.Take("x"); err == nil {
		t.Fatal(`Take("x") succeeded; want an error`)
	}
	if got := p.TakeAll(); !slices.Equal(got, []string{"e"}) {
		t.Fatalf("TakeAll = %q, want [e]", got)
	}
	if got := p.Add("f"); got != "6" {
		t.Fatalf("Add after TakeAll = position %q, want 6", got)
	}
}
