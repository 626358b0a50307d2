package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// FieldError is one problem with one field of a connector's config. Path is
// relative to the config map ("columns.temp", "keyColumns[1]"); the caller
// puts it under the mesh's field path.
type FieldError struct {
	Path   string
	Reason string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Reason }

// Sink modes.
const (
	ModeInsert = "insert"
	ModeUpsert = "upsert"
)

// Source modes.
const (
	ModeCDC  = "cdc"
	ModePoll = "poll"
)

// Defaults, written once: decoding fills them in.
const (
	DefaultSinkOffsetsTable   = "meshfed_sink_offsets"
	DefaultSourceOffsetsTable = "meshfed_source_offsets"
	DefaultPollInterval       = time.Second
	DefaultPollBatch          = 1000
	maxPollBatch              = 100_000
	maxIdentifier             = 63 // PostgreSQL's NAMEDATALEN-1
)

// SinkConfig is the postgres sink's config.
type SinkConfig struct {
	// URL is the connection string (postgres://user:pass@host/db or
	// key=value form). Required.
	URL string
	// Table is the target table, optionally schema-qualified. Required.
	Table string
	// Columns maps each target column to what fills it: "key", "value",
	// "value.<field>[.<field>...]" (a field of the JSON value),
	// "property.<name>", "eventTime", "topic", "stream" or "sequence".
	Columns map[string]string
	// Mode is "insert" (the default; COPY) or "upsert" (insert, or update
	// the row whose KeyColumns match).
	Mode string
	// KeyColumns are the conflict columns of upsert; empty: the columns
	// filled from "key". Must be covered by a unique index.
	KeyColumns []string
	// OffsetsTable stores the highest sequence applied per input stream,
	// for effectively-once; empty: meshfed_sink_offsets.
	OffsetsTable string
}

// SourceConfig is the postgres source's config.
type SourceConfig struct {
	// URL is the connection string. Required.
	URL string
	// Mode is "cdc" (the default: logical replication) or "poll".
	Mode string

	// Tables lists the tables a new publication covers (cdc); empty: all
	// tables, which needs superuser.
	Tables []string
	// Publication and Slot name the publication and replication slot
	// (cdc); empty: meshfed_<tenant>_<namespace>_<mesh>_<name>.
	Publication, Slot string

	// Table is the table polled (poll). Required in poll mode.
	Table string
	// IncrementingColumn only grows as rows are added (poll): a serial,
	// identity or sequence-filled column. Required in poll mode.
	IncrementingColumn string
	// KeyColumns make each record's key (poll); empty: the primary key.
	KeyColumns []string
	// Interval is the wait between polls that found nothing (poll).
	Interval time.Duration
	// BatchSize is the most rows one poll reads (poll).
	BatchSize int
	// OffsetsTable keeps the last row read per source (poll); empty:
	// meshfed_source_offsets.
	OffsetsTable string
}

// ValidateSink checks a sink config as written, naming the field of every
// problem.
func ValidateSink(values map[string]any) error {
	_, err := DecodeSinkConfig(values)
	return err
}

// ValidateSource checks a source config as written.
func ValidateSource(values map[string]any) error {
	_, err := DecodeSourceConfig(values)
	return err
}

// DecodeSinkConfig decodes and checks a sink config, filling in defaults.
// The error joins one *FieldError per problem.
func DecodeSinkConfig(values map[string]any) (SinkConfig, error) {
	d := decoder{values: values, used: map[string]bool{}}
	c := SinkConfig{
		URL:          d.str("url", true),
		Table:        d.str("table", true),
		Mode:         d.str("mode", false),
		Columns:      d.strMap("columns"),
		KeyColumns:   d.strList("keyColumns"),
		OffsetsTable: d.str("offsetsTable", false),
	}
	d.unknown()
	if c.Mode == "" {
		c.Mode = ModeInsert
	}
	if c.OffsetsTable == "" {
		c.OffsetsTable = DefaultSinkOffsetsTable
	}
	d.table("table", c.Table)
	d.table("offsetsTable", c.OffsetsTable)
	if c.Mode != ModeInsert && c.Mode != ModeUpsert {
		d.fail("mode", fmt.Sprintf("%q is not a mode: use insert or upsert", c.Mode))
	}
	if _, ok := values["columns"]; ok || len(c.Columns) > 0 {
		if len(c.Columns) == 0 && !d.failed("columns") {
			d.fail("columns", "must map at least one column")
		}
	} else {
		d.fail("columns", "must be set: a map of column name to key, value, value.<field>, property.<name>, eventTime, topic, stream or sequence")
	}
	for _, col := range slices.Sorted(maps.Keys(c.Columns)) {
		d.ident("columns."+col, col)
		if err := checkFrom(c.Columns[col]); err != nil {
			d.fail("columns."+col, err.Error())
		}
	}
	for i, col := range c.KeyColumns {
		p := fmt.Sprintf("keyColumns[%d]", i)
		if _, ok := c.Columns[col]; !ok && col != "" {
			d.fail(p, fmt.Sprintf("%q is not one of the mapped columns", col))
		}
	}
	switch {
	case c.Mode == ModeInsert && len(c.KeyColumns) > 0:
		d.fail("keyColumns", "only used in upsert mode")
	case c.Mode == ModeUpsert && len(c.KeyColumns) == 0:
		for _, col := range slices.Sorted(maps.Keys(c.Columns)) {
			if c.Columns[col] == "key" {
				c.KeyColumns = append(c.KeyColumns, col)
			}
		}
		if len(c.KeyColumns) == 0 && len(c.Columns) > 0 {
			d.fail("keyColumns", "upsert needs conflict columns: list them, or map a column from key")
		}
	}
	return c, d.err()
}

