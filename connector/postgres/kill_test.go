package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/internal/testkit"
)

// The kill test runs the sink in a child process (this test binary,
// started again with helperEnv set) that plays the agent: it delivers
// records 1..n of one stream in batches from the position in a cursor
// file, and moves the cursor only after Write returned, every other batch
// and only to the start of the batch just written, as acknowledgements
// that are late would: every restart delivers committed records again. The test
// SIGKILLs it mid-stream and starts it again; effectively-once must leave
// every record in the table exactly once.
const helperEnv = "MESHFED_PG_SINK_HELPER"

// runSinkHelper is the child's main; TestMain calls it.
func runSinkHelper() int {
	url, cursor := os.Getenv("MESHFED_PG_URL"), os.Getenv("MESHFED_PG_CURSOR")
	n, _ := strconv.Atoi(os.Getenv("MESHFED_PG_RECORDS"))
	ctx := context.Background()
	s, err := OpenSink(ctx, connector.Config{Tenant: "t", Namespace: "n", Mesh: "m", Name: "kill", EffectivelyOnce: true,
		Values: map[string]any{"url": url, "table": "killed", "columns": map[string]any{"seq": "sequence", "device": "key", "temp": "value.temp"}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	next := 1
	if b, err := os.ReadFile(cursor); err == nil {
		next, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	for batchNo := 0; next <= n; batchNo++ {
		size := 50 + (next*7)%150
		var batch []connector.SinkRecord
		for i := next; i < next+size && i <= n; i++ {
			batch = append(batch, connector.SinkRecord{
				Record: connector.Record{Key: "d" + strconv.Itoa(i%10), Value: []byte(`{"temp":` + strconv.Itoa(i%40) + `}`)},
				Stream: "in", Sequence: uint64(i),
			})
		}
		if err := s.Write(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			return 1
		}
		acked := next
		next += len(batch)
		if batchNo%2 == 1 {
			tmp := cursor + ".tmp"
			if err := os.WriteFile(tmp, []byte(strconv.Itoa(acked)), 0o600); err != nil {
				return 1
			}
			if err := os.Rename(tmp, cursor); err != nil {
				return 1
			}
		}
	}
	fmt.Printf("skipped %d\n", s.Stats().Skipped)
	return 0
}

func TestSinkSurvivesSIGKILL(t *testing.T) {
	url := newDatabase(t)
	db := dbConn(t, url)
	mustExec(t, db, `CREATE TABLE killed (seq bigint, device text, temp int)`)
	const n = 30000
	cursor := filepath.Join(t.TempDir(), "cursor")
	var out strings.Builder
	start := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "MESHFED_PG_URL="+url, "MESHFED_PG_CURSOR="+cursor, "MESHFED_PG_RECORDS="+strconv.Itoa(n))
		cmd.Stderr = os.Stderr
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return cmd, done
	}
	rows := func() int { return count(t, db, `SELECT count(*) FROM killed`) }
	for kill := range 2 {
		// Each run must write rows of its own before it is killed.
		at := rows() + 3000
		cmd, done := start()
		testkit.Eventually(t, 60*time.Second, fmt.Sprintf("rows reach %d before kill %d", at, kill+1), func() error {
			select {
			case err := <-done:
				return fmt.Errorf("helper exited early: %v", err)
			default:
			}
			if got := rows(); got < at {
				return fmt.Errorf("%d rows", got)
			}
			return nil
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		t.Logf("kill %d at %d rows", kill+1, rows())
	}
	_, done := start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("helper after the kills: %v", err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("helper did not finish within 120s")
	}
	if got := rows(); got != n {
		t.Fatalf("rows = %d, want %d", got, n)
	}
	var skipped int
	if _, err := fmt.Sscanf(out.String(), "skipped %d", &skipped); err != nil || skipped == 0 {
		t.Fatalf("the last run skipped no redelivered records (%q): the test did not replay", out.String())
	}
	t.Logf("the last run skipped %d redelivered records", skipped)
	if dup := count(t, db, `SELECT count(*) FROM (SELECT seq FROM killed GROUP BY seq HAVING count(*) > 1) d`); dup != 0 {
		t.Fatalf("%d sequences written more than once", dup)
	}
	if got := count(t, db, `SELECT count(DISTINCT seq) FROM killed WHERE seq BETWEEN 1 AND $1`, n); got != n {
		t.Fatalf("distinct sequences = %d, want %d", got, n)
	}
}
