package broker

import (
	"path/filepath"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/internal/testkit"
)

func TestRetentionDropsConsumedSegments(t *testing.T) {
	b := TestBroker(t, func(c *Config) { c.SegmentSize = 2048; c.RetentionSize = 1 })
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "ret", SubscriptionName: "s"})
	first := produceN(t, c, "ret", 100, nil)
	tp, err := b.getTopic("ret", false)
	if err != nil {
		t.Fatal(err)
	}
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(tp.dir, "*.log"))
		return len(m)
	}
	before := segs()
	if before < 3 {
		t.Fatalf("only %d segments for 100 entries", before)
	}
	// Unconsumed data is never removed.
	drain(t, cons, 50)
	testkit.Eventually(t, waitTimeout, "retention of the consumed half", func() bool { return segs() < before })
	mid := segs()
	if mid < 2 {
		t.Fatalf("retention removed unconsumed segments: %d left", mid)
	}
	drain(t, cons, 50)
	testkit.Eventually(t, waitTimeout, "retention of everything but the active segment", func() bool { return segs() == 1 })
	// Message ids keep growing after retention.
	ids := produceN(t, c, "ret", 1, nil)
	if !idAfter(ids[0], first[99]) {
		t.Fatalf("message id after retention %v is not after %v", ids[0], first[99])
	}
}

// idAfter reports whether a comes after b in (ledger, entry) order.
func idAfter(a, b pulsar.MessageID) bool {
	if a.LedgerID() != b.LedgerID() {
		return a.LedgerID() > b.LedgerID()
	}
	return a.EntryID() > b.EntryID()
}
