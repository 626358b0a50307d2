package agent

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/meshfed/meshfed/broker"
	_ "github.com/meshfed/meshfed/connector/mqtt" // the source under test
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/types/known/structpb"
)

// BenchmarkMQTTSource compares the MQTT source — an agent instance that
// reads QoS 1 messages, writes them to a Pulsar topic with send
// confirmation and only then acknowledges them to the MQTT broker — with
// the raw paho loop that subscribes at QoS 1 and acknowledges on receipt,
// against the same mosquitto in the same run:
//
//	go test -run '^$' -bench MQTTSource -benchtime 2x ./agent/
//
// Each round drains raw, relay and source one after the other, so with
// -benchtime Nx they alternate N times in one run; every round is logged
// and the reported metrics are the medians over the rounds, with the
// process CPU time per message of each phase (the raw loop, the relay, the
// agent, the control plane and the broker share this process; mosquitto
// does not).
//
// A second baseline is the naive relay the source replaces: the same paho
// loop sending each message to Pulsar as it arrives (with the key and
// properties the source writes), acknowledging on receipt (so a crash
// loses what Pulsar had not stored).
//
// All drain a backlog of MESHFED_BENCH_MQTT_MESSAGES (default 50,000)
// 100-byte messages queued in their persistent session before they
// connect (MESHFED_BENCH_MQTT_BATCH sets the source's maxBatch); rates
// are messages over the time from the first message to the last (for the
// relay and the source, the publish times of the first and last message
// in the output topic), so start-up is not counted. Each topic is read
// back only after it holds every message (so reading does not compete
// with writing), and must hold the devices' messages once each, in order.
func BenchmarkMQTTSource(b *testing.B) {
	n := 50000
	if s := os.Getenv("MESHFED_BENCH_MQTT_MESSAGES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("MESHFED_BENCH_MQTT_MESSAGES=%q: want a positive integer", s)
		}
	}
	broker := testkit.Mosquitto(b)
	f := newFederation(b, "a")
	f.startAgent(b, "agent-a", "a", b.TempDir())
	pc := pulsarClient(b, f.brokers["a"])
	var raw, relay, src, rawCPU, relayCPU, srcCPU []float64
	for round := 0; round < b.N; round++ {
		rawID, srcID := fmt.Sprintf("bench-raw-%d", round), fmt.Sprintf("bench-src-%d", round)
		filterRaw, filterSrc := fmt.Sprintf("raw%d/#", round), fmt.Sprintf("src%d/#", round)
		relayID, filterRelay := fmt.Sprintf("bench-relay-%d", round), fmt.Sprintf("relay%d/#", round)
		openSession(b, broker, rawID, filterRaw)
		openSession(b, broker, relayID, filterRelay)
		openSession(b, broker, srcID, filterSrc)
		publishBacklog(b, broker, fmt.Sprintf("raw%d/x", round), n)
		publishBacklog(b, broker, fmt.Sprintf("relay%d/x", round), n)
		publishBacklog(b, broker, fmt.Sprintf("src%d/x", round), n)

		c0 := processCPU(b)
		raw = append(raw, rawDrain(b, broker, rawID, n, nil))
		c1 := processCPU(b)
		relayTopic := fmt.Sprintf("persistent://public/default/mqtt-relay-%d", round)
		prod, err := pc.CreateProducer(pulsar.ProducerOptions{Topic: relayTopic, BatchingMaxPublishDelay: 2 * time.Millisecond, MaxPendingMessages: 8000})
		if err != nil {
			b.Fatal(err)
		}
		rawDrain(b, broker, relayID, n, prod)
		if err := prod.Flush(); err != nil {
			b.Fatalf("relay: flush: %v", err)
		}
		prod.Close()
		relay = append(relay, topicRate(b, pc, relayTopic, n))
		c2 := processCPU(b)

		topic := fmt.Sprintf("persistent://public/default/mqtt-bench-%d", round)
		values := map[string]any{"broker": broker, "topics": []any{filterSrc}, "clientId": srcID}
		if mb := os.Getenv("MESHFED_BENCH_MQTT_BATCH"); mb != "" {
			v, _ := strconv.Atoi(mb)
			values["maxBatch"] = float64(v)
		}
		cfg, _ := structpb.NewStruct(values)
		c3 := processCPU(b)
		f.apply(b, objects.Wrap(&meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: fmt.Sprintf("bench-%d", round), Tenant: "public", Namespace: "default"},
			Spec: &meshfedv1.FunctionMeshSpec{Sources: []*meshfedv1.ConnectorSpec{{Name: "devices", Type: "mqtt", Config: cfg,
				Output: &meshfedv1.FunctionOutput{Cluster: "a", Topic: topic}}}}}))
		waitWritten(b, f.brokers["a"], topic, n)
		src = append(src, topicRate(b, pc, topic, n))
		c4 := processCPU(b)
		perMsg := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		rawCPU, relayCPU = append(rawCPU, perMsg(c1-c0)), append(relayCPU, perMsg(c2-c1))
		srcCPU = append(srcCPU, perMsg(c4-c3))
		b.Logf("round %d: raw %.0f relay %.0f source %.0f msgs/s; source/raw %.2f source/relay %.2f; process CPU µs/msg raw %.1f relay %.1f source %.1f",
			round, raw[round], relay[round], src[round], src[round]/raw[round], src[round]/relay[round], rawCPU[round], relayCPU[round], srcCPU[round])
	}
	ratios := func(a, b []float64) []float64 {
		r := make([]float64, len(a))
		for k := range a {
			r[k] = a[k] / b[k]
		}
		return r
	}
	b.ReportMetric(median(raw), "raw_msgs/s")
	b.ReportMetric(median(relay), "relay_msgs/s")
	b.ReportMetric(median(src), "source_msgs/s")
	b.ReportMetric(median(ratios(src, raw)), "source/raw")
	b.ReportMetric(median(ratios(src, relay)), "source/relay")
	b.ReportMetric(median(rawCPU), "raw_cpu_µs/msg")
	b.ReportMetric(median(relayCPU), "relay_cpu_µs/msg")
	b.ReportMetric(median(srcCPU), "source_cpu_µs/msg")
}

