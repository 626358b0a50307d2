package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestLedgerIDsDifferBetweenBrokers(t *testing.T) {
	var got [2][]pulsar.MessageID
	for i := range got {
		b := TestBroker(t, nil)
		got[i] = produceN(t, testClient(t, b), "same", 5, nil)
	}
	for i := range got[0] {
		a, c := got[0][i], got[1][i]
		if a.LedgerID() < 1<<19 || c.LedgerID() < 1<<19 {
			t.Fatalf("ledger ids %d, %d below 2^19", a.LedgerID(), c.LedgerID())
		}
		if a.LedgerID() == c.LedgerID() {
			t.Fatalf("message %d has ledger %d on both brokers", i, a.LedgerID())
		}
		if a.EntryID() != int64(i) || c.EntryID() != int64(i) {
			t.Fatalf("message %d: entry ids %d and %d", i, a.EntryID(), c.EntryID())
		}
	}
}

// readAll reads a topic from the earliest message and returns the ids
// and payloads seen.
func readAll(t *testing.T, c pulsar.Client, topic string, start pulsar.MessageID, inclusive bool) ([]pulsar.MessageID, []string) {
	t.Helper()
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: start, StartMessageIDInclusive: inclusive})
	must(t, "create reader", err)
	defer r.Close()
	var ids []pulsar.MessageID
	var payloads []string
	for r.HasNext() {
		m, err := r.Next(ctxT(t))
		must(t, "read", err)
		ids = append(ids, m.ID())
		payloads = append(payloads, string(m.Payload()))
	}
	return ids, payloads
}

func sameID(a, b pulsar.MessageID) bool {
	return a.LedgerID() == b.LedgerID() && a.EntryID() == b.EntryID() && a.BatchIdx() == b.BatchIdx()
}

// produceFrom sends n messages whose payloads count from start.
func produceFrom(t *testing.T, c pulsar.Client, topic string, start, n int) []pulsar.MessageID {
	t.Helper()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	must(t, "producer", err)
	defer p.Close()
	var ids []pulsar.MessageID
	for i := start; i < start+n; i++ {
		id, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(i))})
		must(t, "send", err)
		ids = append(ids, id)
	}
	return ids
}

func TestLedgerIDsGrowAcrossRestartAndRolls(t *testing.T) {
	dir := t.TempDir()
	b, restart := restartable(t, dir, func(c *Config) { c.SegmentSize = 600 })
	ids := produceFrom(t, testClient(t, b), "grow", 0, 20)
	b = restart()
	ids = append(ids, produceFrom(t, testClient(t, b), "grow", 20, 20)...)
	ledgers := map[int64]bool{}
	for i, id := range ids {
		ledgers[id.LedgerID()] = true
		if i > 0 && !idAfter(id, ids[i-1]) {
			t.Fatalf("id %d (%v) not after id %d (%v)", i, id, i-1, ids[i-1])
		}
	}
	if len(ledgers) < 4 {
		t.Fatalf("40 entries in %d ledgers; want a new ledger per roll and per load", len(ledgers))
	}
	if !(ids[20].LedgerID() > ids[19].LedgerID() && ids[20].EntryID() == 0) {
		t.Fatalf("first id after restart %v, last before %v: want a new ledger", ids[20], ids[19])
	}
	c := testClient(t, b)
	got, payloads := readAll(t, c, "grow", pulsar.EarliestMessageID(), false)
	if len(got) != 40 {
		t.Fatalf("read %d messages, want 40", len(got))
	}
	for i := range got {
		if !sameID(got[i], ids[i]) || payloads[i] != fmt.Sprint(i) {
			t.Fatalf("message %d read as %v %q, produced as %v", i, got[i], payloads[i], ids[i])
		}
	}
	// Readers and seeks by id at ledger boundaries: the first and last
	// entry of each ledger.
	for i := 1; i < len(ids); i++ {
		if ids[i].LedgerID() == ids[i-1].LedgerID() {
			continue
		}
		for _, k := range []int{i - 1, i} {
			_, excl := readAll(t, c, "grow", ids[k], false)
			_, incl := readAll(t, c, "grow", ids[k], true)
			if len(excl) != 39-k || (len(excl) > 0 && excl[0] != fmt.Sprint(k+1)) {
				t.Fatalf("reader after %v: %v", ids[k], excl)
			}
			if len(incl) != 40-k || incl[0] != fmt.Sprint(k) {
				t.Fatalf("reader at %v inclusive: %v", ids[k], incl)
			}
		}
		cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "grow", SubscriptionName: fmt.Sprint("seek-", i),
			StartMessageIDInclusive: true})
		must(t, "seek", cons.Seek(ids[i]))
		m, err := cons.Receive(ctxT(t))
		must(t, "receive after seek", err)
		if string(m.Payload()) != fmt.Sprint(i) {
			t.Fatalf("seek to %v gave %s", ids[i], m.Payload())
		}
		cons.Close()
	}
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: "grow", StartMessageID: pulsar.EarliestMessageID()})
	must(t, "reader", err)
	defer r.Close()
	last, err := r.GetLastMessageID()
	must(t, "last message id", err)
	if !sameID(last, ids[39]) {
		t.Fatalf("last message id %v, want %v", last, ids[39])
	}
}

