package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/meshfed/meshfed/connector"
)

// statusInterval is how often the source tells the server how far it has
// committed: every interval while changes stream, within two when idle.
// It bounds what a crash of the source's process redelivers beyond the
// records read but not yet committed.
const statusInterval = 250 * time.Millisecond

// maxRead is the most records one Read returns, unless one transaction
// holds more: a transaction is never split between Reads.
const maxRead = 4096

// CDCSource reads a database's changes by logical replication with the
// pgoutput plugin. Records come in commit order; all of a transaction's
// records are returned by one Read, and only its last record carries a
// position, the end of the transaction: committing it lets the
// replication slot move past the transaction.
type CDCSource struct {
	cfg  SourceConfig
	log  *slog.Logger
	slot string
	pub  string

	// conn is the replication connection; the receive loop owns it until
	// it exits (done closed), then Close does.
	conn *pgconn.PgConn

	txns chan []connector.SourceRecord
	// failed holds the loop's error once it stopped on one.
	failed atomic.Pointer[error]
	// committed is the LSN up to which the agent committed: sent to the
	// server as flushed. emitted is the end LSN of the last transaction
	// handed to txns; when committed has reached it and no transaction is
	// open, the source is idle and may confirm the server's WAL end.
	committed, emitted atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ connector.Source = (*CDCSource)(nil)

// OpenCDCSource creates the publication and the replication slot when they
// are missing and starts streaming from the slot's confirmed position.
func OpenCDCSource(ctx context.Context, cfg connector.Config, c SourceConfig) (*CDCSource, error) {
	s := &CDCSource{
		cfg:  c,
		log:  cfg.Logger,
		slot: c.Slot,
		pub:  c.Publication,
		txns: make(chan []connector.SourceRecord, 64),
		done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.slot == "" {
		s.slot = defaultName(cfg)
	}
	if s.pub == "" {
		s.pub = defaultName(cfg)
	}
	start, err := s.setup(ctx)
	if err != nil {
		return nil, err
	}
	replCfg, err := pgconn.ParseConfig(c.URL)
	if err != nil {
		return nil, &FieldError{Path: "url", Reason: err.Error()}
	}
	replCfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, replCfg)
	if err != nil {
		return nil, fmt.Errorf("open replication connection: %w", err)
	}
	if start == 0 {
		res, err := pglogrepl.CreateReplicationSlot(ctx, conn, s.slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
		if err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("create replication slot %s: %w", s.slot, err)
		}
		if start, err = pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("replication slot %s: %w", s.slot, err)
		}
	}
	err = pglogrepl.StartReplication(ctx, conn, s.slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(s.pub)},
	})
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("start replication from slot %s: %w", s.slot, err)
	}
	s.conn = conn
	s.committed.Store(uint64(start))
	s.emitted.Store(uint64(start))
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(loopCtx)
	return s, nil
}