// median returns the median of v (the mean of the middle two for an even
// length).
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// processCPU is the user and system CPU time this process has used: the
// raw loop, the relay, the agent, the control plane and the broker all
// run in it (mosquitto does not).
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openSession creates a persistent session subscribed to filter, so the
// broker queues what is published while the client is away.
func openSession(b *testing.B, broker, id, filter string) {
	b.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", id, tok.Error())
	}
	if tok := c.Subscribe(filter, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe %s: %v", id, tok.Error())
	}
	c.Disconnect(250)
}

func publishBacklog(b *testing.B, broker, topic string, n int) {
	b.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("bench-devices").SetMaxResumePubInFlight(1000))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect devices: %v", tok.Error())
	}
	defer c.Disconnect(250)
	toks := make([]paho.Token, 0, 1000)
	for i := 0; i < n; i++ {
		payload := make([]byte, 100) // its number first, for topicRate to check
		binary.BigEndian.PutUint64(payload, uint64(i))
		toks = append(toks, c.Publish(topic, 1, false, payload))
		if len(toks) == cap(toks) || i == n-1 {
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					b.Fatalf("publish: %v", tok.Error())
				}
			}
			toks = toks[:0]
		}
	}
}

// rawDrain is the baseline: paho subscribed at QoS 1, acknowledging on
// receipt, counting messages. It returns messages/s from first to last.
// With prod it is the second baseline, the naive relay: each message is
// also sent to Pulsar, acknowledged to MQTT on receipt all the same (it
// may lose messages on a crash, which the source does not).
func rawDrain(b *testing.B, broker, id string, n int, prod pulsar.Producer) float64 {
	b.Helper()
	var mu sync.Mutex
	var first, last time.Time
	count := 0
	done := make(chan struct{})
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			if prod != nil {
				// What the source writes: the topic as key and property,
				// and the cluster property.
				props := map[string]string{"mqtt.topic": m.Topic(), clusterProperty: "a"}
				prod.SendAsync(context.Background(), &pulsar.ProducerMessage{Key: m.Topic(), Payload: m.Payload(), Properties: props}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						b.Errorf("relay: send: %v", err)
					}
				})
			}
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			if count == 0 {
				first = now
			}
			count++
			last = now
			if count == n {
				close(done)
			}
		}))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", id, tok.Error())
	}
	defer c.Disconnect(250)
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("raw loop: %d of %d messages", count, n)
	}
	return float64(n-1) / last.Sub(first).Seconds()
}

// waitWritten waits until topic holds n messages, so that reading them
// back (topicRate) does not compete for the CPU with what writes them, as
// it does not for the relay, which is read back after it finished.
func waitWritten(b *testing.B, br *broker.Broker, topic string, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := br.Stats(topic)
		if err == nil && st.MsgInCounter >= int64(n) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("source: %s holds fewer than %d messages after 5 minutes (stats: %v)", topic, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// topicRate reads n messages from topic, checks they are the devices'
// messages in order, each once, and returns messages/s between the first
// and the last publish time (stamped by the writer's Pulsar client as it
// takes each message into a batch).
func topicRate(b *testing.B, pc pulsar.Client, topic string, n int) float64 {
	b.Helper()
	r, err := pc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var first, last time.Time
	for i := 0; i < n; i++ {
		m, err := r.Next(ctx)
		if err != nil {
			b.Fatalf("source: %d of %d messages in %s: %v", i, n, topic, err)
		}
		if got := binary.BigEndian.Uint64(m.Payload()); len(m.Payload()) != 100 || got != uint64(i) {
			b.Fatalf("%s: message %d is device message %d (%d bytes): lost, repeated or reordered", topic, i, got, len(m.Payload()))
		}
		if i == 0 {
			first = m.PublishTime()
		}
		last = m.PublishTime()
	}
	return float64(n-1) / last.Sub(first).Seconds()
}
