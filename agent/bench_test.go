package agent

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
)

// The data-plane benchmarks compare an identity instance with the raw
// pulsar-client-go loop it replaces (consume → produce → ack on send
// receipt), on the same in-process brokers in the same run:
//
//	go test -run '^$' -bench 'DataPlane|Reconcile|IdleInstance' -benchtime 1x ./agent/
//
// Figures are reported as custom metrics; ratios are what carry over
// between machines.

const benchMessages = 20000

func preproduce(b *testing.B, c pulsar.Client, topic string, n int) {
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	payload := make([]byte, 100)
	for i := 0; i < n; i++ {
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: payload, EventTime: time.Now()}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				b.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(); err != nil {
		b.Fatal(err)
	}
}

// rawLoop drains n messages from in to out the way a hand-written function would.
func rawLoop(cin, cout pulsar.Client, in, out string, n int) (time.Duration, error) {
	cons, err := cin.Subscribe(pulsar.ConsumerOptions{Topic: in, SubscriptionName: "raw", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, ReceiverQueueSize: 1000})
	if err != nil {
		return 0, err
	}
	defer cons.Close()
	prod, err := cout.CreateProducer(pulsar.ProducerOptions{Topic: out, BatchingMaxPublishDelay: 2 * time.Millisecond})
	if err != nil {
		return 0, err
	}
	defer prod.Close()
	var done atomic.Int64
	start := time.Now()
	for i := 0; i < n; i++ {
		m, err := cons.Receive(context.Background())
		if err != nil {
			return 0, err
		}
		prod.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: m.Payload(), Properties: m.Properties(), EventTime: m.EventTime()},
			func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err == nil {
					_ = cons.Ack(m)
					done.Add(1)
				}
			})
	}
	for done.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	return time.Since(start), nil
}

// countTopic reads n messages of topic and returns their latencies
// (publish time − event time); the time of the first and last read are
// stored in first and last when not nil.
func countTopic(b *testing.B, c pulsar.Client, topic string, n int, firstLast ...*time.Time) []time.Duration {
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	lat := make([]time.Duration, 0, n)
	for len(lat) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			b.Fatalf("read %s after %d of %d: %v", topic, len(lat), n, err)
		}
		lat = append(lat, m.PublishTime().Sub(m.EventTime()))
		if len(firstLast) == 2 {
			if len(lat) == 1 {
				*firstLast[0] = time.Now()
			}
			*firstLast[1] = time.Now()
		}
	}
	return lat
}

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// steady produces at rate for dur and returns per-message latencies
// (output publish time − input event time) read from out.
func steady(b *testing.B, cin, cout pulsar.Client, in, out string, rate int, dur time.Duration) []time.Duration {
	p, err := cin.CreateProducer(pulsar.ProducerOptions{Topic: in, DisableBatching: true})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	n := int(float64(rate) * dur.Seconds())
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	go func() {
		for i := 0; i < n; i++ {
			<-t.C
			p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte("x"), EventTime: time.Now()}, func(pulsar.MessageID, *pulsar.ProducerMessage, error) {})
		}
	}()
	return countTopic(b, cout, out, n)
}

func BenchmarkDataPlane(b *testing.B) {
	for range b.N {
		f := newFederation(b, "a", "b")
		ca, cb := pulsarClient(b, f.brokers["a"]), pulsarClient(b, f.brokers["b"])

		// Raw pulsar-client-go loop.
		preproduce(b, ca, "persistent://public/default/raw-in", benchMessages)
		// Both paths are timed the same way: from the first output message
		// read to the last, so start-up is not counted for either.
		rawErr := make(chan error, 1)
		go func() {
			_, err := rawLoop(ca, cb, "persistent://public/default/raw-in", "persistent://public/default/raw-out", benchMessages)
			rawErr <- err
		}()
		var rawFirst, rawLast time.Time
		countTopic(b, cb, "persistent://public/default/raw-out", benchMessages, &rawFirst, &rawLast)
		if err := <-rawErr; err != nil {
			b.Fatal(err)
		}
		rawTook := rawLast.Sub(rawFirst)
		go func() {
			_, _ = rawLoop(ca, cb, "persistent://public/default/raw-lat-in", "persistent://public/default/raw-lat-out", 1000)
		}()
		rawLat := steady(b, ca, cb, "persistent://public/default/raw-lat-in", "persistent://public/default/raw-lat-out", 500, 2*time.Second)

		// The same through an identity instance.
		preproduce(b, ca, "persistent://public/default/in", benchMessages)
		f.startAgent(b, "agent-a", "a", b.TempDir())
		var first, last time.Time
		f.apply(b, meshObj("id", builtinFn("id", "identity", "a", "persistent://public/default/in", "b", "persistent://public/default/out", "atleast_once")))
		countTopic(b, cb, "persistent://public/default/out", benchMessages, &first, &last)
		instTook := last.Sub(first)
		f.apply(b, meshObj("lat", builtinFn("lat", "identity", "a", "persistent://public/default/lat-in", "b", "persistent://public/default/lat-out", "atleast_once")))
		waitRunning(b, f, "lat")
		instLat := steady(b, ca, cb, "persistent://public/default/lat-in", "persistent://public/default/lat-out", 500, 2*time.Second)

		rawRate := float64(benchMessages-1) / rawTook.Seconds()
		instRate := float64(benchMessages-1) / instTook.Seconds()
		b.ReportMetric(rawRate, "raw-msgs/s")
		b.ReportMetric(instRate, "instance-msgs/s")
		b.ReportMetric(instRate/rawRate, "ratio")
		b.ReportMetric(float64(pct(rawLat, 0.5).Microseconds())/1000, "raw-p50-ms")
		b.ReportMetric(float64(pct(rawLat, 0.99).Microseconds())/1000, "raw-p99-ms")
		b.ReportMetric(float64(pct(instLat, 0.5).Microseconds())/1000, "instance-p50-ms")
		b.ReportMetric(float64(pct(instLat, 0.99).Microseconds())/1000, "instance-p99-ms")
		b.ReportMetric(float64((pct(instLat, 0.99)-pct(rawLat, 0.99)).Microseconds())/1000, "added-p99-ms")
	}
}

