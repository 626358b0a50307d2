package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshfed/meshfed/connector"
)

// ErrBadRecord is returned by Write for a record whose value cannot fill
// the mapped columns (a value.<field> column and a value that is not a
// JSON object). The whole batch is refused, so nothing is lost silently.
var ErrBadRecord = errors.New("record does not fit the column mapping")

// SinkStats are a sink's counters since it was opened.
type SinkStats struct {
	// Written counts rows written in committed transactions.
	Written uint64
	// Skipped counts records not written because their sequence was at or
	// below the one stored for their stream: redeliveries.
	Skipped uint64
	// Batches counts committed transactions.
	Batches uint64
}

// Sink writes records into a PostgreSQL table, one transaction per batch.
type Sink struct {
	cfg     SinkConfig
	connCfg *pgx.ConnConfig
	// name identifies the sink in the offsets table:
	// tenant/namespace/mesh/name.
	name string
	// eo is set for effectively-once: offsets are kept and checked.
	eo  bool
	log *slog.Logger

	// db holds the open connection; none: connect at the next Write. Write
	// is not called concurrently (the SDK's contract), so no lock.
	db   heldConn
	cols []column
	// keyIdx are the indexes in cols of the upsert conflict columns.
	keyIdx []int
	// topNames are the top-level value fields the columns read; raws is
	// lookupFields' scratch space for them.
	topNames []string
	raws     [][]byte
	// SQL built once at Open.
	copySQL, stageSQL, upsertSQL string
	// offsets is the quoted offsets table; sinkLit the sink's name as a
	// literal.
	offsets, sinkLit string

	written, skipped, batches atomic.Uint64

	// beforeCommit, when set, runs after the rows and offsets are written
	// and before COMMIT; tests use it to break the connection there.
	beforeCommit func(ctx context.Context, conn *pgx.Conn)
}

var _ connector.Sink = (*Sink)(nil)

// column is one mapped target column.
type column struct {
	name string
	from string
	// path is the JSON field path for a "value.<field>" source.
	path []string
	// top indexes Sink.topNames: the value's top-level field the path
	// starts with.
	top int
	// bytea is set for a bytea column, written in hex.
	bytea bool
}

// stageTable is the per-connection temporary table upsert COPYs into.
const stageTable = "meshfed_sink_stage"

// OpenSink connects, checks the table and its columns, and creates the
// offsets table when effectively-once is asked for and it is missing.
func OpenSink(ctx context.Context, cfg connector.Config) (*Sink, error) {
	c, err := DecodeSinkConfig(cfg.Values)
	if err != nil {
		return nil, err
	}
	connCfg, err := pgx.ParseConfig(c.URL)
	if err != nil {
		return nil, &FieldError{Path: "url", Reason: err.Error()}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:     c,
		connCfg: connCfg,
		name:    strings.Join([]string{cfg.Tenant, cfg.Namespace, cfg.Mesh, cfg.Name}, "/"),
		eo:      cfg.EffectivelyOnce,
		log:     log,
	}
	for _, name := range slices.Sorted(maps.Keys(c.Columns)) {
		col := column{name: name, from: c.Columns[name]}
		if p, ok := strings.CutPrefix(col.from, "value."); ok {
			col.path = strings.Split(p, ".")
			col.top = slices.Index(s.topNames, col.path[0])
			if col.top < 0 {
				col.top = len(s.topNames)
				s.topNames = append(s.topNames, col.path[0])
			}
		}
		s.cols = append(s.cols, col)
	}
	for _, k := range c.KeyColumns {
		for i, col := range s.cols {
			if col.name == k {
				s.keyIdx = append(s.keyIdx, i)
			}
		}
	}
	s.raws = make([][]byte, len(s.topNames))
	s.buildSQL()
	if _, err := s.connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sink) buildSQL() {
	names := make([]string, len(s.cols))
	for i, c := range s.cols {
		names[i] = pgx.Identifier{c.name}.Sanitize()
	}
	list := strings.Join(names, ", ")
	table := quoteTable(s.cfg.Table)
	stage := pgx.Identifier{stageTable}.Sanitize()
	if s.cfg.Mode == ModeInsert {
		s.copySQL = fmt.Sprintf("COPY %s (%s) FROM STDIN", table, list)
	} else {
		s.copySQL = fmt.Sprintf("COPY %s (%s) FROM STDIN", stage, list)
		s.stageSQL = fmt.Sprintf("CREATE TEMP TABLE IF NOT EXISTS %s ON COMMIT DELETE ROWS AS SELECT %s FROM %s WITH NO DATA", stage, list, table)
		keys := make([]string, len(s.keyIdx))
		isKey := map[int]bool{}
		for i, k := range s.keyIdx {
			keys[i] = names[k]
			isKey[k] = true
		}
		var sets []string
		for i, n := range names {
			if !isKey[i] {
				sets = append(sets, n+" = EXCLUDED."+n)
			}
		}
		action := "DO NOTHING"
		if len(sets) > 0 {
			action = "DO UPDATE SET " + strings.Join(sets, ", ")
		}
		s.upsertSQL = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ON CONFLICT (%s) %s",
			table, list, list, stage, strings.Join(keys, ", "), action)
	}
	off := quoteTable(s.cfg.OffsetsTable)
	s.offsets = off
	s.sinkLit = quoteLiteral(s.name)
}

