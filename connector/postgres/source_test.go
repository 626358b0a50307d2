package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/meshfed/meshfed/internal/testkit"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
)

func openSource(t testing.TB, values map[string]any) connector.Source {
	t.Helper()
	// Slots are per server: name the source after its database, which is
	// new in every test.
	url := values["url"].(string)
	db := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	src, err := OpenSource(testCtx(t), connector.Config{
		Tenant: "acme", Namespace: "db", Mesh: "m", Name: db, Type: Type, Replicas: 1, Values: values,
	})
	if err != nil {
		t.Fatalf("open source: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// readN reads until it has n records, failing after a deadline.
func readN(t testing.TB, src connector.Source, n int) []connector.SourceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []connector.SourceRecord
	for len(out) < n {
		recs, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	if len(out) != n {
		t.Fatalf("read %d records, want %d", len(out), n)
	}
	return out
}

// summary is "op key value" per record, to compare with what a test did.
func summary(recs []connector.SourceRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s %s %s", r.Properties["op"], r.Key, r.Value))
	}
	return out
}

func TestCDCStreamsChangesInCommitOrder(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, `CREATE TABLE items (id int PRIMARY KEY, name text, n numeric, doc jsonb, ok bool)`)
	mustExec(t, db, `CREATE TABLE other (id int PRIMARY KEY)`)
	src := openSource(t, map[string]any{"url": url, "tables": []any{"items"}})
	mustExec(t, db, `INSERT INTO items VALUES (1, 'a"b', 1.50, '{"x": [1]}', true), (2, E'tab\t', NULL, NULL, false)`)
	mustExec(t, db, `INSERT INTO other VALUES (1)`) // not in the publication
	mustExec(t, db, `UPDATE items SET name = 'b' WHERE id = 1`)
	mustExec(t, db, `DELETE FROM items WHERE id = 2`)
	tx, err := db.Begin(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := tx.Exec(testCtx(t), `UPDATE items SET n = $1 WHERE id = 1`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	recs := readN(t, src, 7)
	want := []string{
		`insert 1 {"id":1,"name":"a\"b","n":1.50,"doc":{"x": [1]},"ok":true}`,
		`insert 2 {"id":2,"name":"tab\t","n":null,"doc":null,"ok":false}`,
		`update 1 {"id":1,"name":"b","n":1.50,"doc":{"x": [1]},"ok":true}`,
		`delete 2 {"id":2,"name":null,"n":null,"doc":null,"ok":null}`,
		`update 1 {"id":1,"name":"b","n":0,"doc":{"x": [1]},"ok":true}`,
		`update 1 {"id":1,"name":"b","n":1,"doc":{"x": [1]},"ok":true}`,
		`update 1 {"id":1,"name":"b","n":2,"doc":{"x": [1]},"ok":true}`,
	}
	if got := summary(recs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i, r := range recs {
		if !json.Valid(r.Value) {
			t.Errorf("record %d value is not JSON: %s", i, r.Value)
		}
		if r.Properties["table"] != "public.items" || r.Properties["lsn"] == "" || r.EventTime.IsZero() {
			t.Errorf("record %d properties %v, event time %v", i, r.Properties, r.EventTime)
		}
	}
	// Only a transaction's last record carries a position: records 1 (of
	// the two-row insert) and 4, 5 (of the three updates) carry none.
	for i, r := range recs {
		if has, want := r.Position != "", i != 0 && i != 4 && i != 5; has != want {
			t.Errorf("record %d position %q, want one: %v", i, r.Position, want)
		}
	}
}

// insertRows inserts rows from..to into items, one transaction each.
func insertRows(t testing.TB, url string, from, to int) {
	t.Helper()
	db := dbConn(t, url)
	for i := from; i <= to; i++ {
		mustExec(t, db, `INSERT INTO items (id, name) VALUES ($1, 'r')`, i)
	}
}

func ids(t testing.TB, recs []connector.SourceRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Key
	}
	return out
}

// cdcReadCommit25 opens a CDC source of table items (id, name) in a new
// database, inserts rows 1..40, reads them and commits through row 25
// only: rows 26..40 were read but, as far as the source knows, not
// written, so they must come again. It returns the database's URL, the
// source's config values and the source.
func cdcReadCommit25(t *testing.T) (string, map[string]any, connector.Source) {
	t.Helper()
	url := newDatabase(t)
	mustExec(t, dbConn(t, url), `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	values := map[string]any{"url": url, "tables": []any{"items"}}
	src := openSource(t, values)
	insertRows(t, url, 1, 40)
	recs := readN(t, src, 40)
	if err := src.Commit(testCtx(t), recs[24].Position); err != nil {
		t.Fatal(err)
	}
	return url, values, src
}

func TestCDCResumesAfterRestartWithoutLoss(t *testing.T) {
	url, values, src := cdcReadCommit25(t)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	insertRows(t, url, 41, 60) // while no source runs
	src2 := openSource(t, values)
	again := readN(t, src2, 35)
	var want []string
	for i := 26; i <= 60; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if got := ids(t, again); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after restart read %v, want %v", got, want)
	}
}

func TestPollReadsNewRowsAndResumes(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, `CREATE TABLE items (id bigserial PRIMARY KEY, name text)`)
	values := map[string]any{"url": url, "mode": "poll", "table": "items", "incrementingColumn": "id", "interval": "10ms", "batchSize": 7}
	insertRows(t, url, 1, 10)
	src := openSource(t, values)
	recs := readN(t, src, 10) // two polls: the batch size is 7
	if recs[0].Key != "1" || string(recs[0].Value) != `{"id":1,"name":"r"}` || recs[0].Properties["op"] != "insert" {
		t.Fatalf("first record %q %s %v", recs[0].Key, recs[0].Value, recs[0].Properties)
	}
	if err := src.Commit(testCtx(t), recs[5].Position); err != nil {
		t.Fatal(err)
	}
	src.Close()
	insertRows(t, url, 11, 12)
	src2 := openSource(t, values)
	got := ids(t, readN(t, src2, 6))
	if strings.Join(got, ",") != "7,8,9,10,11,12" {
		t.Fatalf("after restart read %v, want 7..12", got)
	}
}

func TestCDCIdleSourceLetsTheSlotAdvance(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, `CREATE TABLE items (id int PRIMARY KEY)`)
	mustExec(t, db, `CREATE TABLE other (id int PRIMARY KEY)`)
	openSource(t, map[string]any{"url": url, "tables": []any{"items"}})
	slotLSN := func() string {
		var lsn string
		if err := db.QueryRow(testCtx(t), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE database = current_database()`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	before := slotLSN()
	// WAL that holds nothing for the publication: the slot must not keep
	// it, or the server's disk fills while the source waits.
	for i := range 20 {
		mustExec(t, db, `INSERT INTO other VALUES ($1)`, i)
	}
	var walNow string
	if err := db.QueryRow(testCtx(t), `SELECT pg_current_wal_lsn()::text`).Scan(&walNow); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "slot confirms WAL of other tables", func() error {
		var behind bool
		if err := db.QueryRow(testCtx(t), `SELECT confirmed_flush_lsn < $1::pg_lsn FROM pg_replication_slots WHERE database = current_database()`, walNow).Scan(&behind); err != nil {
			return err
		}
		if behind {
			return fmt.Errorf("confirmed %s (was %s), WAL at %s", slotLSN(), before, walNow)
		}
		return nil
	})
}

func TestCDCCrashLosesNothing(t *testing.T) {
	url, values, src := cdcReadCommit25(t)
	// A crash: the connection ends with no goodbye and no last status.
	cdc := src.(*CDCSource)
	cdc.cancel()
	<-cdc.done
	cdc.conn.Conn().Close()
	insertRows(t, url, 41, 60)
	var src2 connector.Source
	testkit.Eventually(t, 30*time.Second, "reopen once the server let the slot go", func() error {
		s, err := OpenSource(testCtx(t), connector.Config{Tenant: "acme", Namespace: "db", Mesh: "m",
			Name: url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")], Replicas: 1, Values: values})
		if err != nil {
			return err
		}
		src2 = s
		return nil
	})
	t.Cleanup(func() { src2.Close() })
	// The first record again is at most the one after the last committed
	// position the server heard of: row 1 if no status update went out
	// after the commit, row 26 if one did. Nothing after it is missing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) == 0 || got[len(got)-1] != "60" {
		recs, err := src2.Read(ctx)
		if err != nil {
			t.Fatalf("read after %v: %v", got, err)
		}
		got = append(got, ids(t, recs)...)
	}
	n, err := strconv.Atoi(got[0])
	if err != nil || n < 1 || n > 26 {
		t.Fatalf("first record after the crash is row %q, want 1..26", got[0])
	}
	var want []string
	for i := n; i <= 60; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the crash read %v, want %d..60 in order", got, n)
	}
	t.Logf("after the crash, delivery resumed at row %d (committed through 25)", n)
}
