package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestLookupFields(t *testing.T) {
	raws := make([][]byte, 4)
	data := []byte(` {"a": 1, "b" : "x\"y", "c": {"d": [1, {"e": "}"}]}, "a\u0062c": true, "a": null } `)
	if err := lookupFields(data, []string{"a", "b", "c", "abc"}, raws); err != nil {
		t.Fatal(err)
	}
	want := []string{`null`, `"x\"y"`, `{"d": [1, {"e": "}"}]}`, `true`}
	for i, w := range want {
		if string(raws[i]) != w {
			t.Errorf("field %d = %s, want %s", i, raws[i], w)
		}
	}
	for _, bad := range []string{``, `[]`, `"s"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1} x`, `{"a":"open}`} {
		if err := lookupFields([]byte(bad), []string{"a"}, raws[:1]); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzLookupFields checks the field scanner against encoding/json on
// every valid object: the same fields, with the same values.
func FuzzLookupFields(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":[1,2,"]"]},"d":"e\\"f"}`))
	f.Add([]byte(`{"a":null,"a":2}`))
	f.Add([]byte(`{"\u0061":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		names := []string{"a", "b", "c", "d"}
		raws := make([][]byte, len(names))
		err := lookupFields(data, names, raws) // must not panic on any input
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil || m == nil {
			return
		}
		if err != nil {
			t.Fatalf("valid object %q refused: %v", data, err)
		}
		for i, n := range names {
			want, ok := m[n]
			if !ok {
				if raws[i] != nil {
					t.Fatalf("field %q absent but found %q", n, raws[i])
				}
				continue
			}
			var got, exp any
			if json.Unmarshal(raws[i], &got) != nil || json.Unmarshal(want, &exp) != nil || !reflect.DeepEqual(got, exp) {
				t.Fatalf("field %q = %q, want %q", n, raws[i], want)
			}
		}
	})
}
