//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/meshfed/meshfed/connector/httpconn"
	"github.com/meshfed/meshfed/internal/testkit"
)

// The IoT pipeline acceptance run (docs/connectors.md), with real
// processes and a real MQTT broker: devices publish N messages at QoS 1 to
// a mosquitto near cluster a; an MQTT source in a writes them to a topic,
// a function in a transforms them and writes to cluster b, and an
// effectively-once sink in b writes them out. The sink's agent is
// SIGKILLed twice mid-stream. Every message must arrive, and the sink's
// target must hold each exactly once.
//
// The sink is a parameter (e2eSink): the HTTP sink writing to a receiver
// the test runs, or any other sink type with a target the test can count.

// e2eSink is a sink type under test: the YAML of its sinks: entry (input
// given) and a count of what its target holds.
type e2eSink interface {
	// entry is the sinks: list item, indented by 4 spaces, with input.
	entry(input string) string
	// rows returns how many times each payload is in the target.
	rows() map[string]int
	// writes is how many records the target was sent, repeats included.
	writes() int
	// kind is the sink's connector type.
	kind() string
}

// httpTarget is the receiver of the HTTP sink: a table keyed by payload
// that stores a record only when its Sequence is above the last one of
// its Stream, as the sink's docs tell receivers to (effectively-once).
type httpTarget struct {
	srv *httptest.Server
	// mu guards the fields below.
	mu       sync.Mutex
	table    map[string]int
	last     map[string]uint64
	received int
}

func newHTTPTarget(t *testing.T) *httpTarget {
	h := &httpTarget{table: map[string]int{}, last: map[string]uint64{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer e2e-token" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		var batch []httpconn.BatchRecord
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, rec := range batch {
			h.received++
			if rec.Stream != "" {
				if seq, ok := h.last[rec.Stream]; ok && rec.Sequence <= seq {
					continue
				}
				h.last[rec.Stream] = rec.Sequence
			}
			h.table[rec.Value]++
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *httpTarget) entry(input string) string {
	return fmt.Sprintf(`    - name: rows
      type: http
      processingGuarantee: effectively_once
      config: {url: %q, token: {secret: {env: E2E_SINK_TOKEN}}, backoff: 50ms}
%s`, h.srv.URL, input)
}

func (h *httpTarget) kind() string { return "http" }

func (h *httpTarget) rows() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.table))
	for k, v := range h.table {
		out[k] = v
	}
	return out
}

func (h *httpTarget) writes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.received
}

// mqttMessages is the number of device messages: MESHFED_E2E_MQTT_MESSAGES,
// else a CI-sized default.
func mqttMessages(t *testing.T) int {
	s := os.Getenv("MESHFED_E2E_MQTT_MESSAGES")
	if s == "" {
		return 3000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("MESHFED_E2E_MQTT_MESSAGES=%q: want a positive integer", s)
	}
	return n
}

func TestIoTPipelineSinkAgentKilled(t *testing.T) {
	t.Setenv("E2E_SINK_TOKEN", "e2e-token") // the agents inherit it
	runIoTPipeline(t, newHTTPTarget(t))
}

func runIoTPipeline(t *testing.T, sink e2eSink) {
	n := mqttMessages(t)
	broker := testkit.Mosquitto(t)
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a", "b"}})
	f.apply(fmt.Sprintf(`apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: iot, tenant: public, namespace: default}
spec:
  sources:
    - name: devices
      type: mqtt
      config: {broker: %q, topics: ["sensors/#"]}
      output: {cluster: a, topic: persistent://public/default/readings}
  functions:
    - name: mark
      runtime: {builtin: exclamation}
      processingGuarantee: effectively_once
      input: {cluster: a, topics: [persistent://public/default/readings], subscriptionPosition: earliest}
      output: {cluster: b, topic: persistent://public/default/marked}
  sinks:
%s`, broker, sink.entry("      input: {cluster: b, topics: [persistent://public/default/marked], subscriptionPosition: earliest}\n")))
	f.waitRunning("iot", convergeTimeout, map[string]int{"devices": 1, "mark": 1, "rows": 1}, map[string]string{"devices": "a", "mark": "a", "rows": "b"})

	// Devices publish at QoS 1, paced so the stream outlasts the kills.
	dev := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("devices"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect devices: %v", tok.Error())
	}
	defer dev.Disconnect(0)
	perSecond := max(n/20, 100)
	published := make(chan error, 1)
	start := time.Now()
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		sent := 0
		for sent < n {
			<-tick.C
			due := min(n, int(time.Since(start).Seconds()*float64(perSecond))+1)
			var toks []paho.Token
			for ; sent < due; sent++ {
				toks = append(toks, dev.Publish(fmt.Sprintf("sensors/dev-%d/temp", sent%50), 1, false, fmt.Sprintf("r-%d", sent)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					published <- fmt.Errorf("publish: %v", tok.Error())
					return
				}
			}
		}
		published <- nil
	}()

	distinct := func() int { return len(sink.rows()) }
	sinkAgent := f.agents["agent-b"]
	for k, at := range []int{n / 4, n / 2} {
		testkit.Eventually(t, drainTimeout(n), fmt.Sprintf("%d rows before kill %d", at, k+1), func() (bool, string) {
			return distinct() >= at, fmt.Sprintf("%d rows", distinct())
		})
		t.Logf("kill %d of the sink's agent at %d rows", k+1, distinct())
		sinkAgent.kill9()
		sinkAgent.start()
		f.waitAgentReady("agent-b")
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	t.Logf("devices published %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	testkit.Eventually(t, drainTimeout(n), fmt.Sprintf("all %d messages in the sink's target", n), func() (bool, string) {
		return distinct() >= n, fmt.Sprintf("%d rows", distinct())
	})
	rows := sink.rows()
	var missing, dups []string
	for i := 0; i < n; i++ {
		switch c := rows[fmt.Sprintf("r-%d!", i)]; {
		case c == 0:
			missing = append(missing, strconv.Itoa(i))
		case c > 1:
			dups = append(dups, fmt.Sprintf("%d×%d", i, c))
		}
	}
	if len(rows) != n || len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("%d distinct rows for %d messages; missing %d (%s); duplicated %d (%s)", len(rows), n,
			len(missing), clip(strings.Join(missing, ","), 200), len(dups), clip(strings.Join(dups, ","), 200))
	}
	t.Logf("every one of %d messages in the target exactly once; the sink sent %d records (%d repeats skipped by identity) in %s",
		n, sink.writes(), sink.writes()-n, time.Since(start).Round(time.Millisecond))
	out := mustCLI(t, f.srv(), "get", "sinks", "--tenant", "public", "-n", "default")
	if !strings.Contains(out, "rows") || !strings.Contains(out, sink.kind()) {
		t.Fatalf("meshfed get sinks:\n%s", out)
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
