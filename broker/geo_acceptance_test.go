package broker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/internal/testkit"
)

// childBroker is a broker running in a child process (the test binary's
// TestHelperProcess), so that it can be killed with SIGKILL and restarted
// on the same data dir and ports.
type childBroker struct {
	t       *testing.T
	name    string
	dir     string
	cmd     *exec.Cmd
	service string // pulsar://host:port
	admin   string // http://host:port
}

func startChild(t *testing.T, name, dir, listen, httpAddr string) *childBroker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MESHFED_BROKER_HELPER_DIR="+dir, "MESHFED_BROKER_HELPER_CLUSTER="+name,
		"MESHFED_BROKER_HELPER_LISTEN="+listen, "MESHFED_BROKER_HELPER_HTTP="+httpAddr)
	out, err := cmd.StdoutPipe()
	must(t, "child stdout", err)
	cmd.Stderr = os.Stderr
	must(t, "start child broker", cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "URL" {
			go io.Copy(io.Discard, out)
			return &childBroker{t: t, name: name, dir: dir, cmd: cmd, service: f[1], admin: f[2]}
		}
	}
	t.Fatalf("child broker %s did not start", name)
	return nil
}

// kill9 kills the child with SIGKILL and starts it again on the same data
// dir and ports.
func (c *childBroker) kill9AndRestart() {
	c.t.Helper()
	must(c.t, "kill -9 "+c.name, c.cmd.Process.Signal(syscall.SIGKILL))
	_ = c.cmd.Wait()
	su, _ := url.Parse(c.service)
	au, _ := url.Parse(c.admin)
	*c = *startChild(c.t, c.name, c.dir, su.Host, au.Host)
}

func (c *childBroker) endpoint() geoEndpoint { return geoEndpoint{c.name, c.service, c.admin} }

// statsOf reads a topic's stats through the admin API.
func statsOf(adminURL, topic string) (*TopicStats, error) {
	resp, err := http.Get(adminURL + "/admin/v2/persistent/public/default/" + topic + "/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var st TopicStats
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

func quietClient(t *testing.T, serviceURL string) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, OperationTimeout: 30 * time.Second,
		ConnectionTimeout: 5 * time.Second, Logger: plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	must(t, "client", err)
	return c
}

// TestGeoReplicationAcceptance is issue 10's acceptance test: two brokers
// named a and c; clusters, tenant and namespace replication set through
// /admin/v2 with pulsaradmin; 10,000 messages produced to a only, with
// batching; all read on c as replicated from a with the original producer
// name and other message ids. In each case one broker is killed with
// SIGKILL mid-stream and restarted: nothing is lost and nothing is stored
// twice on c.
func TestGeoReplicationAcceptance(t *testing.T) {
	for _, victim := range []string{"none", "a", "c"} {
		t.Run("kill="+victim, func(t *testing.T) { geoAcceptance(t, victim) })
	}
}

func geoAcceptance(t *testing.T, victim string) {
	const n = 10000
	const topic = "accept"
	var aEP, cEP geoEndpoint
	var child *childBroker
	var local *Broker
	switch victim {
	case "a":
		child = startChild(t, "a", t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")
		local = TestBroker(t, func(c *Config) { c.ClusterName = "c" })
		aEP, cEP = child.endpoint(), endpointOf(local)
	default:
		local = TestBroker(t, func(c *Config) { c.ClusterName = "a" })
		if victim == "c" {
			child = startChild(t, "c", t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")
			cEP = child.endpoint()
		} else {
			cEP = endpointOf(TestBroker(t, func(c *Config) { c.ClusterName = "c" }))
		}
		aEP = endpointOf(local)
	}
	configureGeo(t, "public/default", aEP, cEP)

	// The client of a is abandoned, not closed, when a is killed (closing
	// a producer whose broker is gone can wait on reconnect attempts).
	ca := quietClient(t, aEP.serviceURL)
	p, err := ca.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "orig", BatchingMaxMessages: 100,
		BatchingMaxPublishDelay: 2 * time.Millisecond, MaxPendingMessages: 2000, SendTimeout: time.Minute})
	must(t, "producer on a", err)
	var mu sync.Mutex
	acked := map[string]pulsar.MessageID{}
	failed := 0
	var wg sync.WaitGroup
	killed := victim == "none"
	for i := 0; i < n; i++ {
		payload := fmt.Sprint("m-", i)
		wg.Add(1)
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(payload)},
			func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				acked[payload] = id
			})
		if !killed && i%100 == 0 {
			if victim == "a" {
				mu.Lock()
				enough := len(acked) >= n/3
				mu.Unlock()
				if enough {
					child.kill9AndRestart()
					killed = true
				}
			} else if st, err := statsOf(cEP.adminURL, topic); err == nil && st.MsgInCounter >= n/3 {
				child.kill9AndRestart()
				killed = true
			}
		}
	}
	if !killed {
		// Replication lagged the whole burst: kill c while it catches up.
		testkit.Eventually(t, waitTimeout, "c to receive a third of the stream", func() bool {
			st, err := statsOf(cEP.adminURL, topic)
			return err == nil && st.MsgInCounter >= n/3
		})
		child.kill9AndRestart()
	}
	wg.Wait()
	mu.Lock()
	nAcked, nFailed := len(acked), failed
	mu.Unlock()
	t.Logf("kill=%s: %d of %d sends acknowledged by a, %d failed", victim, nAcked, n, nFailed)
	if nAcked < n/2 {
		t.Fatalf("only %d sends acknowledged", nAcked)
	}

	// Wait until a has replicated everything it stored.
	testkit.Eventually(t, 60*time.Second, "a's replication backlog to c to drain", func() error {
		st, err := statsOf(aEP.adminURL, topic)
		if err != nil {
			return err
		}
		if rs := st.Replication["c"]; rs == nil || !rs.Connected || rs.ReplicationBacklog != 0 {
			return fmt.Errorf("replication to c: %+v", rs)
		}
		return nil
	})
	cc := quietClient(t, cEP.serviceURL)
	defer cc.Close()
	r, err := cc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	must(t, "reader on c", err)
	defer r.Close()
	seen := map[string]int{}
	for r.HasNext() {
		m, err := r.Next(ctxT(t))
		must(t, "read on c", err)
		seen[string(m.Payload())]++
		if !m.IsReplicated() || m.GetReplicatedFrom() != "a" || m.ProducerName() != "orig" {
			t.Fatalf("%s on c: replicated %v from %q, producer %q", m.Payload(), m.IsReplicated(), m.GetReplicatedFrom(), m.ProducerName())
		}
		mu.Lock()
		aID, ok := acked[string(m.Payload())]
		mu.Unlock()
		if ok && aID.LedgerID() == m.ID().LedgerID() {
			t.Fatalf("%s has ledger %d on a and on c", m.Payload(), aID.LedgerID())
		}
	}
	lost, dup := 0, 0
	for payload := range acked {
		if seen[payload] == 0 {
			lost++
		}
	}
	for _, k := range seen {
		if k > 1 {
			dup++
		}
	}
	t.Logf("kill=%s: c holds %d distinct messages; lost %d, duplicated %d", victim, len(seen), lost, dup)
	if lost > 0 || dup > 0 {
		t.Fatalf("kill=%s: %d acknowledged messages missing on c, %d stored more than once", victim, lost, dup)
	}
	if st, err := statsOf(cEP.adminURL, topic); err == nil {
		t.Logf("kill=%s: c dropped %d replicated entries as duplicates", victim, st.Replication["a"].DuplicatesIn)
	}
}
