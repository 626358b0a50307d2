package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshfed/meshfed/connector"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dbConn opens a connection for the test's own queries.
func dbConn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustExec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(testCtx(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t testing.TB, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func openSink(t testing.TB, values map[string]any, eo bool) *Sink {
	t.Helper()
	s, err := OpenSink(testCtx(t), connector.Config{
		Tenant: "acme", Namespace: "iot", Mesh: "m", Name: "pg", Type: Type,
		Values: values, EffectivelyOnce: eo,
	})
	if err != nil {
		t.Fatalf("open sink: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// readings returns records seq from..to of one stream, keyed by device.
func readings(stream string, from, to int) []connector.SinkRecord {
	var out []connector.SinkRecord
	for i := from; i <= to; i++ {
		out = append(out, connector.SinkRecord{
			Record: connector.Record{
				Key:   fmt.Sprintf("%s-dev-%d", stream, i),
				Value: []byte(fmt.Sprintf(`{"temp": %d.5, "site": {"name": "s%d"}}`, i, i%3)),
			},
			Stream: stream, Sequence: uint64(i),
		})
	}
	return out
}

const readingsTable = `CREATE TABLE readings (id bigserial PRIMARY KEY, device text NOT NULL, temp float8, site text, seq bigint)`

var readingsColumns = map[string]any{"device": "key", "temp": "value.temp", "site": "value.site.name", "seq": "sequence"}

func TestSinkInsertMapsColumns(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, `CREATE TABLE events (k text, body jsonb, raw bytea, note text, n int, ok bool, at timestamptz, prop text, topic text)`)
	s := openSink(t, map[string]any{"url": url, "table": "public.events", "columns": map[string]any{
		"k": "key", "body": "value", "raw": "value", "note": "value.note", "n": "value.n", "ok": "value.ok",
		"at": "eventTime", "prop": "property.device", "topic": "topic",
	}}, false)
	at := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	batch := []connector.SinkRecord{
		{Record: connector.Record{Key: "a", Value: []byte(`{"note":"tab\there\nline \\ back","n":7,"ok":true}`),
			Properties: map[string]string{"device": "d1"}, EventTime: at}, Topic: "persistent://t/n/in"},
		{Record: connector.Record{Key: "b", Value: []byte(`{"note":null}`)}, Topic: "persistent://t/n/in"},
	}
	if err := s.Write(testCtx(t), batch); err != nil {
		t.Fatal(err)
	}
	var note, prop string
	var n int
	var ok bool
	var gotAt time.Time
	var raw []byte
	err := db.QueryRow(testCtx(t), `SELECT note, n, ok, at, prop, raw FROM events WHERE k = 'a'`).Scan(&note, &n, &ok, &gotAt, &prop, &raw)
	if err != nil {
		t.Fatal(err)
	}
	if note != "tab\there\nline \\ back" || n != 7 || !ok || !gotAt.Equal(at) || prop != "d1" || string(raw) != string(batch[0].Value) {
		t.Fatalf("row a = %q %d %v %v %q %q", note, n, ok, gotAt, prop, raw)
	}
	if got := count(t, db, `SELECT count(*) FROM events WHERE k = 'b' AND note IS NULL AND n IS NULL AND prop IS NULL AND at IS NULL`); got != 1 {
		t.Fatalf("row b with NULLs: %d rows", got)
	}
	if st := s.Stats(); st.Written != 2 || st.Batches != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSinkEffectivelyOnceSkipsReplays(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, readingsTable)
	values := map[string]any{"url": url, "table": "readings", "columns": readingsColumns}
	s := openSink(t, values, true)
	ctx := testCtx(t)
	if err := s.Write(ctx, readings("a", 1, 100)); err != nil {
		t.Fatal(err)
	}
	// The same batch again, as after a lost acknowledgement, then one that
	// overlaps it, and a second stream.
	if err := s.Write(ctx, readings("a", 1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, append(readings("a", 51, 150), readings("b", 1, 10)...)); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM readings`); got != 160 {
		t.Fatalf("rows = %d, want 160", got)
	}
	if got := count(t, db, `SELECT count(*) FROM (SELECT device, seq FROM readings GROUP BY 1, 2 HAVING count(*) > 1) d`); got != 0 {
		t.Fatalf("%d duplicated rows", got)
	}
	if st := s.Stats(); st.Written != 160 || st.Skipped != 150 {
		t.Fatalf("stats = %+v, want 160 written, 150 skipped", st)
	}
	// A new instance of the same sink (a restart, a move) sees the offsets.
	s2 := openSink(t, values, true)
	if err := s2.Write(ctx, readings("a", 140, 150)); err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Written != 0 || st.Skipped != 11 {
		t.Fatalf("restarted sink stats = %+v, want all 11 skipped", st)
	}
	if got := count(t, db, `SELECT count(*) FROM meshfed_sink_offsets WHERE sink = 'acme/iot/m/pg' AND stream = 'a' AND sequence = 150`); got != 1 {
		t.Fatalf("offset of stream a not stored as 150")
	}
}

// terminate ends the sink's server session, as a network failure would.
func terminate(t testing.TB, db *pgx.Conn, s *Sink) {
	t.Helper()
	mustExec(t, db, `SELECT pg_terminate_backend($1)`, int(s.db.conn.PgConn().PID()))
}

func TestSinkEffectivelyOnceWhenConnectionDropsAfterCommit(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, readingsTable)
	s := openSink(t, map[string]any{"url": url, "table": "readings", "columns": readingsColumns}, true)
	ctx := testCtx(t)
	if err := s.Write(ctx, readings("a", 1, 50)); err != nil {
		t.Fatal(err)
	}
	// The rows are committed but the acknowledgement never reaches the
	// topic: the connection drops and the batch is delivered again.
	terminate(t, db, s)
	batch := readings("a", 1, 60)
	var err error
	for range 3 { // the first try may meet the dead connection
		if err = s.Write(ctx, batch); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM readings`); got != 60 {
		t.Fatalf("rows = %d, want 60", got)
	}
}

func TestSinkEffectivelyOnceWhenConnectionDropsBeforeCommit(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, readingsTable)
	s := openSink(t, map[string]any{"url": url, "table": "readings", "columns": readingsColumns}, true)
	ctx := testCtx(t)
	s.beforeCommit = func(ctx context.Context, conn *pgx.Conn) {
		mustExec(t, db, `SELECT pg_terminate_backend($1)`, int(conn.PgConn().PID()))
	}
	if err := s.Write(ctx, readings("a", 1, 50)); err == nil {
		t.Fatal("Write returned nil although its connection was ended before COMMIT")
	}
	if got := count(t, db, `SELECT count(*) FROM readings`); got != 0 {
		t.Fatalf("rows = %d after a failed transaction, want 0", got)
	}
	s.beforeCommit = nil
	if err := s.Write(ctx, readings("a", 1, 50)); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(DISTINCT seq) FROM readings HAVING count(*) = 50`); got != 50 {
		t.Fatalf("distinct rows = %d, want 50 rows once each", got)
	}
}

func TestSinkUpsertByKey(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, `CREATE TABLE latest (device text PRIMARY KEY, temp float8, seq bigint)`)
	s := openSink(t, map[string]any{"url": url, "table": "latest", "mode": "upsert",
		"columns": map[string]any{"device": "key", "temp": "value.temp", "seq": "sequence"}}, true)
	ctx := testCtx(t)
	rec := func(seq int, dev string, temp float64) connector.SinkRecord {
		return connector.SinkRecord{Record: connector.Record{Key: dev, Value: []byte(fmt.Sprintf(`{"temp":%g}`, temp))},
			Stream: "a", Sequence: uint64(seq)}
	}
	// A key twice in one batch: the later record wins.
	if err := s.Write(ctx, []connector.SinkRecord{rec(1, "x", 1), rec(2, "y", 2), rec(3, "x", 3)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []connector.SinkRecord{rec(4, "y", 4), rec(5, "z", 5)}); err != nil {
		t.Fatal(err)
	}
	// A replay of an old record must not roll a row back.
	if err := s.Write(ctx, []connector.SinkRecord{rec(2, "y", 2)}); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	rows, err := db.Query(ctx, `SELECT device, temp FROM latest`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		var v float64
		if err := rows.Scan(&d, &v); err != nil {
			t.Fatal(err)
		}
		got[d] = v
	}
	want := map[string]float64{"x": 3, "y": 4, "z": 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
}

func TestSinkRefusesBadRecordAndUnknownColumn(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, readingsTable)
	_, err := OpenSink(testCtx(t), connector.Config{Values: map[string]any{"url": url, "table": "readings",
		"columns": map[string]any{"device": "key", "nope": "value"}}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "columns.nope" {
		t.Fatalf("open with an unknown column: %v, want a FieldError at columns.nope", err)
	}
	s := openSink(t, map[string]any{"url": url, "table": "readings", "columns": readingsColumns}, false)
	bad := []connector.SinkRecord{{Record: connector.Record{Key: "k", Value: []byte("not json")}}}
	if err := s.Write(testCtx(t), bad); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("write of a non-JSON value: %v, want ErrBadRecord", err)
	}
}