// connect returns the open connection, or opens one and prepares it: the
// table's columns checked, the offsets and stage tables created.
func (s *Sink) connect(ctx context.Context) (*pgx.Conn, error) {
	return s.db.get(ctx, func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, s.connCfg) },
		s.prepare)
}

func (s *Sink) prepare(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`, quoteTable(s.cfg.Table))
	if err != nil {
		return fmt.Errorf("table %s: %w", s.cfg.Table, err)
	}
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return err
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table %s: %w", s.cfg.Table, err)
	}
	for i, c := range s.cols {
		typ, ok := types[c.name]
		if !ok {
			return &FieldError{Path: "columns." + c.name, Reason: fmt.Sprintf("table %s has no column %q", s.cfg.Table, c.name)}
		}
		s.cols[i].bytea = typ == "bytea"
	}
	if s.eo {
		_, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			sink text NOT NULL,
			stream text NOT NULL,
			sequence numeric(20,0) NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (sink, stream))`, quoteTable(s.cfg.OffsetsTable)))
		if err != nil {
			return fmt.Errorf("create offsets table %s: %w", s.cfg.OffsetsTable, err)
		}
	}
	if s.stageSQL != "" {
		if _, err := conn.Exec(ctx, s.stageSQL); err != nil {
			return fmt.Errorf("create stage table: %w", err)
		}
	}
	return nil
}

// Write writes the batch in one transaction and returns after COMMIT.
// Under effectively-once, records at or below the sequence stored for
// their stream are skipped, and the new highest sequences are stored in
// the same transaction.
func (s *Sink) Write(ctx context.Context, batch []connector.SinkRecord) error {
	if len(batch) == 0 {
		return nil
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	n, skipped, err := s.write(ctx, conn, batch)
	if err != nil {
		if conn.IsClosed() {
			s.db.conn = nil
			s.log.Warn("postgres sink lost its connection; the next write opens another", "table", s.cfg.Table, "err", err)
		}
		return err
	}
	s.written.Add(uint64(n))
	s.skipped.Add(uint64(skipped))
	s.batches.Add(1)
	return nil
}

func (s *Sink) write(ctx context.Context, conn *pgx.Conn, batch []connector.SinkRecord) (written, skipped int, err error) {
	// An insert without effectively-once is one COPY, a transaction of
	// its own. Otherwise round trips are few, as each costs most on a
	// loaded machine: BEGIN and the offsets lock travel as one simple
	// query, then COPY, then the upsert, the offsets update and COMMIT as
	// another. Values in them are quoted literals.
	keep := batch
	var streams, seqs []string
	inTx := s.eo || s.cfg.Mode == ModeUpsert
	if inTx {
		defer func() {
			if err == nil || conn.IsClosed() {
				return
			}
			// A connection that cannot roll back is in no known state:
			// close it, and the next Write opens another.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
				_ = conn.Close(rctx)
			}
		}()
		if keep, streams, seqs, err = s.begin(ctx, conn, batch); err != nil {
			return 0, 0, err
		}
	}
	if len(keep) > 0 {
		if err := s.copyRows(ctx, conn, keep); err != nil {
			return 0, 0, err
		}
	}
	if s.beforeCommit != nil {
		s.beforeCommit(ctx, conn)
	}
	if inTx {
		if err := s.finish(ctx, conn, len(keep) > 0, streams, seqs); err != nil {
			return 0, 0, err
		}
	}
	return len(keep), len(batch) - len(keep), nil
}

