//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"
	"github.com/meshfed/meshfed/internal/pgtest"
	"github.com/meshfed/meshfed/internal/testkit"
)

// TestPostgresCDCFailover: rows of a real PostgreSQL are inserted and
// updated while a CDC source in cluster a writes their changes to a topic
// that geo-replicates to b. The source's agent is SIGKILLed and not
// restarted, so cluster a goes Down and the source fails over to b, where
// it resumes from the replication slot's confirmed position and writes b's
// copy of the topic. Checked on b's copy: every committed change arrives
// (none lost), each cluster's writes bring a key's new versions in commit
// order, and the only changes delivered twice are those of the documented
// window around the kill (docs/connectors-postgres.md).
func TestPostgresCDCFailover(t *testing.T) {
	const keys = 20
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_CDC_URL", url) // the agents inherit it

	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a", "b"}})
	f.replicate()
	topic := topicURL("item-changes")
	f.apply(fmt.Sprintf(`apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: cdc, tenant: public, namespace: default}
spec:
  sources:
    - name: items
      type: postgres
      config: {url: {secret: {env: E2E_CDC_URL}}, tables: [public.items]}
      output: {cluster: a, topic: %q}
      failover: {clusters: [b]}
`, topic))
	f.waitRunning("cdc", convergeTimeout, map[string]int{"items": 1}, map[string]string{"items": "a"})

	// The writer: version v of every key in one transaction, the first as
	// inserts, then updates, until stopped.
	var version atomic.Int64 // the last committed version
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var writeErr error
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for v := 0; ; v++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				writeErr = err
				return
			}
			for k := 0; k < keys; k++ {
				sql := "UPDATE items SET version = $2 WHERE id = $1"
				if v == 0 {
					sql = "INSERT INTO items (id, version) VALUES ($1, $2)"
				}
				if _, err := tx.Exec(ctx, sql, k, v); err != nil {
					writeErr = err
					return
				}
			}
			if err := tx.Commit(ctx); err != nil {
				writeErr = err
				return
			}
			version.Store(int64(v))
		}
	}()
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
		if writeErr != nil {
			t.Fatalf("write rows: %v", writeErr)
		}
	}
	defer halt()

	seen := func(cluster string) int { // changes in that cluster's copy
		return len(f.readMessages(cluster, topic))
	}
	testkit.Eventually(t, 2*time.Minute, "changes of 40 versions in a's topic", func() (bool, string) {
		n := seen("a")
		return n >= 40*keys, fmt.Sprintf("%d changes", n)
	})
	atKill := version.Load()
	killed := time.Now()
	t.Logf("SIGKILL of the source's agent in a at version %d", atKill)
	f.agents["agent-a"].kill9()
	f.waitRunning("cdc", 2*time.Minute, map[string]int{"items": 1}, map[string]string{"items": "b"})
	t.Logf("the source runs in b %s after the kill", time.Since(killed).Round(time.Millisecond))
	target := atKill + 40
	testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("version %d written", target), func() (bool, string) {
		return version.Load() >= target, fmt.Sprintf("version %d", version.Load())
	})
	halt()
	last := version.Load()

	type change struct {
		key, version int
		fromA        bool
	}
	var changes []change
	testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("version %d of every key in b's topic", last), func() (bool, string) {
		changes = changes[:0]
		done := map[int]bool{}
		for _, m := range f.readMessages("b", topic) {
			var row struct{ ID, Version int }
			if err := json.Unmarshal(m.Payload(), &row); err != nil {
				t.Fatalf("change %s: %v", m.Payload(), err)
			}
			changes = append(changes, change{row.ID, row.Version, replicatedFromA(m)})
			if row.Version == int(last) {
				done[row.ID] = true
			}
		}
		return len(done) == keys, fmt.Sprintf("%d changes, %d keys at version %d", len(changes), len(done), last)
	})

	// None lost; per origin, each key's new versions in order; repeats
	// counted and bounded to the window.
	got := map[[2]int]int{}
	type origin struct {
		top  map[int]int // key -> highest version seen so far
		dups int
	}
	origins := map[bool]*origin{true: {top: map[int]int{}}, false: {top: map[int]int{}}}
	var outOfOrder, early []string
	for _, c := range changes {
		k := [2]int{c.key, c.version}
		got[k]++
		o := origins[c.fromA]
		top, ok := o.top[c.key]
		switch {
		case !ok || c.version == top+1:
			o.top[c.key] = c.version
		case c.version <= top:
			o.dups++ // a redelivery within one origin
		default:
			outOfOrder = append(outOfOrder, fmt.Sprintf("key %d: version %d after %d", c.key, c.version, top))
			o.top[c.key] = c.version
		}
		if got[k] == 2 && int64(c.version) < atKill-20 {
			early = append(early, fmt.Sprintf("key %d version %d", c.key, c.version))
		}
	}
	var lost []string
	for k := 0; k < keys; k++ {
		for v := 0; v <= int(last); v++ {
			if got[[2]int{k, v}] == 0 {
				lost = append(lost, fmt.Sprintf("key %d version %d", k, v))
			}
		}
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	sort.Strings(lost)
	t.Logf("%d changes of %d keys × %d versions in b's copy: lost %d, delivered twice %d (from a %d, from b %d), versions at the kill %d",
		len(changes), keys, last+1, len(lost), dups, origins[true].dups, origins[false].dups, atKill)
	if len(lost) > 0 {
		t.Errorf("lost %d changes, e.g. %s", len(lost), clip(fmt.Sprint(lost), 300))
	}
	if len(outOfOrder) > 0 {
		t.Errorf("changes out of commit order: %s", clip(fmt.Sprint(outOfOrder), 300))
	}
	if len(early) > 0 {
		t.Errorf("changes committed more than a second before the kill delivered twice: %s", clip(fmt.Sprint(early), 300))
	}
}

// replicatedFromA reports whether a message of b's copy was written in a.
func replicatedFromA(m pulsar.Message) bool { return m.GetReplicatedFrom() == "a" }
