package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/internal/testkit"
)

// The benchmarks compare each connector with the raw client loop a user
// would write instead, on the same server in the same run:
//
//	go test -run '^$' -bench 'SinkInsert|SinkUpsert' -benchtime 40x -count 3 ./connector/postgres/
//	go test -run '^$' -bench CDCRead -benchtime 10x -count 3 ./connector/postgres/
//
// The variants run in turn within each iteration, so drifting load on a
// shared machine treats them alike; each reports rows/s and its ratio to
// the raw loop. docs/benchmarks/connectors-postgres.md has figures.

// benchBatch is the rows per sink Write (one transaction).
const benchBatch = 1000

func benchRecords(n int) []connector.SinkRecord {
	out := make([]connector.SinkRecord, n)
	stream := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	for i := range out {
		out[i] = connector.SinkRecord{
			Record: connector.Record{
				Key:   "dev-" + strconv.Itoa(i%500),
				Value: []byte(fmt.Sprintf(`{"temp":%d.25,"site":"site-%d","ok":true}`, i%90, i%7)),
			},
			Stream: stream,
		}
	}
	return out
}

type benchRow struct {
	Temp float64 `json:"temp"`
	Site string  `json:"site"`
	OK   bool    `json:"ok"`
}

// meters time the variants of one benchmark, run in turn within each
// iteration so that a machine whose load drifts treats them alike.
type meters struct {
	names []string
	took  []time.Duration
	rows  []int
}

func (m *meters) time(name string, rows int, f func()) {
	i := 0
	for i < len(m.names) && m.names[i] != name {
		i++
	}
	if i == len(m.names) {
		m.names = append(m.names, name)
		m.took = append(m.took, 0)
		m.rows = append(m.rows, 0)
	}
	start := time.Now()
	f()
	m.took[i] += time.Since(start)
	m.rows[i] += rows
}

// report gives each variant's rows/s and its ratio to the last one, the
// raw client loop.
// write times writing batch through s as name.
func (m *meters) write(b *testing.B, name string, s *Sink, batch []connector.SinkRecord) {
	m.time(name, len(batch), func() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	})
}

// renumber gives the records of batch the sequences after *seq, as the
// next batch of one stream.
func renumber(batch []connector.SinkRecord, seq *uint64) {
	for i := range batch {
		*seq++
		batch[i].Sequence = *seq
	}
}

func (m *meters) report(b *testing.B) {
	rate := func(i int) float64 { return float64(m.rows[i]) / m.took[i].Seconds() }
	raw := rate(len(m.names) - 1)
	for i, n := range m.names {
		b.ReportMetric(rate(i), n+"-rows/s")
		if i < len(m.names)-1 {
			b.ReportMetric(rate(i)/raw, n+"/raw")
		}
	}
}

