package broker

import (
	"path/filepath"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestRetentionDropsConsumedSegments(t *testing.T) {
	b := testBroker(t, func(c *Config) { c.SegmentSize = 2048; c.RetentionSize = 1 })
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "ret", SubscriptionName: "s"})
	produceN(t, c, "ret", 100, nil)
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
	waitFor(t, "retention of the consumed half", func() bool { return segs() < before })
	mid := segs()
	if mid < 2 {
		t.Fatalf("retention removed unconsumed segments: %d left", mid)
	}
	drain(t, cons, 50)
	waitFor(t, "retention of everything but the active segment", func() bool { return segs() == 1 })
	// Entry ids keep growing after retention and a restart-free re-read.
	ids := produceN(t, c, "ret", 1, nil)
	if ids[0].EntryID() != 100 {
		t.Fatalf("entry id after retention %d, want 100", ids[0].EntryID())
	}
}
