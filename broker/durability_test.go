package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func restartable(t *testing.T, dir string, mod func(*Config)) (*Broker, func() *Broker) {
	cfgMod := func(c *Config) {
		c.DataDir = dir
		if mod != nil {
			mod(c)
		}
	}
	b := TestBroker(t, cfgMod)
	return b, func() *Broker {
		b.Close()
		b = TestBroker(t, cfgMod)
		return b
	}
}

func adminDo(t *testing.T, b *Broker, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, b.AdminURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestDedupSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, restart := restartable(t, dir, nil)
	if code := adminDo(t, b, http.MethodPost, "/admin/v2/namespaces/public/default/deduplication", "true"); code != http.StatusNoContent {
		t.Fatalf("enable dedup: HTTP %d", code)
	}
	// send publishes payloads with the given sequence ids (-1: let the
	// client assign one, continuing from the broker's last_sequence_id) and
	// returns the sequence id the first message went out with and the
	// message ids.
	send := func(b *Broker, seqs ...int64) (int64, []pulsar.MessageID) {
		c := testClient(t, b)
		p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "dedup", Name: "fn-1", DisableBatching: true})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var ids []pulsar.MessageID
		first := int64(-2)
		for _, s := range seqs {
			m := &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(s))}
			if s >= 0 {
				s := s
				m.SequenceID = &s
			}
			id, err := p.Send(ctxT(t), m)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			if first == -2 {
				first = p.LastSequenceID()
			}
		}
		return first, ids
	}
	if first, _ := send(b, 0, 1, 2, 3, 4); first != 0 {
		t.Fatalf("first sequence id %d", first)
	}
	b = restart()
	// The client numbers an unnumbered message from the last_sequence_id the
	// broker returned (4), so it gets 5 only if the broker remembered.
	last, ids := send(b, -1, 3, 4)
	if last != 5 {
		t.Fatalf("after restart the next sequence id was %d, want 5", last)
	}
	if ids[0].EntryID() < 0 || ids[1].EntryID() != -1 || ids[2].EntryID() != -1 {
		t.Fatalf("duplicates were not dropped: %v", ids)
	}
	c := testClient(t, b)
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: "dedup", SubscriptionName: "s"})
	got := drain(t, cons, 6)
	for i, m := range got {
		want := fmt.Sprint(i)
		if i == 5 {
			want = "-1"
		}
		if string(m.Payload()) != want {
			t.Fatalf("message %d is %s, want %s", i, m.Payload(), want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if m, err := cons.Receive(ctx); err == nil {
		t.Fatalf("duplicate stored: %s", m.Payload())
	}
}

func TestCursorSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, restart := restartable(t, dir, nil)
	c := testClient(t, b)
	produceN(t, c, "cur", 10, nil)
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: "cur", SubscriptionName: "s", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, AckWithResponse: true})
	if err != nil {
		t.Fatal(err)
	}
	// Ack 0-3 and 6 (individually); 4, 5, 7, 8, 9 stay unacknowledged.
	for i := 0; i < 10; i++ {
		m, err := cons.Receive(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if i < 4 || i == 6 {
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	cons.Close()
	b = restart()
	c = testClient(t, b)
	cons2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: "cur", SubscriptionName: "s", Type: pulsar.Shared})
	got := drain(t, cons2, 5)
	var payloads []string
	for _, m := range got {
		payloads = append(payloads, string(m.Payload()))
	}
	if strings.Join(payloads, ",") != "4,5,7,8,9" {
		t.Fatalf("after restart got %v, want 4,5,7,8,9", payloads)
	}
}

// TestHelperProcess is not a test: TestKillDuringProduce runs it as a child
// process serving a broker until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("MESHFED_BROKER_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	// The geo-replication tests name the cluster and fix the addresses
	// (a restarted child keeps its ports).
	listen := os.Getenv("MESHFED_BROKER_HELPER_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	b, err := New(Config{DataDir: dir, ListenAddr: listen, HTTPAddr: os.Getenv("MESHFED_BROKER_HELPER_HTTP"),
		ClusterName: os.Getenv("MESHFED_BROKER_HELPER_CLUSTER"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := b.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("URL", b.ServiceURL(), b.AdminURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	os.Exit(0)
}

func TestKillDuringProduce(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MESHFED_BROKER_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	var url string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "URL ") {
			url = strings.Fields(sc.Text())[1]
			break
		}
	}
	if url == "" {
		t.Fatal("helper broker did not start")
	}
	go io.Copy(io.Discard, out)

	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, OperationTimeout: 5 * time.Second,
		Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	// The client is abandoned after the kill (closing a producer whose
	// broker is gone can wait on reconnect attempts), hence no Close here.
	one := uint(1)
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "burst", BatchingMaxMessages: 50,
		BatchingMaxPublishDelay: time.Millisecond, SendTimeout: 2 * time.Second, MaxReconnectToBroker: &one})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	ctx := context.Background()
	killed := false
	for i := 0; !killed; i++ {
		payload := fmt.Sprintf("m-%d", i)
		wg.Add(1)
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(payload)}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			defer wg.Done()
			if err == nil {
				mu.Lock()
				acked[payload] = true
				mu.Unlock()
			}
		})
		mu.Lock()
		enough := len(acked) >= 2000
		mu.Unlock()
		if enough {
			// Kill in the middle of the burst: sends are in flight.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killed = true
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Callbacks of sends in flight fail after SendTimeout; the client may
	// also drop some on its way down. Only successes matter and none can
	// arrive after the kill, so a bounded wait is enough.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	go c.Close()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked < 2000 {
		t.Fatalf("only %d sends acknowledged before the kill", nAcked)
	}

	b := TestBroker(t, func(cfg *Config) { cfg.DataDir = dir })
	rc := testClient(t, b)
	r, err := rc.CreateReader(pulsar.ReaderOptions{Topic: "burst", StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stored := map[string]bool{}
	for r.HasNext() {
		m, err := r.Next(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		stored[string(m.Payload())] = true
	}
	missing := 0
	for k := range acked {
		if !stored[k] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages lost after kill -9 (stored %d)", missing, nAcked, len(stored))
	}
	t.Logf("acknowledged %d, stored %d after kill -9", nAcked, len(stored))
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		t.Fatal(err)
	}
}
