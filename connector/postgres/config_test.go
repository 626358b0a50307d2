package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/jackc/pglogrepl"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
)

// paths returns the field paths of a decode error, sorted.
func paths(t testing.TB, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is not a *FieldError", err)
		}
		out = append(out, fe.Path)
	}
	walk(err)
	sort.Strings(out)
	return out
}

func TestDecodeSinkConfig(t *testing.T) {
	ok := map[string]any{"url": "postgres://h/db", "table": "s.t", "columns": map[string]any{"id": "key", "v": "value.a.b"}}
	c, err := DecodeSinkConfig(ok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeInsert || c.OffsetsTable != DefaultSinkOffsetsTable || len(c.KeyColumns) != 0 {
		t.Fatalf("defaults not filled in: %+v", c)
	}
	up := map[string]any{"url": "u", "table": "t", "mode": "upsert", "columns": map[string]any{"id": "key", "v": "value"}}
	if c, err := DecodeSinkConfig(up); err != nil || strings.Join(c.KeyColumns, ",") != "id" {
		t.Fatalf("upsert key columns %v, %v; want [id] from the key mapping", c.KeyColumns, err)
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"empty", map[string]any{}, "columns,table,url"},
		{"wrong types", map[string]any{"url": 5, "table": true, "columns": []any{"a"}}, "columns,table,url"},
		{"unknown field", map[string]any{"url": "u", "table": "t", "columns": map[string]any{"a": "key"}, "colums": 1}, "colums"},
		{"bad mode", map[string]any{"url": "u", "table": "t", "mode": "merge", "columns": map[string]any{"a": "key"}}, "mode"},
		{"bad source", map[string]any{"url": "u", "table": "t", "columns": map[string]any{"a": "keys", "b": "value.", "c": 3}}, "columns.a,columns.b,columns.c"},
		{"empty columns", map[string]any{"url": "u", "table": "t", "columns": map[string]any{}}, "columns"},
		{"bad table", map[string]any{"url": "u", "table": "a.b.c", "columns": map[string]any{"a": "key"}}, "table"},
		{"long name", map[string]any{"url": "u", "table": strings.Repeat("x", 64), "columns": map[string]any{"a": "key"}}, "table"},
		{"upsert without key", map[string]any{"url": "u", "table": "t", "mode": "upsert", "columns": map[string]any{"a": "value"}}, "keyColumns"},
		{"key column not mapped", map[string]any{"url": "u", "table": "t", "mode": "upsert", "columns": map[string]any{"a": "key"}, "keyColumns": []any{"a", "b"}}, "keyColumns[1]"},
		{"key columns in insert", map[string]any{"url": "u", "table": "t", "columns": map[string]any{"a": "key"}, "keyColumns": []any{"a"}}, "keyColumns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeSinkConfig(tc.values)
			if got := strings.Join(paths(t, err), ","); got != tc.want {
				t.Fatalf("error paths %q, want %q (error: %v)", got, tc.want, err)
			}
		})
	}
}

func TestDecodeSourceConfig(t *testing.T) {
	c, err := DecodeSourceConfig(map[string]any{"url": "u"})
	if err != nil || c.Mode != ModeCDC {
		t.Fatalf("cdc defaults: %+v, %v", c, err)
	}
	c, err = DecodeSourceConfig(map[string]any{"url": "u", "mode": "poll", "table": "t", "incrementingColumn": "id", "interval": "250ms", "batchSize": 10.0})
	if err != nil || c.Interval != 250*time.Millisecond || c.BatchSize != 10 || c.OffsetsTable != DefaultSourceOffsetsTable {
		t.Fatalf("poll config: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no url", map[string]any{}, "url"},
		{"bad mode", map[string]any{"url": "u", "mode": "stream"}, "mode"},
		{"bad slot", map[string]any{"url": "u", "slot": "My-Slot"}, "slot"},
		{"bad tables", map[string]any{"url": "u", "tables": []any{"a", 3, "x.y.z"}}, "tables[1],tables[2]"},
		{"poll field in cdc", map[string]any{"url": "u", "table": "t", "interval": "1s"}, "interval,table"},
		{"cdc field in poll", map[string]any{"url": "u", "mode": "poll", "table": "t", "incrementingColumn": "id", "slot": "s"}, "slot"},
		{"poll needs table and column", map[string]any{"url": "u", "mode": "poll"}, "incrementingColumn,table"},
		{"bad numbers", map[string]any{"url": "u", "mode": "poll", "table": "t", "incrementingColumn": "id", "interval": "soon", "batchSize": 0.5}, "batchSize,interval"},
		{"negative interval", map[string]any{"url": "u", "mode": "poll", "table": "t", "incrementingColumn": "id", "interval": "-1s"}, "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeSourceConfig(tc.values)
			if got := strings.Join(paths(t, err), ","); got != tc.want {
				t.Fatalf("error paths %q, want %q (error: %v)", got, tc.want, err)
			}
		})
	}
}