// DecodeSourceConfig decodes and checks a source config, filling in
// defaults.
func DecodeSourceConfig(values map[string]any) (SourceConfig, error) {
	d := decoder{values: values, used: map[string]bool{}}
	c := SourceConfig{
		URL:                d.str("url", true),
		Mode:               d.str("mode", false),
		Tables:             d.strList("tables"),
		Publication:        d.str("publication", false),
		Slot:               d.str("slot", false),
		Table:              d.str("table", false),
		IncrementingColumn: d.str("incrementingColumn", false),
		KeyColumns:         d.strList("keyColumns"),
		Interval:           d.duration("interval", DefaultPollInterval),
		BatchSize:          d.int("batchSize", DefaultPollBatch, 1, maxPollBatch),
		OffsetsTable:       d.str("offsetsTable", false),
	}
	d.unknown()
	if c.Mode == "" {
		c.Mode = ModeCDC
	}
	only := func(mode string, fields ...string) {
		for _, f := range fields {
			if _, set := values[f]; set {
				d.fail(f, "only used in "+mode+" mode")
			}
		}
	}
	switch c.Mode {
	case ModeCDC:
		only(ModePoll, "table", "incrementingColumn", "keyColumns", "interval", "batchSize", "offsetsTable")
		for i, t := range c.Tables {
			d.table(fmt.Sprintf("tables[%d]", i), t)
		}
		if c.Publication != "" {
			d.ident("publication", c.Publication)
		}
		if c.Slot != "" && !slotName.MatchString(c.Slot) {
			d.fail("slot", "must be 1 to 63 lower-case letters, digits and underscores")
		}
	case ModePoll:
		only(ModeCDC, "tables", "publication", "slot")
		if c.Table == "" {
			d.fail("table", "must be set in poll mode")
		} else {
			d.table("table", c.Table)
		}
		if c.IncrementingColumn == "" {
			d.fail("incrementingColumn", "must be set in poll mode: a column that only grows as rows are added")
		} else {
			d.ident("incrementingColumn", c.IncrementingColumn)
		}
		for i, k := range c.KeyColumns {
			if k != "" {
				d.ident(fmt.Sprintf("keyColumns[%d]", i), k)
			}
		}
		if c.OffsetsTable == "" {
			c.OffsetsTable = DefaultSourceOffsetsTable
		}
		d.table("offsetsTable", c.OffsetsTable)
		if c.Interval <= 0 && !d.failed("interval") {
			d.fail("interval", "must be positive")
		}
	default:
		d.fail("mode", fmt.Sprintf("%q is not a mode: use cdc or poll", c.Mode))
	}
	return c, d.err()
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// checkFrom checks a column's source.
func checkFrom(from string) error {
	switch {
	case from == "key", from == "value", from == "eventTime", from == "topic", from == "stream", from == "sequence":
		return nil
	case strings.HasPrefix(from, "value."):
		for _, f := range strings.Split(from[len("value."):], ".") {
			if f == "" {
				return fmt.Errorf("%q has an empty field name", from)
			}
		}
		return nil
	case strings.HasPrefix(from, "property.") && len(from) > len("property."):
		return nil
	}
	return fmt.Errorf("%q is not a source: use key, value, value.<field>, property.<name>, eventTime, topic, stream or sequence", from)
}

// decoder reads fields of a config map, collecting every problem.
type decoder struct {
	values map[string]any
	used   map[string]bool
	errs   []error
}

func (d *decoder) fail(path, reason string) {
	d.errs = append(d.errs, &FieldError{Path: path, Reason: reason})
}

func (d *decoder) failed(path string) bool {
	for _, e := range d.errs {
		if fe := (*FieldError)(nil); errors.As(e, &fe) && fe.Path == path {
			return true
		}
	}
	return false
}

func (d *decoder) err() error { return errors.Join(d.errs...) }

func (d *decoder) get(name string) (any, bool) {
	d.used[name] = true
	v, ok := d.values[name]
	return v, ok && v != nil
}

func (d *decoder) str(name string, required bool) string {
	v, ok := d.get(name)
	if !ok {
		if required {
			d.fail(name, "must be set")
		}
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		d.fail(name, fmt.Sprintf("must be a string, not %s", kind(v)))
		return ""
	}
	if required && s == "" {
		d.fail(name, "must not be empty")
	}
	return s
}

func (d *decoder) strList(name string) []string {
	v, ok := d.get(name)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		if ss, isStrs := v.([]string); isStrs {
			return append([]string(nil), ss...)
		}
		d.fail(name, fmt.Sprintf("must be a list of strings, not %s", kind(v)))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, isStr := e.(string)
		if !isStr || s == "" {
			d.fail(fmt.Sprintf("%s[%d]", name, i), "must be a non-empty string")
			s = "" // keeps the indexes of later entries; checks skip it
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) strMap(name string) map[string]string {
	v, ok := d.get(name)
	if !ok {
		return nil
	}
	out := map[string]string{}
	switch m := v.(type) {
	case map[string]any:
		for k, e := range m {
			s, isStr := e.(string)
			if !isStr {
				d.fail(name+"."+k, fmt.Sprintf("must be a string, not %s", kind(e)))
				continue
			}
			out[k] = s
		}
	case map[string]string:
		for k, s := range m {
			out[k] = s
		}
	default:
		d.fail(name, fmt.Sprintf("must be a map of strings, not %s", kind(v)))
	}
	return out
}

func (d *decoder) int(name string, def, lo, hi int) int {
	v, ok := d.get(name)
	if !ok {
		return def
	}
	var n float64
	switch x := v.(type) {
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	case float64:
		n = x
	default:
		d.fail(name, fmt.Sprintf("must be a whole number, not %s", kind(v)))
		return def
	}
	if n != math.Trunc(n) || n < float64(lo) || n > float64(hi) {
		d.fail(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return int(n)
}

func (d *decoder) duration(name string, def time.Duration) time.Duration {
	v, ok := d.get(name)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		d.fail(name, fmt.Sprintf("must be a duration such as \"500ms\" or \"2s\", not %s", kind(v)))
		return def
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.fail(name, fmt.Sprintf("%q is not a duration such as \"500ms\" or \"2s\"", s))
		return def
	}
	return dur
}

// unknown fails every field no getter asked for: a misspelt field must
// not be silently ignored.
func (d *decoder) unknown() {
	for _, k := range slices.Sorted(maps.Keys(d.values)) {
		if !d.used[k] {
			path := k
			if path == "" {
				path = `""`
			}
			d.fail(path, "unknown field")
		}
	}
}

// ident checks one SQL identifier.
func (d *decoder) ident(path, name string) {
	switch {
	case name == "":
		d.fail(path, "must not be empty")
	case len(name) > maxIdentifier:
		d.fail(path, fmt.Sprintf("is longer than PostgreSQL's %d-byte limit on names", maxIdentifier))
	case strings.ContainsRune(name, 0):
		d.fail(path, "must not hold a NUL byte")
	}
}

// table checks a table name, "table" or "schema.table".
func (d *decoder) table(path, name string) {
	if name == "" {
		return
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		d.fail(path, fmt.Sprintf("%q is not a table name: use table or schema.table", name))
		return
	}
	for _, p := range parts {
		before := len(d.errs)
		d.ident(path, p)
		if len(d.errs) > before {
			return
		}
	}
}

func kind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

// quoteTable quotes a "table" or "schema.table" name for SQL.
// heldConn is the connection a source or sink keeps open across calls and
// opens again once it broke.
type heldConn struct {
	conn *pgx.Conn // nil: none open
}

// get returns the held connection while it is open; otherwise it opens
// one, prepares it (closing it when that fails) and holds it.
func (h *heldConn) get(ctx context.Context, open func(context.Context) (*pgx.Conn, error),
	prepare func(context.Context, *pgx.Conn) error) (*pgx.Conn, error) {
	if h.conn != nil && !h.conn.IsClosed() {
		return h.conn, nil
	}
	h.conn = nil
	conn, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to postgresql: %w", err)
	}
	if err := prepare(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	h.conn = conn
	return conn, nil
}

// close closes the held connection, if any.
func (h *heldConn) close() error {
	if h.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.conn.Close(ctx)
	h.conn = nil
	return err
}

func quoteTable(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}
