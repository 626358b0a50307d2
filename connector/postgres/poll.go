package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshfed/meshfed/connector"
)

// PollSource reads new rows of one table by an incrementing column, for
// users without replication rights. It sees inserts only, and a row whose
// transaction commits after one holding a higher value of the column was
// read is missed: see docs/connectors-postgres.md.
type PollSource struct {
	cfg  SourceConfig
	log  *slog.Logger
	name string

	// db holds the open connection; none: connect at the next Read. Read
	// and Commit are not called concurrently (the agent's loop calls
	// both), so no lock.
	db heldConn
	// last is the incrementing column's value (text) of the last row
	// read; empty with !started: read from the table's start.
	last    string
	started bool

	firstSQL, nextSQL, commitSQL string
	// interval is the wait after a poll that found nothing.
	interval time.Duration
}

var _ connector.Source = (*PollSource)(nil)

// OpenPollSource connects, creates the offsets table when missing and
// resumes after the last committed row.
func OpenPollSource(ctx context.Context, cfg connector.Config, c SourceConfig) (*PollSource, error) {
	s := &PollSource{
		cfg:      c,
		log:      cfg.Logger,
		name:     strings.Join([]string{cfg.Tenant, cfg.Namespace, cfg.Mesh, cfg.Name}, "/"),
		interval: c.Interval,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	var pos *string
	err = conn.QueryRow(ctx, fmt.Sprintf(`SELECT position FROM %s WHERE source = $1`, quoteTable(c.OffsetsTable)), s.name).Scan(&pos)
	switch {
	case err == pgx.ErrNoRows:
	case err != nil:
		return nil, fmt.Errorf("read offsets: %w", err)
	default:
		s.last, s.started = *pos, true
	}
	return s, nil
}

func (s *PollSource) connect(ctx context.Context) (*pgx.Conn, error) {
	return s.db.get(ctx, func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, s.cfg.URL) },
		func(ctx context.Context, conn *pgx.Conn) error {
			if s.firstSQL != "" {
				return nil
			}
			return s.buildSQL(ctx, conn)
		})
}

// buildSQL looks up the key and the incrementing column's type and
// creates the offsets table.
func (s *PollSource) buildSQL(ctx context.Context, conn *pgx.Conn) error {
	table := quoteTable(s.cfg.Table)
	var incType *string
	err := conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attname = $2 AND attnum > 0 AND NOT attisdropped`, table, s.cfg.IncrementingColumn).Scan(&incType)
	if err == pgx.ErrNoRows {
		return &FieldError{Path: "incrementingColumn", Reason: fmt.Sprintf("table %s has no column %q", s.cfg.Table, s.cfg.IncrementingColumn)}
	}
	if err != nil {
		return fmt.Errorf("table %s: %w", s.cfg.Table, err)
	}
	keys := s.cfg.KeyColumns
	if len(keys) == 0 {
		rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1::regclass AND i.indisprimary
			ORDER BY array_position(i.indkey::int2[], a.attnum)`, table)
		if err != nil {
			return fmt.Errorf("primary key of %s: %w", s.cfg.Table, err)
		}
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("primary key of %s: %w", s.cfg.Table, err)
		}
	}
	inc := pgx.Identifier{s.cfg.IncrementingColumn}.Sanitize()
	sel := "SELECT row_to_json(t)::text, t." + inc + "::text"
	for _, k := range keys {
		sel += ", t." + pgx.Identifier{k}.Sanitize() + "::text"
	}
	from := " FROM " + table + " t"
	order := fmt.Sprintf(" ORDER BY t.%s LIMIT %d", inc, s.cfg.BatchSize)
	s.firstSQL = sel + from + order
	s.nextSQL = sel + from + " WHERE t." + inc + " > $1::" + *incType + order
	off := quoteTable(s.cfg.OffsetsTable)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		source text PRIMARY KEY,
		position text NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now())`, off)); err != nil {
		return fmt.Errorf("create offsets table %s: %w", s.cfg.OffsetsTable, err)
	}
	s.commitSQL = fmt.Sprintf(`INSERT INTO %s (source, position) VALUES ($1, $2)
		ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`, off)
	return nil
}

// Read returns the next rows in the incrementing column's order, polling
// every interval until there are some.
func (s *PollSource) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	for {
		recs, err := s.poll(ctx)
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		t := time.NewTimer(s.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (s *PollSource) poll(ctx context.Context) ([]connector.SourceRecord, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	var rows pgx.Rows
	if s.started {
		rows, err = conn.Query(ctx, s.nextSQL, s.last)
	} else {
		rows, err = conn.Query(ctx, s.firstSQL)
	}
	if err != nil {
		return nil, fmt.Errorf("poll %s: %w", s.cfg.Table, err)
	}
	defer rows.Close()
	var out []connector.SourceRecord
	props := map[string]string{"op": "insert", "table": s.cfg.Table}
	for rows.Next() {
		vals := rows.RawValues()
		if len(vals) < 2 {
			return nil, fmt.Errorf("poll %s: short row", s.cfg.Table)
		}
		out = append(out, connector.SourceRecord{
			Record:   connector.Record{Key: keyText(vals[2:]), Value: bytes.Clone(vals[0]), Properties: props},
			Position: string(vals[1]),
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("poll %s: %w", s.cfg.Table, err)
	}
	if len(out) > 0 {
		s.last, s.started = out[len(out)-1].Position, true
	}
	return out, nil
}

// keyText makes a record key from key column texts: one column's text, or
// a JSON array of several.
func keyText(vals [][]byte) string {
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return string(vals[0])
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		if v == nil {
			b.WriteString("null")
		} else {
			appendJSONString(&b, string(v))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// Commit stores position, so a restart resumes after that row.
func (s *PollSource) Commit(ctx context.Context, position string) error {
	if position == "" {
		return nil
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, s.commitSQL, s.name, position); err != nil {
		return fmt.Errorf("store position: %w", err)
	}
	return nil
}

// Close closes the connection.
func (s *PollSource) Close() error {
	return s.db.close()
}
