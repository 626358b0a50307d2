package broker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/internal/testkit"
)

func TestSeekByIDAndTime(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	ids := produceN(t, c, "seek", 10, nil)
	// With StartMessageIDInclusive the client keeps the message sought to
	// (by default it drops it, as the upstream client tests expect).
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "seek", SubscriptionName: "s", StartMessageIDInclusive: true})
	drain(t, cons, 10)
	if err := cons.Seek(ids[4]); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload()) != "4" {
		t.Fatalf("after seek to message 4 got %s", m.Payload())
	}
	cut := time.Now()
	// Publish times have millisecond resolution; a message published in
	// the same millisecond as the seek target counts as before it.
	testkit.Eventually(t, waitTimeout, "the next millisecond", func() bool { return time.Now().UnixMilli() > cut.UnixMilli() })
	produceN(t, c, "seek", 1, nil)
	if err := cons.SeekByTime(cut); err != nil {
		t.Fatal(err)
	}
	m, err = cons.Receive(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload()) != "0" || m.PublishTime().Before(cut.Truncate(time.Millisecond)) {
		t.Fatalf("after seek by time got %s published %v (cut %v)", m.Payload(), m.PublishTime(), cut)
	}
}

func TestReaderStartPositions(t *testing.T) {
	b := TestBroker(t, nil)
	c := testClient(t, b)
	ids := produceN(t, c, "rd", 5, nil)
	read := func(o pulsar.ReaderOptions) []string {
		o.Topic = "rd"
		r, err := c.CreateReader(o)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for r.HasNext() {
			m, err := r.Next(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(m.Payload()))
		}
		return out
	}
	for name, tc := range map[string]struct {
		o    pulsar.ReaderOptions
		want string
	}{
		"earliest":  {pulsar.ReaderOptions{StartMessageID: pulsar.EarliestMessageID()}, "[0 1 2 3 4]"},
		"latest":    {pulsar.ReaderOptions{StartMessageID: pulsar.LatestMessageID()}, "[]"},
		"exclusive": {pulsar.ReaderOptions{StartMessageID: ids[2]}, "[3 4]"},
		"inclusive": {pulsar.ReaderOptions{StartMessageID: ids[2], StartMessageIDInclusive: true}, "[2 3 4]"},
		"latest inclusive": {pulsar.ReaderOptions{StartMessageID: pulsar.LatestMessageID(),
			StartMessageIDInclusive: true}, "[4]"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := fmt.Sprint(read(tc.o)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPartitionedTopicAndStats(t *testing.T) {
	b := TestBroker(t, nil)
	if code := adminDo(t, b, http.MethodPut, "/admin/v2/persistent/public/default/parts/partitions", "3"); code != http.StatusNoContent {
		t.Fatalf("create partitioned topic: HTTP %d", code)
	}
	resp, err := http.Get(b.AdminURL() + "/admin/v2/persistent/public/default/parts/partitions")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Partitions int }
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta.Partitions != 3 {
		t.Fatalf("partitions = %d", meta.Partitions)
	}
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "parts", SubscriptionName: "s", Type: pulsar.Shared})
	produceN(t, c, "parts", 30, func(i int) string { return fmt.Sprint(i) })
	got := drain(t, cons, 30)
	parts := map[string]bool{}
	for _, m := range got {
		parts[m.Topic()] = true
	}
	if len(parts) != 3 {
		t.Fatalf("messages came from %d partitions: %v", len(parts), parts)
	}
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/parts-partition-1", Name: "pp"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var st TopicStats
	testkit.Eventually(t, waitTimeout, "stats with the producer and consumer", func() bool {
		resp, err := http.Get(b.AdminURL() + "/admin/v2/persistent/public/default/parts-partition-1/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		st = TopicStats{}
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		s, ok := st.Subscriptions["s"]
		return ok && len(s.Consumers) == 1 && len(st.Publishers) == 1 && st.Publishers[0].ProducerName == "pp" && s.MsgBacklog == 0
	})
	resp, err = http.Get(b.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: HTTP %d", resp.StatusCode)
	}
}

func TestCumulativeAckNeverMovesBack(t *testing.T) {
	dir := t.TempDir()
	b, restart := restartable(t, dir, nil)
	c := testClient(t, b)
	ids := produceN(t, c, "cum", 10, nil)
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "cum", SubscriptionName: "s", Type: pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, AckWithResponse: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := cons.Receive(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cons.AckIDCumulative(ids[6]); err != nil {
		t.Fatal(err)
	}
	// A stale, older cumulative ack must not rewind the cursor.
	if err := cons.AckIDCumulative(ids[2]); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stats("cum")
	if err != nil {
		t.Fatal(err)
	}
	if bl := st.Subscriptions["s"].MsgBacklog; bl != 3 {
		t.Fatalf("backlog %d after cumulative ack of 6, want 3", bl)
	}
	cons.Close()
	b = restart()
	c = testClient(t, b)
	cons2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "cum", SubscriptionName: "s"})
	m := drain(t, cons2, 3)
	if string(m[0].Payload()) != "7" {
		t.Fatalf("after restart first message %s, want 7", m[0].Payload())
	}
}

// TestMalformedFramesCloseConnection sends garbage and checks the broker
// drops the connection (and keeps serving others).
func TestMalformedFramesCloseConnection(t *testing.T) {
	b := TestBroker(t, nil)
	addr := b.ServiceURL()[len("pulsar://"):]
	for name, frame := range map[string][]byte{
		"not connect first": {0, 0, 0, 8, 0, 0, 0, 4, 0x08, 18, 0x92, 0x01},
		"huge":              {0x7f, 0xff, 0xff, 0xff},
		"garbage":           {0, 0, 0, 6, 0, 0, 0, 2, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.Write(frame)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := bufio.NewReader(nc).ReadByte(); err == nil {
				t.Fatal("broker answered instead of closing")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("broker left the connection open")
			}
		})
	}
	c := testClient(t, b)
	produceN(t, c, "still-serving", 1, nil)
}