// finish upserts from the stage, stores the offsets and commits, checking
// that the transaction did commit: COMMIT of a failed transaction answers
// ROLLBACK, not an error.
func (s *Sink) finish(ctx context.Context, conn *pgx.Conn, rows bool, streams, seqs []string) error {
	var q strings.Builder
	if s.cfg.Mode == ModeUpsert && rows {
		q.WriteString(s.upsertSQL)
		q.WriteString("; ")
	}
	if len(streams) > 0 {
		fmt.Fprintf(&q, "UPDATE %s o SET sequence = v.seq::numeric, updated_at = now() FROM unnest(%s, %s) AS v(stream, seq) WHERE o.sink = %s AND o.stream = v.stream; ",
			s.offsets, textArray(streams), textArray(seqs), s.sinkLit)
	}
	q.WriteString("COMMIT")
	results, err := conn.PgConn().Exec(ctx, q.String()).ReadAll()
	if err != nil {
		return fmt.Errorf("write %s: %w", s.cfg.Table, err)
	}
	if len(results) == 0 || results[len(results)-1].CommandTag.String() != "COMMIT" {
		return fmt.Errorf("commit to %s: the transaction was rolled back", s.cfg.Table)
	}
	return nil
}

// begin opens the transaction and, under effectively-once, locks the
// offsets of the batch's streams and drops the records at or below them.
// It returns the records to write and, per stream advanced, its new
// highest sequence.
func (s *Sink) begin(ctx context.Context, conn *pgx.Conn, batch []connector.SinkRecord) (keep []connector.SinkRecord, streams, seqs []string, err error) {
	type mark struct {
		seq uint64
		set bool
	}
	high := map[string]*mark{}
	if s.eo {
		for _, r := range batch {
			if r.Stream != "" && high[r.Stream] == nil {
				if strings.IndexByte(r.Stream, 0) >= 0 {
					return nil, nil, nil, fmt.Errorf("%w: stream name %q holds a NUL byte", ErrBadRecord, r.Stream)
				}
				high[r.Stream] = &mark{}
				streams = append(streams, r.Stream)
			}
		}
	}
	if len(streams) == 0 {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			return nil, nil, nil, fmt.Errorf("begin: %w", err)
		}
		return batch, nil, nil, nil
	}
	// Locks are taken in stream order, so two sinks writing overlapping
	// streams wait for each other instead of deadlocking.
	slices.Sort(streams)
	arr := textArray(streams)
	// The rows made by the INSERT are new, locked by it and hold -1; the
	// SELECT locks the others.
	q := fmt.Sprintf("BEGIN; INSERT INTO %[1]s (sink, stream, sequence) SELECT %[2]s, unnest(%[3]s), -1 ON CONFLICT DO NOTHING; "+
		"SELECT stream, sequence::text FROM %[1]s WHERE sink = %[2]s AND stream = ANY(%[3]s) ORDER BY stream FOR UPDATE", s.offsets, s.sinkLit, arr)
	results, err := conn.PgConn().Exec(ctx, q).ReadAll()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("lock offsets: %w", err)
	}
	if len(results) != 3 {
		return nil, nil, nil, fmt.Errorf("lock offsets: %d results, want 3", len(results))
	}
	for _, row := range results[2].Rows {
		if len(row) != 2 {
			return nil, nil, nil, fmt.Errorf("lock offsets: row of %d columns", len(row))
		}
		stream, seq := string(row[0]), string(row[1])
		if seq == "-1" {
			continue
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("offsets of stream %s: %w", stream, err)
		}
		if m := high[stream]; m != nil {
			*m = mark{seq: n, set: true}
		}
	}
	start := make(map[string]mark, len(high))
	for k, m := range high {
		start[k] = *m
	}
	keep = make([]connector.SinkRecord, 0, len(batch))
	for _, r := range batch {
		if r.Stream == "" {
			keep = append(keep, r)
			continue
		}
		m := high[r.Stream]
		if m.set && r.Sequence <= m.seq {
			continue
		}
		*m = mark{seq: r.Sequence, set: true}
		keep = append(keep, r)
	}
	streams = streams[:0]
	for k, m := range high {
		if m.set && (!start[k].set || m.seq != start[k].seq) {
			streams = append(streams, k)
			seqs = append(seqs, strconv.FormatUint(m.seq, 10))
		}
	}
	return keep, streams, seqs, nil
}

// textArray writes strings as an SQL text[] of quoted literals.
func textArray(ss []string) string {
	var b strings.Builder
	b.WriteString("ARRAY[")
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteLiteral(s))
	}
	b.WriteString("]::text[]")
	return b.String()
}

