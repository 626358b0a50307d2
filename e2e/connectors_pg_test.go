//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/meshfed/meshfed/internal/pgtest"
)

// pgTarget is the PostgreSQL sink under test: an insert-mode sink into a
// table of a PostgreSQL server the test started, with no unique key, so a
// record written twice would show as two rows; effectively-once rests on
// the sink's offsets alone.
type pgTarget struct {
	t   *testing.T
	url string
}

func newPGTarget(t *testing.T) *pgTarget {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	p := &pgTarget{t: t, url: url}
	p.exec("CREATE TABLE readings (payload text NOT NULL, stream text, seq numeric(20,0))")
	return p
}

func (p *pgTarget) exec(sql string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		p.t.Fatalf("connect to postgresql: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
}

func (p *pgTarget) entry(input string) string {
	return fmt.Sprintf(`    - name: rows
      type: postgres
      processingGuarantee: effectively_once
      config:
        url: {secret: {env: E2E_SINK_PG_URL}}
        table: readings
        columns: {payload: value, stream: stream, seq: sequence}
%s`, input)
}

func (p *pgTarget) kind() string { return "postgres" }

// rows counts the table's rows by payload.
func (p *pgTarget) rows() map[string]int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		p.t.Fatalf("connect to postgresql: %v", err)
	}
	defer conn.Close(ctx)
	rs, err := conn.Query(ctx, "SELECT payload, count(*) FROM readings GROUP BY payload")
	if err != nil {
		p.t.Fatalf("count rows: %v", err)
	}
	out := map[string]int{}
	for rs.Next() {
		var payload string
		var n int
		if err := rs.Scan(&payload, &n); err != nil {
			p.t.Fatalf("count rows: %v", err)
		}
		out[payload] = n
	}
	if err := rs.Err(); err != nil {
		p.t.Fatalf("count rows: %v", err)
	}
	return out
}

// writes is the number of rows: the sink drops records it already wrote
// inside its transaction, so repeats never reach the table.
func (p *pgTarget) writes() int {
	n := 0
	for _, c := range p.rows() {
		n += c
	}
	return n
}

// TestIoTPipelineMQTTToPostgresAcrossClusters is the acceptance
// run: MQTT devices near cluster a, a PostgreSQL sink in cluster b whose
// agent is SIGKILLed twice mid-stream.
func TestIoTPipelineMQTTToPostgresAcrossClusters(t *testing.T) {
	p := newPGTarget(t)
	t.Setenv("E2E_SINK_PG_URL", p.url) // the agents inherit it
	runIoTPipeline(t, p)
}