// BenchmarkReconcile measures apply → first output message over 50 applies
// of a new mesh each.
func BenchmarkReconcile(b *testing.B) {
	for range b.N {
		f := newFederation(b, "a")
		f.startAgent(b, "agent-a", "a", b.TempDir())
		c := pulsarClient(b, f.brokers["a"])
		var took []time.Duration
		for i := 0; i < 50; i++ {
			in, out := fmt.Sprintf("persistent://public/default/r%d-in", i), fmt.Sprintf("persistent://public/default/r%d-out", i)
			preproduce(b, c, in, 1)
			start := time.Now()
			f.apply(b, meshObj(fmt.Sprintf("r%d", i), builtinFn("f", "identity", "a", in, "a", out, "atleast_once")))
			countTopic(b, c, out, 1)
			took = append(took, time.Since(start))
		}
		b.ReportMetric(float64(pct(took, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(pct(took, 0.99).Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkIdleInstance measures the Go heap per idle builtin instance.
func BenchmarkIdleInstance(b *testing.B) {
	const n = 50
	for range b.N {
		f := newFederation(b, "a")
		f.startAgent(b, "agent-a", "a", b.TempDir())
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var fns []*meshfedv1.FunctionSpec
		for i := 0; i < n; i++ {
			fns = append(fns, builtinFn(fmt.Sprintf("f%d", i), "identity", "a", fmt.Sprintf("persistent://public/default/idle%d", i), "a", "persistent://public/default/idle-out", "atleast_once"))
		}
		f.apply(b, meshObj("idle", fns...))
		waitRunning(b, f, "idle")
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n/1024, "KiB-heap/instance")
	}
}

func waitRunning(b *testing.B, f *testFed, mesh string) {
	b.Helper()
	testkit.Eventually(b, 60*time.Second, "mesh "+mesh+" ready", func() bool {
		o, _, err := f.srv.State().Get("FunctionMesh", "public", "default", mesh)
		if err != nil {
			return false
		}
		for _, c := range o.GetFunctionMesh().GetStatus().GetConditions() {
			if c.GetType() == "Ready" && c.GetStatus() == "True" {
				return true
			}
		}
		return false
	})
}

// BenchmarkEffectivelyOnce compares, on the same in-process brokers in the
// same run, an identity instance under effectively_once (a producer per
// input partition and origin producer, batching off, in-order cumulative
// acknowledgements, one look-back at start) with at_least_once, over
// benchMessages batched inputs from two producers; and the rate of a replay
// whose outputs are all skipped as already written:
//
//	go test -run '^$' -bench EffectivelyOnce -benchtime 1x ./agent/
func BenchmarkEffectivelyOnce(b *testing.B) {
	for range b.N {
		f := newFederation(b, "a", "b")
		dir := b.TempDir()
		stop := f.startAgent(b, "agent-a", "a", dir)
		ca, cb := pulsarClient(b, f.brokers["a"]), pulsarClient(b, f.brokers["b"])
		rate := func(mesh, guarantee string) float64 {
			in, out := "persistent://public/default/"+mesh+"-in", "persistent://public/default/"+mesh+"-out"
			preproduce(b, ca, in, benchMessages/2)
			preproduce(b, ca, in, benchMessages/2)
			var first, last time.Time
			f.apply(b, meshObj(mesh, builtinFn("f", "identity", "a", in, "b", out, guarantee)))
			countTopic(b, cb, out, benchMessages, &first, &last)
			return float64(benchMessages-1) / last.Sub(first).Seconds()
		}
		alo := rate("alo", "atleast_once")
		eo := rate("eo", "effectively_once")
		b.ReportMetric(alo, "alo-msgs/s")
		b.ReportMetric(eo, "eo-msgs/s")
		b.ReportMetric(eo/alo, "eo/alo")

		// Replay everything: every output is skipped.
		stop()
		admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: f.brokers["a"].AdminURL()})
		if err != nil {
			b.Fatal(err)
		}
		tn, _ := utils.GetTopicName("persistent://public/default/eo-in")
		if err := admin.Subscriptions().ResetCursorToTimestamp(*tn, "meshfed-public-default-eo-f", 0); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		f.startAgent(b, "agent-a", "a", dir)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			o, _, err := f.srv.State().Get("Assignment", "public", "default", "eo.f.0")
			if err == nil && o.GetAssignment().GetStatus().GetDeduplicated() >= benchMessages {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("replay did not finish: %v", o.GetAssignment().GetStatus())
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.ReportMetric(float64(benchMessages)/time.Since(start).Seconds(), "replay-skipped-msgs/s")
	}
}