// setup creates the publication when missing and returns the slot's
// confirmed position, 0 when there is no slot yet.
func (s *CDCSource) setup(ctx context.Context) (pglogrepl.LSN, error) {
	conn, err := pgx.Connect(ctx, s.cfg.URL)
	if err != nil {
		return 0, fmt.Errorf("connect to postgresql: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, s.pub).Scan(&exists); err != nil {
		return 0, fmt.Errorf("look up publication %s: %w", s.pub, err)
	}
	if !exists {
		target := "ALL TABLES"
		if len(s.cfg.Tables) > 0 {
			names := make([]string, len(s.cfg.Tables))
			for i, t := range s.cfg.Tables {
				names[i] = quoteTable(t)
			}
			target = "TABLE " + strings.Join(names, ", ")
		}
		_, err := conn.Exec(ctx, "CREATE PUBLICATION "+pgx.Identifier{s.pub}.Sanitize()+" FOR "+target)
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42710") { // made meanwhile by another instance
			return 0, fmt.Errorf("create publication %s: %w", s.pub, err)
		}
	}
	var lsn, db *string
	var here string
	err = conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, database, current_database() FROM pg_replication_slots WHERE slot_name = $1`, s.slot).Scan(&lsn, &db, &here)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up replication slot %s: %w", s.slot, err)
	}
	if lsn == nil || db == nil {
		return 0, fmt.Errorf("replication slot %s is not a logical slot", s.slot)
	}
	if *db != here {
		return 0, &FieldError{Path: "slot", Reason: fmt.Sprintf("replication slot %s belongs to database %s, not %s: name another slot", s.slot, *db, here)}
	}
	return pglogrepl.ParseLSN(*lsn)
}

// loop receives the replication stream, assembles transactions and sends
// status updates, until ctx ends or the connection fails.
func (s *CDCSource) loop(ctx context.Context) {
	defer close(s.done)
	if err := s.receive(ctx); err != nil && ctx.Err() == nil {
		s.failed.Store(&err)
		s.log.Error("postgres source stopped", "slot", s.slot, "err", err)
	}
}

func (s *CDCSource) receive(ctx context.Context) error {
	d := decoder2{relations: map[uint32]*pglogrepl.RelationMessage{}}
	nextStatus := time.Now()
	var txn []connector.SourceRecord
	inTxn := false
	// rc ends an interval after the next status update is due: while
	// messages flow the update goes out between two of them and rc is
	// renewed before it ends, as a receive cut short by a deadline costs
	// the stream dearly; only an idle stream waits for the deadline. One
	// context per interval, not one per message, as making contexts cost
	// a fifth of the loop's time.
	var rc receiveCtx
	defer rc.stop()
	for {
		if !time.Now().Before(nextStatus) {
			if err := s.sendStatus(); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusInterval)
			rc.stop()
		}
		msg, err := s.conn.ReceiveMessage(rc.until(ctx, nextStatus.Add(statusInterval)))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		var data []byte
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			data = msg.Data
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(msg)
		default:
			continue
		}
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return fmt.Errorf("parse keepalive: %w", err)
			}
			if !inTxn {
				s.idle(ka.ServerWALEnd)
			}
			if ka.ReplyRequested {
				nextStatus = time.Time{}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(data[1:])
			if err != nil {
				return fmt.Errorf("parse xlog data: %w", err)
			}
			m, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				return fmt.Errorf("parse logical message: %w", err)
			}
			switch m := m.(type) {
			case *pglogrepl.RelationMessage:
				d.relations[m.RelationID] = m
			case *pglogrepl.BeginMessage:
				inTxn, txn = true, nil
				d.xid, d.commitTime = strconv.FormatUint(uint64(m.Xid), 10), m.CommitTime
			case *pglogrepl.CommitMessage:
				inTxn = false
				if len(txn) == 0 {
					s.idle(m.TransactionEndLSN)
					continue
				}
				txn[len(txn)-1].Position = m.TransactionEndLSN.String()
				if err := s.hand(ctx, txn, m.TransactionEndLSN, &nextStatus); err != nil {
					return err
				}
				txn = nil
			case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
				r, err := d.record(m, xld.WALStart)
				if err != nil {
					return err
				}
				txn = append(txn, r)
			}
		}
	}
}

// receiveCtx is the receive loop's context with a deadline, kept until
// it ends or is stopped.
type receiveCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// until returns the context, making a new one ending at deadline when
// there is none or it ended.
func (r *receiveCtx) until(parent context.Context, deadline time.Time) context.Context {
	if r.ctx == nil || r.ctx.Err() != nil {
		r.stop()
		r.ctx, r.cancel = context.WithDeadline(parent, deadline)
	}
	return r.ctx
}

func (r *receiveCtx) stop() {
	if r.cancel != nil {
		r.cancel()
		r.ctx, r.cancel = nil, nil
	}
}

// hand passes a whole transaction to Read, keeping status updates going
// while Read is slow to take it.
func (s *CDCSource) hand(ctx context.Context, txn []connector.SourceRecord, end pglogrepl.LSN, nextStatus *time.Time) error {
	// emitted moves first: once the transaction is in the channel, an idle
	// keepalive must not confirm past it.
	s.emitted.Store(uint64(end))
	for {
		wait := time.Until(*nextStatus)
		t := time.NewTimer(max(wait, 0))
		select {
		case s.txns <- txn:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			if err := s.sendStatus(); err != nil {
				return err
			}
			*nextStatus = time.Now().Add(statusInterval)
		}
	}
}

// idle confirms lsn when everything handed out is committed: WAL that
// holds nothing for the publication (other tables, other databases) must
// not pile up behind the slot.
func (s *CDCSource) idle(lsn pglogrepl.LSN) {
	if s.committed.Load() >= s.emitted.Load() {
		s.raise(uint64(lsn))
		s.emitted.Store(max(s.emitted.Load(), uint64(lsn)))
	}
}

// raise moves committed up to lsn, never down.
func (s *CDCSource) raise(lsn uint64) {
	for {
		cur := s.committed.Load()
		if lsn <= cur || s.committed.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

func (s *CDCSource) sendStatus() error {
	lsn := pglogrepl.LSN(s.committed.Load())
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn,
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

// Read returns the next transactions' records, at least one whole
// transaction, waiting until one is ready.
func (s *CDCSource) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	var out []connector.SourceRecord
	select {
	case out = <-s.txns:
	case <-s.done:
		return nil, s.err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < maxRead {
		select {
		case txn := <-s.txns:
			out = append(out, txn...)
		default:
			return out, nil
		}
	}
	return out, nil
}

func (s *CDCSource) err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return errors.New("postgres source closed")
}

// Commit records that everything up to position is durable; the server
// hears of it within statusInterval, and at Close.
func (s *CDCSource) Commit(_ context.Context, position string) error {
	if position == "" {
		return nil
	}
	lsn, err := pglogrepl.ParseLSN(position)
	if err != nil {
		return fmt.Errorf("commit position %q: %w", position, err)
	}
	s.raise(uint64(lsn))
	return nil
}

// Close stops the stream, tells the server the last committed position,
// and closes the connection. The slot stays: the next instance resumes
// from it.
func (s *CDCSource) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		<-s.done
		if !s.conn.IsClosed() {
			err = s.sendStatus()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cerr := s.conn.Close(ctx); err == nil {
			err = cerr
		}
	})
	return err
}

// decoder2 turns pgoutput change messages into records.
type decoder2 struct {
	relations  map[uint32]*pglogrepl.RelationMessage
	xid        string
	commitTime time.Time
}

func (d *decoder2) record(m pglogrepl.Message, lsn pglogrepl.LSN) (connector.SourceRecord, error) {
	var rel uint32
	var tuple *pglogrepl.TupleData
	var op string
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		rel, tuple, op = m.RelationID, m.Tuple, "insert"
	case *pglogrepl.UpdateMessage:
		rel, tuple, op = m.RelationID, m.NewTuple, "update"
	case *pglogrepl.DeleteMessage:
		rel, tuple, op = m.RelationID, m.OldTuple, "delete"
	}
	r, ok := d.relations[rel]
	if !ok {
		return connector.SourceRecord{}, fmt.Errorf("change to relation %d before its relation message", rel)
	}
	if tuple == nil {
		return connector.SourceRecord{}, fmt.Errorf("%s on %s.%s carries no row (REPLICA IDENTITY NOTHING?)", op, r.Namespace, r.RelationName)
	}
	key, value := rowJSON(r, tuple)
	return connector.SourceRecord{Record: connector.Record{
		Key:   key,
		Value: value,
		Properties: map[string]string{
			"op":    op,
			"table": r.Namespace + "." + r.RelationName,
			"lsn":   formatLSN(lsn),
			"xid":   d.xid,
		},
		EventTime: d.commitTime,
	}}, nil
}

// rowJSON returns a row's key (its replica identity columns: the primary
// key by default) and the row as a JSON object. A one-column key is its
// text; a longer one is a JSON array of texts. Unchanged TOASTed values,
// which pgoutput does not send, are left out of the object.
func rowJSON(r *pglogrepl.RelationMessage, t *pglogrepl.TupleData) (string, []byte) {
	size := 2
	for i, col := range t.Columns {
		if i < len(r.Columns) {
			size += len(r.Columns[i].Name) + len(col.Data) + 8
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	var keys []string
	buf.WriteByte('{')
	first := true
	for i, col := range t.Columns {
		if i >= len(r.Columns) {
			break
		}
		rc := r.Columns[i]
		if rc.Flags&1 != 0 && col.DataType == pglogrepl.TupleDataTypeText {
			keys = append(keys, string(col.Data))
		}
		if col.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		appendJSONString(buf, rc.Name)
		buf.WriteByte(':')
		if col.DataType != pglogrepl.TupleDataTypeText {
			buf.WriteString("null")
			continue
		}
		appendJSONValue(buf, rc.DataType, col.Data)
	}
	buf.WriteByte('}')
	switch len(keys) {
	case 0:
		return "", buf.Bytes()
	case 1:
		return keys[0], buf.Bytes()
	}
	var kb bytes.Buffer
	kb.WriteByte('[')
	for i, k := range keys {
		if i > 0 {
			kb.WriteByte(',')
		}
		appendJSONString(&kb, k)
	}
	kb.WriteByte(']')
	return kb.String(), buf.Bytes()
}

// formatLSN writes an LSN as PostgreSQL does, "16/B374D848", without
// fmt's cost on every record.
func formatLSN(lsn pglogrepl.LSN) string {
	var b [32]byte
	out := appendUpperHex(b[:0], uint64(lsn)>>32)
	out = append(out, '/')
	out = appendUpperHex(out, uint64(lsn)&0xffffffff)
	return string(out)
}

func appendUpperHex(b []byte, v uint64) []byte {
	start := len(b)
	b = strconv.AppendUint(b, v, 16)
	for i := start; i < len(b); i++ {
		if b[i] >= 'a' {
			b[i] -= 'a' - 'A'
		}
	}
	return b
}

// Type OIDs whose text form is written as JSON as it is.
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	oidJSONB   = 3802
)

// appendJSONValue writes a column's text form as JSON: numbers as numbers
// (NaN and infinities as strings), booleans as booleans, json and jsonb
// as they are, everything else as a string.
func appendJSONValue(buf *bytes.Buffer, typ uint32, text []byte) {
	switch typ {
	case oidBool:
		if string(text) == "t" {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
		return
	case oidInt2, oidInt4, oidInt8, oidOID:
		buf.Write(text)
		return
	case oidFloat4, oidFloat8, oidNumeric:
		if len(text) > 0 && (text[0] >= '0' && text[0] <= '9' || text[0] == '-' && len(text) > 1 && text[1] >= '0' && text[1] <= '9') {
			buf.Write(text)
			return
		}
	case oidJSON, oidJSONB:
		buf.Write(text)
		return
	}
	appendJSONString(buf, string(text))
}

// appendJSONString writes s as a JSON string.
func appendJSONString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf.WriteString(s[start:i])
				buf.WriteString(`\ufffd`)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
		}
		i++
		start = i
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

var notSlotChar = regexp.MustCompile(`[^a-z0-9_]+`)

// defaultName is the publication and slot name of a source that names
// none: meshfed_<tenant>_<namespace>_<mesh>_<name>, lower-cased, with a
// hash in place of the tail when longer than PostgreSQL allows.
func defaultName(cfg connector.Config) string {
	full := strings.ToLower(strings.Join([]string{"meshfed", cfg.Tenant, cfg.Namespace, cfg.Mesh, cfg.Name}, "_"))
	name := notSlotChar.ReplaceAllString(full, "_")
	if len(name) <= maxIdentifier {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(full))
	sum := strconv.FormatUint(h.Sum64(), 36)
	return name[:maxIdentifier-len(sum)-1] + "_" + sum
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