func BenchmarkSinkInsert(b *testing.B) {
	url := newDatabase(b)
	db := dbConn(b, url)
	for _, t := range []string{"alo", "eo", "raw"} {
		mustExec(b, db, `CREATE TABLE `+t+` (device text, temp float8, site text, ok bool, seq bigint)`)
	}
	batch := benchRecords(benchBatch)
	ctx := context.Background()
	cols := map[string]any{"device": "key", "temp": "value.temp", "site": "value.site", "ok": "value.ok", "seq": "sequence"}
	alo := openSink(b, map[string]any{"url": url, "table": "alo", "columns": cols}, false)
	eo := openSink(b, map[string]any{"url": url, "table": "eo", "columns": cols}, true)
	conn := dbConn(b, url)
	rows := make([][]any, len(batch))
	var m meters
	seq := uint64(0)
	for b.Loop() {
		renumber(batch, &seq)
		m.write(b, "meshfed-at-least-once", alo, batch)
		m.write(b, "meshfed-effectively-once", eo, batch)
		m.time("raw-pgx-CopyFrom", len(batch), func() {
			for i, r := range batch {
				var v benchRow
				if err := json.Unmarshal(r.Value, &v); err != nil {
					b.Fatal(err)
				}
				rows[i] = []any{r.Key, v.Temp, v.Site, v.OK, int64(r.Sequence)}
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"raw"}, []string{"device", "temp", "site", "ok", "seq"}, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
	if st := eo.Stats(); st.Skipped != 0 {
		b.Fatalf("effectively-once sink skipped %d records of new batches", st.Skipped)
	}
	m.report(b)
}

func BenchmarkSinkUpsert(b *testing.B) {
	url := newDatabase(b)
	db := dbConn(b, url)
	for _, t := range []string{"eo", "raw"} {
		mustExec(b, db, `CREATE TABLE `+t+` (device text PRIMARY KEY, temp float8, site text, ok bool)`)
	}
	// Every key once per batch, so the raw loop (which cannot upsert a key
	// twice in one statement either) does the same work; every batch
	// updates the rows the one before inserted.
	batch := benchRecords(benchBatch)
	for i := range batch {
		batch[i].Key = "dev-" + strconv.Itoa(i)
	}
	ctx := context.Background()
	eo := openSink(b, map[string]any{"url": url, "table": "eo", "mode": "upsert", "columns": map[string]any{
		"device": "key", "temp": "value.temp", "site": "value.site", "ok": "value.ok"}}, true)
	conn := dbConn(b, url)
	const q = `INSERT INTO raw (device, temp, site, ok) VALUES ($1, $2, $3, $4)
		ON CONFLICT (device) DO UPDATE SET temp = EXCLUDED.temp, site = EXCLUDED.site, ok = EXCLUDED.ok`
	var m meters
	seq := uint64(0)
	for b.Loop() {
		renumber(batch, &seq)
		m.write(b, "meshfed-effectively-once", eo, batch)
		m.time("raw-pgx-batched-insert", len(batch), func() {
			var pb pgx.Batch
			for _, r := range batch {
				var v benchRow
				if err := json.Unmarshal(r.Value, &v); err != nil {
					b.Fatal(err)
				}
				pb.Queue(q, r.Key, v.Temp, v.Site, v.OK)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
	m.report(b)
}

// cdcBenchRows is the rows each CDC iteration streams, inserted in
// transactions of 100.
func cdcBenchRows() int {
	if n, err := strconv.Atoi(os.Getenv("MESHFED_BENCH_CDC_ROWS")); err == nil && n > 0 {
		return n
	}
	return 20000
}

func BenchmarkCDCRead(b *testing.B) {
	url := newDatabase(b)
	db := dbConn(b, url)
	mustExec(b, db, `CREATE TABLE items (id bigint PRIMARY KEY, device text, temp float8, at timestamptz)`)
	mustExec(b, db, `CREATE PUBLICATION bench FOR TABLE items`)
	n := cdcBenchRows()
	next := 0
	// drop removes a slot once its reader's session has ended.
	drop := func(b *testing.B, slot string) {
		b.Helper()
		testkit.Eventually(b, 30*time.Second, "drop slot "+slot, func() error {
			_, err := db.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot)
			return err
		})
	}
	// fill makes a slot, then writes n rows after it.
	fill := func(b *testing.B, slot string) {
		b.Helper()
		mustExec(b, db, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
		for i := 0; i < n; i += 100 {
			mustExec(b, db, `INSERT INTO items SELECT g, 'dev-' || (g % 500), g * 0.5, now() FROM generate_series($1::bigint, $2::bigint) g`,
				next+i, next+min(i+100, n)-1)
		}
		next += n
	}
	var m meters
	for i := 0; b.Loop(); i++ {
		ms, rs := fmt.Sprintf("m%d", i), fmt.Sprintf("r%d", i)
		// Both slots see the same rows.
		mustExec(b, db, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, ms)
		fill(b, rs)
		m.time("meshfed", n, func() {
			src, err := OpenSource(context.Background(), connector.Config{Replicas: 1, Values: map[string]any{
				"url": url, "slot": ms, "publication": "bench"}})
			if err != nil {
				b.Fatal(err)
			}
			recs := 0
			for recs < n {
				batch, err := src.Read(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				recs += len(batch)
				if err := src.Commit(context.Background(), batch[len(batch)-1].Position); err != nil {
					b.Fatal(err)
				}
			}
			src.Close()
		})
		m.time("raw-pglogrepl", n, func() {
			if err := rawCDC(url, rs, n); err != nil {
				b.Fatal(err)
			}
		})
		drop(b, ms)
		drop(b, rs)
	}
	m.report(b)
}

// rawCDC is the plain pglogrepl loop: receive, parse, keep each inserted
// row's column texts, confirm the end of each transaction.
func rawCDC(url, slot string, n int) error {
	ctx := context.Background()
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	err = pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: []string{"proto_version '1'", "publication_names 'bench'"}})
	if err != nil {
		return err
	}
	rows := 0
	var kept [][][]byte
	for rows < n {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) {
				continue
			}
			return err
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			return err
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *pglogrepl.InsertMessage:
			row := make([][]byte, len(m.Tuple.Columns))
			for i, c := range m.Tuple.Columns {
				row[i] = append([]byte(nil), c.Data...)
			}
			kept = append(kept, row)
			rows++
		case *pglogrepl.CommitMessage:
			kept = kept[:0]
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: m.TransactionEndLSN}); err != nil {
				return err
			}
		}
	}
	return nil
}
