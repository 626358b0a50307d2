package drill

import (
	"strings"
	"testing"
)

// FuzzMarkerScan feeds arbitrary output payloads (what a watched topic may
// hold) to the token scanner: it must not panic, and every hit it reports
// must be a whole token of this drill that the payload contains.
func FuzzMarkerScan(f *testing.F) {
	m := newMarker("20261126t124436-e2ed", 3)
	for _, seed := range []string{
		string(m.payload(41)), "d20261126t124436e2edn7w0!", "d20261126t124436e2edn5w1x d20261126t124436e2edn5w12",
		"d20261126t124436e2edn", "d20261126t124436e2edn99999999999999999999w1", "", "the quick brown fox",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m.scan(payload, func(seq int64, out int) {
			if seq < 0 || out < 0 {
				t.Fatalf("negative hit %d/%d in %q", seq, out, payload)
			}
			tok := string(m.payload(seq))
			if !strings.Contains(string(payload), strings.Fields(tok)[0][:len(m.prefix)+1]) {
				t.Fatalf("hit %d/%d not in %q", seq, out, payload)
			}
		})
	})
}

// FuzzParseStream feeds arbitrary --produce and --watch values to
// ParseStream: an error or a stream with clusters and a topic, never a
// panic.
func FuzzParseStream(f *testing.F) {
	for _, seed := range []string{"b:persistent://public/default/words", "a,c:t", "a,,c:t", ":t", "a:", "persistent://x", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStream(s)
		if err != nil {
			return
		}
		if len(st.Clusters) == 0 || st.Topic == "" {
			t.Fatalf("ParseStream(%q) = %+v without an error", s, st)
		}
		for _, c := range st.Clusters {
			if c == "" {
				t.Fatalf("ParseStream(%q): empty cluster", s)
			}
		}
	})
}