func TestAckInOlderLedger(t *testing.T) {
	dir := t.TempDir()
	b, restart := restartable(t, dir, nil)
	c := testClient(t, b)
	subscribe(t, c, pulsar.ConsumerOptions{Topic: "old", SubscriptionName: "s", Type: pulsar.Shared}).Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "old", BatchingMaxMessages: 5, BatchingMaxPublishDelay: time.Second})
	must(t, "producer", err)
	for i := 0; i < 10; i++ {
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint("a", i))}, nil)
	}
	must(t, "flush", p.Flush())
	p.Close()
	b = restart()
	c = testClient(t, b)
	produceFrom(t, c, "old", 0, 10)
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "old", SubscriptionName: "s", Type: pulsar.Shared, AckWithResponse: true})
	must(t, "subscribe", err)
	var newer []string
	ledgers := map[int64]bool{}
	for i := 0; i < 20; i++ {
		m, err := cons.Receive(ctxT(t))
		must(t, "receive", err)
		ledgers[m.ID().LedgerID()] = true
		if strings.HasPrefix(string(m.Payload()), "a") {
			must(t, "ack batch message in the older ledger", cons.Ack(m))
		} else {
			newer = append(newer, string(m.Payload()))
		}
	}
	if len(ledgers) != 2 || len(newer) != 10 {
		t.Fatalf("ledgers %v, newer messages %v", ledgers, newer)
	}
	cons.Close()
	st, err := b.Stats("old")
	must(t, "stats", err)
	if bl := st.Subscriptions["s"].MsgBacklog; bl != 10 {
		t.Fatalf("backlog %d after acking the older ledger, want 10", bl)
	}
	// A cumulative ack of an id in the newer ledger covers the older one.
	cons2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "old", SubscriptionName: "cum", Type: pulsar.Exclusive,
		AckWithResponse: true})
	var ids []pulsar.MessageID
	for i := 0; i < 20; i++ {
		m, err := cons2.Receive(ctxT(t))
		must(t, "receive", err)
		ids = append(ids, m.ID())
	}
	must(t, "cumulative ack", cons2.AckIDCumulative(ids[14]))
	st, _ = b.Stats("old")
	if bl := st.Subscriptions["cum"].MsgBacklog; bl != 5 {
		t.Fatalf("backlog %d after cumulative ack of message 15 of 20, want 5", bl)
	}
}

// TestLegacyDataDir opens a data dir written before ledger ids (segments
// named by their first entry, everything in ledger 1, no ledgerReserved in
// metadata.json) and checks its ids and cursors still work.
func TestLegacyDataDir(t *testing.T) {
	dir := t.TempDir()
	b, _ := restartable(t, dir, nil)
	c := testClient(t, b)
	produceFrom(t, c, "legacy", 0, 10)
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "legacy", SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, AckWithResponse: true})
	must(t, "subscribe", err)
	for i := 0; i < 5; i++ {
		m, err := cons.Receive(ctxT(t))
		must(t, "receive", err)
		must(t, "ack", cons.Ack(m))
	}
	cons.Close()
	c.Close()
	b.Close()
	// Turn the data dir into the old layout.
	segs, _ := filepath.Glob(filepath.Join(dir, "topics", "persistent", "public", "default", "legacy", "*.log"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	must(t, "rename segment", os.Rename(segs[0], filepath.Join(filepath.Dir(segs[0]), fmt.Sprintf("%020d.log", 0))))
	raw, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	must(t, "read metadata", err)
	var md map[string]any
	must(t, "decode metadata", json.Unmarshal(raw, &md))
	delete(md, "ledgerReserved")
	raw, _ = json.Marshal(md)
	must(t, "write metadata", os.WriteFile(filepath.Join(dir, "metadata.json"), raw, 0o644))

	b = TestBroker(t, func(cfg *Config) { cfg.DataDir = dir })
	c = testClient(t, b)
	ids, payloads := readAll(t, c, "legacy", pulsar.EarliestMessageID(), false)
	for i, id := range ids {
		if id.LedgerID() != 1 || id.EntryID() != int64(i) || payloads[i] != fmt.Sprint(i) {
			t.Fatalf("legacy message %d read as %v %q", i, id, payloads[i])
		}
	}
	more := produceFrom(t, c, "legacy", 10, 1)
	if more[0].LedgerID() < 1<<20 || more[0].EntryID() != 0 {
		t.Fatalf("first id after upgrade %v", more[0])
	}
	cons2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "legacy", SubscriptionName: "s"})
	got := drain(t, cons2, 6)
	if string(got[0].Payload()) != "5" || string(got[5].Payload()) != "10" {
		t.Fatalf("cursor after upgrade: first %s, last %s", got[0].Payload(), got[5].Payload())
	}
	resp, err := http.Get(b.AdminURL() + "/admin/v2/persistent/public/default/legacy/ledger/1/entry/3")
	must(t, "get entry", err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "3" || resp.Header.Get("X-Pulsar-Message-ID") != "1:3" {
		t.Fatalf("get legacy entry: HTTP %d %q %q", resp.StatusCode, body, resp.Header.Get("X-Pulsar-Message-ID"))
	}
	if code := adminDo(t, b, http.MethodGet, fmt.Sprintf("/admin/v2/persistent/public/default/legacy/ledger/%d/entry/1",
		more[0].LedgerID()), ""); code != http.StatusNotFound {
		t.Fatalf("get entry 1 of a one-entry ledger: HTTP %d", code)
	}
}