// copyRows COPYs the rows into the table (insert) or into the stage
// table, from which the upsert statement takes them.
func (s *Sink) copyRows(ctx context.Context, conn *pgx.Conn, recs []connector.SinkRecord) error {
	var buf bytes.Buffer
	cells := make([]cell, len(s.cols))
	if s.cfg.Mode == ModeUpsert {
		recs = s.lastPerKey(recs)
	}
	for i := range recs {
		if err := s.cells(&recs[i], cells); err != nil {
			return err
		}
		for j, c := range cells {
			if j > 0 {
				buf.WriteByte('\t')
			}
			appendCopy(&buf, c, s.cols[j].bytea)
		}
		buf.WriteByte('\n')
	}
	if _, err := conn.PgConn().CopyFrom(ctx, &buf, s.copySQL); err != nil {
		return fmt.Errorf("copy into %s: %w", s.cfg.Table, err)
	}
	return nil
}

// lastPerKey keeps, for each conflict key, only the last record: one
// INSERT ... ON CONFLICT may not touch a row twice, and the last write
// wins anyway.
func (s *Sink) lastPerKey(recs []connector.SinkRecord) []connector.SinkRecord {
	seen := make(map[string]bool, len(recs))
	out := make([]connector.SinkRecord, 0, len(recs))
	cells := make([]cell, len(s.cols))
	var key strings.Builder
	for i := len(recs) - 1; i >= 0; i-- {
		if err := s.cells(&recs[i], cells); err != nil {
			out = append(out, recs[i]) // writeRows reports the error
			continue
		}
		key.Reset()
		for _, k := range s.keyIdx {
			if cells[k].null {
				key.WriteString("\x00n")
			} else {
				key.WriteString(strconv.Itoa(len(cells[k].text)))
				key.WriteByte(':')
				key.WriteString(cells[k].text)
			}
		}
		if seen[key.String()] {
			continue
		}
		seen[key.String()] = true
		out = append(out, recs[i])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// cell is one column's value in text form.
type cell struct {
	text string
	null bool
}

// cells fills out with the record's column values.
func (s *Sink) cells(r *connector.SinkRecord, out []cell) error {
	parsed := false
	for i, c := range s.cols {
		switch {
		case c.from == "key":
			out[i] = cell{text: r.Key}
		case c.from == "value":
			out[i] = cell{text: string(r.Value), null: r.Value == nil}
		case c.path != nil:
			if !parsed {
				parsed = true
				if err := lookupFields(r.Value, s.topNames, s.raws); err != nil {
					return fmt.Errorf("%w: stream %q sequence %d: value: %v", ErrBadRecord, r.Stream, r.Sequence, err)
				}
			}
			out[i] = jsonCell(s.raws[c.top], c.path[1:])
		case c.from == "eventTime":
			if r.EventTime.IsZero() {
				out[i] = cell{null: true}
			} else {
				out[i] = cell{text: r.EventTime.UTC().Format(time.RFC3339Nano)}
			}
		case c.from == "topic":
			out[i] = cell{text: r.Topic}
		case c.from == "stream":
			out[i] = cell{text: r.Stream}
		case c.from == "sequence":
			out[i] = cell{text: strconv.FormatUint(r.Sequence, 10)}
		default: // property.<name>
			v, ok := r.Properties[strings.TrimPrefix(c.from, "property.")]
			out[i] = cell{text: v, null: !ok}
		}
	}
	return nil
}

// jsonCell follows the rest of a field path into raw, a top-level
// field's value: see rawCell for the text it makes.
func jsonCell(raw []byte, path []string) cell {
	one := make([][]byte, 1)
	for _, f := range path {
		if raw == nil || lookupFields(raw, []string{f}, one) != nil {
			return cell{null: true}
		}
		raw = one[0]
	}
	return rawCell(raw)
}

// appendCopy writes one value in COPY's text format.
func appendCopy(buf *bytes.Buffer, c cell, bytea bool) {
	if c.null {
		buf.WriteString(`\N`)
		return
	}
	if bytea {
		buf.WriteString(`\\x`)
		buf.WriteString(hex.EncodeToString([]byte(c.text)))
		return
	}
	s := c.text
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\t':
			esc = `\t`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		default:
			continue
		}
		buf.WriteString(s[start:i])
		buf.WriteString(esc)
		start = i + 1
	}
	buf.WriteString(s[start:])
}

// Stats returns the sink's counters.
func (s *Sink) Stats() SinkStats {
	return SinkStats{Written: s.written.Load(), Skipped: s.skipped.Load(), Batches: s.batches.Load()}
}

// Close closes the connection.
func (s *Sink) Close() error {
	return s.db.close()
}
