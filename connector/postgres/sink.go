package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

	// conn is the open connection; nil: connect at the next Write. Write
	// is not called concurrently (the SDK's contract), so no lock.
	conn *pgx.Conn
	cols []column
	// keyIdx are the indexes in cols of the upsert conflict columns.
	keyIdx []int
	// SQL built once at Open.
	copySQL, stageSQL, upsertSQL, offsetsInit, offsetsLock, offsetsSet string

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
	for _, name := range sortedKeys(c.Columns) {
		col := column{name: name, from: c.Columns[name]}
		if p, ok := strings.CutPrefix(col.from, "value."); ok {
			col.path = strings.Split(p, ".")
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
	s.offsetsInit = fmt.Sprintf("INSERT INTO %s (sink, stream, sequence) SELECT $1, unnest($2::text[]), -1 ON CONFLICT DO NOTHING", off)
	s.offsetsLock = fmt.Sprintf("SELECT stream, sequence::text FROM %s WHERE sink = $1 AND stream = ANY($2::text[]) FOR UPDATE", off)
	s.offsetsSet = fmt.Sprintf("UPDATE %s o SET sequence = v.seq::numeric, updated_at = now() FROM unnest($2::text[], $3::text[]) AS v(stream, seq) WHERE o.sink = $1 AND o.stream = v.stream", off)
}

// connect returns the open connection, or opens one and prepares it: the
// table's columns checked, the offsets and stage tables created.
func (s *Sink) connect(ctx context.Context) (*pgx.Conn, error) {
	if s.conn != nil && !s.conn.IsClosed() {
		return s.conn, nil
	}
	s.conn = nil
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgresql: %w", err)
	}
	if err := s.prepare(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	s.conn = conn
	return conn, nil
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
			s.conn = nil
		}
		return err
	}
	s.written.Add(uint64(n))
	s.skipped.Add(uint64(skipped))
	s.batches.Add(1)
	return nil
}

func (s *Sink) write(ctx context.Context, conn *pgx.Conn, batch []connector.SinkRecord) (written, skipped int, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.Background())
		}
	}()
	keep := batch
	var streams, seqs []string
	if s.eo {
		keep, streams, seqs, err = s.filter(ctx, tx, batch)
		if err != nil {
			return 0, 0, err
		}
	}
	if len(keep) > 0 {
		if err := s.writeRows(ctx, conn, tx, keep); err != nil {
			return 0, 0, err
		}
	}
	if len(streams) > 0 {
		if _, err := tx.Exec(ctx, s.offsetsSet, s.name, streams, seqs); err != nil {
			return 0, 0, fmt.Errorf("store offsets: %w", err)
		}
	}
	if s.beforeCommit != nil {
		s.beforeCommit(ctx, conn)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("commit: %w", err)
	}
	return len(keep), len(batch) - len(keep), nil
}

// filter locks the offsets of the batch's streams and drops the records
// at or below them. It returns the records to write and, per stream
// advanced, its new highest sequence.
func (s *Sink) filter(ctx context.Context, tx pgx.Tx, batch []connector.SinkRecord) (keep []connector.SinkRecord, streams, seqs []string, err error) {
	type mark struct {
		seq uint64
		set bool
	}
	high := map[string]*mark{}
	for _, r := range batch {
		if r.Stream != "" && high[r.Stream] == nil {
			high[r.Stream] = &mark{}
			streams = append(streams, r.Stream)
		}
	}
	if len(streams) == 0 {
		return batch, nil, nil, nil
	}
	if _, err := tx.Exec(ctx, s.offsetsInit, s.name, streams); err != nil {
		return nil, nil, nil, fmt.Errorf("init offsets: %w", err)
	}
	rows, err := tx.Query(ctx, s.offsetsLock, s.name, streams)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("lock offsets: %w", err)
	}
	for rows.Next() {
		var stream, seq string
		if err := rows.Scan(&stream, &seq); err != nil {
			return nil, nil, nil, err
		}
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
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("lock offsets: %w", err)
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

// writeRows COPYs the rows into the table (insert) or into the stage
// table and from there upserts them.
func (s *Sink) writeRows(ctx context.Context, conn *pgx.Conn, tx pgx.Tx, recs []connector.SinkRecord) error {
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
	if s.cfg.Mode == ModeUpsert {
		if _, err := tx.Exec(ctx, s.upsertSQL); err != nil {
			return fmt.Errorf("upsert into %s: %w", s.cfg.Table, err)
		}
		// ON COMMIT DELETE ROWS empties the stage at COMMIT; an explicit
		// TRUNCATE is not needed.
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
	var obj map[string]json.RawMessage
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
				if err := json.Unmarshal(r.Value, &obj); err != nil {
					return fmt.Errorf("%w: stream %q sequence %d: value is not a JSON object: %v", ErrBadRecord, r.Stream, r.Sequence, err)
				}
			}
			out[i] = jsonCell(obj, c.path)
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

// jsonCell reads a field path out of a JSON object: strings unquoted,
// numbers, booleans, objects and arrays as their JSON text, null or a
// missing field as NULL.
func jsonCell(obj map[string]json.RawMessage, path []string) cell {
	raw, ok := obj[path[0]]
	for _, f := range path[1:] {
		if !ok {
			break
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(raw, &inner) != nil {
			ok = false
			break
		}
		raw, ok = inner[f]
	}
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return cell{null: true}
	}
	if raw[0] == '"' {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return cell{text: str}
		}
	}
	return cell{text: string(raw)}
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
	if s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.conn.Close(ctx)
	s.conn = nil
	return err
}
