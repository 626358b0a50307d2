package drill

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/federation"
)

func TestParseStream(t *testing.T) {
	cases := []struct {
		in      string
		want    federation.DrillStream
		wantErr string
	}{
		{"b:persistent://public/default/words", federation.DrillStream{Clusters: []string{"b"}, Topic: "persistent://public/default/words"}, ""},
		{"a,c:persistent://public/default/sentences", federation.DrillStream{Clusters: []string{"a", "c"}, Topic: "persistent://public/default/sentences"}, ""},
		{" a , c :words", federation.DrillStream{Clusters: []string{"a", "c"}, Topic: "words"}, ""},
		{"persistent://public/default/words", federation.DrillStream{}, "name the cluster"},
		{"words", federation.DrillStream{}, "name the cluster"},
		{":words", federation.DrillStream{}, "name the cluster"},
		{"a,,c:words", federation.DrillStream{}, "empty cluster"},
		{"a:", federation.DrillStream{}, "no topic"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseStream(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	m := newMarker("20261126t124436-E2ED", 3)
	if m.prefix != "d20261126t124436e2ed" {
		t.Fatalf("prefix %q", m.prefix)
	}
	p := string(m.payload(41))
	if p != "d20261126t124436e2edn41w0 d20261126t124436e2edn41w1 d20261126t124436e2edn41w2" {
		t.Fatalf("payload %q", p)
	}
	type hit struct {
		seq int64
		out int
	}
	cases := []struct {
		name    string
		payload string
		want    []hit
	}{
		{"whole sentence (identity)", p, []hit{{41, 0}, {41, 1}, {41, 2}}},
		{"one word (word-split)", "d20261126t124436e2edn41w2", []hit{{41, 2}}},
		{"decorated (exclamation)", "d20261126t124436e2edn7w0!", []hit{{7, 0}}},
		{"upper case is not ours (lower-cased by the function)", "D20261126T124436E2EDN7W0", nil},
		{"word-count output", "d20261126t124436e2edn9w1 1", []hit{{9, 1}}},
		{"another drill", "d20261126t124436ffffn1w0", nil},
		{"a longer token is not ours", "d20261126t124436e2edn5w1x d20261126t124436e2edn5w12", []hit{{5, 12}}},
		{"truncated", "d20261126t124436e2edn5w d20261126t124436e2edn", nil},
		{"unrelated", "the quick brown fox", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []hit
			m.scan([]byte(c.payload), func(seq int64, out int) { got = append(got, hit{seq, out}) })
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("scan(%q) = %v, want %v", c.payload, got, c.want)
			}
		})
	}
}

func TestStoreSaveLoadList(t *testing.T) {
	dir := t.TempDir()
	if got, err := List(dir + "/missing"); err != nil || len(got) != 0 {
		t.Fatalf("List(missing) = %v, %v", got, err)
	}
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"20261126t120002-bbbb", "20261126t120001-aaaa"} {
		r := &federation.DrillReport{ID: id, Cluster: "a", Timeline: federation.DrillTimeline{Started: base.Add(time.Duration(2-i) * time.Second)}}
		r.Finalize()
		if _, err := Save(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "20261126t120001-aaaa" || list[1].ID != "20261126t120002-bbbb" {
		t.Fatalf("List = %v, want oldest first", list)
	}
	if _, err := Load(dir, "nope"); err == nil || !strings.Contains(err.Error(), "no such drill report") {
		t.Fatalf("Load(nope) = %v", err)
	}
	if _, err := Load(dir, "../etc/passwd"); err == nil {
		t.Fatal("Load accepted a path as an id")
	}
	if _, err := Save(dir, &federation.DrillReport{ID: "a/b"}); err == nil {
		t.Fatal("Save accepted a path as an id")
	}
}
