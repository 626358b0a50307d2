package objects

import (
	"testing"
	"unicode/utf8"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode feeds arbitrary input to Decode and everything after it. It
// checks that nothing panics, that errors are always field errors and never
// come with objects, and that every decoded object survives Encode and a
// second Decode unchanged. Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(meshDoc))
	f.Add([]byte(clusterDoc + "---\n" + meshDoc))
	f.Add([]byte(crdDoc))
	f.Add([]byte(connectorMesh))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeOptions{Cluster: "a", AllowSystemKinds: true}.Decode("f.yaml", data)
		if err != nil {
			checkFieldErrors(t, err, "f.yaml")
			if objs != nil {
				t.Fatalf("objects returned with error %v", err)
			}
			return
		}
		st := lookupOf(objs)
		for _, o := range objs {
			if KindOf(o) == nil {
				t.Fatalf("Decode returned an empty object")
			}
			if err := Validate(o); err != nil {
				checkFieldErrors(t, err, "")
			}
			if err := ValidateRefs(o, st); err != nil {
				checkFieldErrors(t, err, "")
			}
			want := proto.Clone(o).(*meshfedv1.Object)
			Normalize(want)
			for _, format := range []string{"yaml", "json"} {
				out, err := Encode(o, format)
				if err != nil {
					t.Fatalf("Encode %s: %v", format, err)
				}
				back, err := DecodeOptions{AllowSystemKinds: true}.Decode("out", out)
				if err != nil {
					t.Fatalf("decode of encoded %s: %v\n%s", format, err, out)
				}
				if len(back) != 1 || !proto.Equal(back[0], want) {
					t.Fatalf("%s round trip differs:\n%s\ngot  %v\nwant %v", format, out, back, want)
				}
			}
		}
	})
}

func checkFieldErrors(t *testing.T, err error, file string) {
	t.Helper()
	l := AsFieldErrors(err)
	if len(l) == 0 {
		t.Fatalf("error without field errors: %v", err)
	}
	for _, e := range l {
		if e.File != file || e.Reason == "" || e.Doc < 0 || len(e.Path) > maxPathLen ||
			len(e.Reason) > maxReasonLen || !utf8.ValidString(e.Path+e.Reason) {
			t.Fatalf("malformed field error %#v", e)
		}
	}
}

// FuzzParseSelector checks that ParseSelector never panics and that a parsed
// selector prints to a string that parses to an equivalent selector.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "app=wc", "a==b,c!=d", "x,!y", "tier in (a, b),z notin (c)", "example.com/k=v", "=", "a in (", "!"} {
		f.Add(s)
	}
	labels := []map[string]string{nil, {"app": "wc"}, {"a": "b", "c": "d", "x": "", "tier": "a"}}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			checkFieldErrors(t, err, "")
			return
		}
		again, err := ParseSelector(sel.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, sel.String(), err)
		}
		if again.String() != sel.String() {
			t.Fatalf("%q: %q reparsed as %q", s, sel.String(), again.String())
		}
		for _, l := range labels {
			if sel.Matches(l) != again.Matches(l) {
				t.Fatalf("%q and %q disagree on %v", s, sel.String(), l)
			}
		}
	})
}