func TestRegisteredFactoriesValidate(t *testing.T) {
	sink, err := connector.LookupSink(Type)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Validate(map[string]any{"url": "u"}); err == nil {
		t.Fatal("sink Validate accepted a config with no table")
	}
	src, err := connector.LookupSource(Type)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Validate(map[string]any{"url": "u"}); err != nil {
		t.Fatalf("source Validate: %v", err)
	}
	if _, err := src.Open(t.Context(), connector.Config{Replicas: 2, Values: map[string]any{"url": "u"}}); !errors.Is(err, ErrOneReplica) {
		t.Fatalf("cdc source with 2 replicas: %v, want ErrOneReplica", err)
	}
}

// fuzzConfig decodes JSON into a config map the way the object decoder
// hands one over.
func fuzzConfig(data []byte) (map[string]any, bool) {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

func checkFieldErrors(t *testing.T, err error) {
	for _, p := range paths(t, err) {
		if p == "" {
			t.Fatalf("error without a field path: %v", err)
		}
	}
}

func FuzzDecodeSinkConfig(f *testing.F) {
	f.Add([]byte(`{"url":"u","table":"t","columns":{"a":"key","b":"value.x"}}`))
	f.Add([]byte(`{"url":"u","table":"s.t","mode":"upsert","columns":{"a":"key"},"keyColumns":["a"]}`))
	f.Add([]byte(`{"url":1,"table":[],"columns":{"a":null},"offsetsTable":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := fuzzConfig(data)
		if !ok {
			return
		}
		c, err := DecodeSinkConfig(m)
		checkFieldErrors(t, err)
		if err == nil {
			if c.URL == "" || c.Table == "" || len(c.Columns) == 0 || (c.Mode == ModeUpsert) != (len(c.KeyColumns) > 0) {
				t.Fatalf("accepted an incomplete config: %+v", c)
			}
			s := &Sink{cfg: c}
			for _, name := range slices.Sorted(maps.Keys(c.Columns)) {
				s.cols = append(s.cols, column{name: name, from: c.Columns[name]})
			}
			s.buildSQL() // must not panic on any accepted config
		}
	})
}

func FuzzDecodeSourceConfig(f *testing.F) {
	f.Add([]byte(`{"url":"u","tables":["a","s.b"],"slot":"s","publication":"p"}`))
	f.Add([]byte(`{"url":"u","mode":"poll","table":"t","incrementingColumn":"id","interval":"1s","batchSize":5}`))
	f.Add([]byte(`{"url":"u","mode":"poll","batchSize":1e300,"interval":7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := fuzzConfig(data)
		if !ok {
			return
		}
		c, err := DecodeSourceConfig(m)
		checkFieldErrors(t, err)
		if err == nil && c.Mode == ModePoll && (c.Table == "" || c.IncrementingColumn == "" || c.Interval <= 0 || c.BatchSize < 1) {
			t.Fatalf("accepted an incomplete poll config: %+v", c)
		}
	})
}

func TestAppendJSONStringIsValidJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "ctl\x00\x01\x1f\n\r\t", "ünï", "bad\xffutf8"} {
		var b strings.Builder
		buf := new(bytes.Buffer)
		appendJSONString(buf, s)
		b.Write(buf.Bytes())
		var back string
		if err := json.Unmarshal([]byte(b.String()), &back); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, b.String(), err)
		}
		if strings.ToValidUTF8(s, "\ufffd") != back {
			t.Fatalf("%q came back as %q", s, back)
		}
	}
}

func TestFormatLSNMatchesPglogrepl(t *testing.T) {
	for _, v := range []uint64{0, 1, 0x16B374D848, 0xFFFFFFFFFFFFFFFF, 0xABCDEF0012345678} {
		lsn := pglogrepl.LSN(v)
		if got, want := formatLSN(lsn), lsn.String(); got != want {
			t.Fatalf("formatLSN(%#x) = %s, want %s", v, got, want)
		}
	}
}

// TestCheckConfigNamesKeys: through the SDK, as apply calls it, a bad
// field comes back as a config error keyed by its path in the config.
func TestCheckConfigNamesKeys(t *testing.T) {
	typeErr, errs := connector.CheckConfig("sink", Type, map[string]any{
		"url": "postgres://x", "table": "t", "columns": map[string]any{"x": "valu.temp"},
	})
	if typeErr != nil {
		t.Fatal(typeErr)
	}
	if len(errs) != 1 || errs[0].Key != "columns.x" {
		t.Fatalf("CheckConfig = %v, want one error keyed columns.x", errs)
	}
}
