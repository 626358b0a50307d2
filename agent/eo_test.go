package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var testMetrics struct {
	once   sync.Once
	reader *sdkmetric.ManualReader
}

// metricsReader installs, once per test binary, a meter provider whose
// metrics the tests read.
func metricsReader() *sdkmetric.ManualReader {
	testMetrics.once.Do(func() {
		testMetrics.reader = sdkmetric.NewManualReader()
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(testMetrics.reader)))
	})
	return testMetrics.reader
}

// counterSum adds up the data points of an int64 counter whose attributes
// include every pair of match.
func counterSum(t *testing.T, name string, match map[string]string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := metricsReader().Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
		points:
			for _, dp := range sum.DataPoints {
				for k, v := range match {
					if got, ok := dp.Attributes.Value(attribute.Key(k)); !ok || got.AsString() != v {
						continue points
					}
				}
				n += dp.Value
			}
		}
	}
	return n
}

func testAdmin(t *testing.T, b *broker.Broker) pulsaradmin.Client {
	t.Helper()
	c, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: b.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func topicName(t *testing.T, topic string) utils.TopicName {
	t.Helper()
	tn, err := utils.GetTopicName(topic)
	if err != nil {
		t.Fatal(err)
	}
	return *tn
}

// drainMessages reads topic from the earliest message until want distinct
// payloads arrived (then a short quiet period for trailing duplicates) or
// the timeout passed.
func drainMessages(t *testing.T, c pulsar.Client, topic string, want int, timeout time.Duration) []pulsar.Message {
	t.Helper()
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []pulsar.Message
	distinct := map[string]bool{}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		wait := time.Until(deadline)
		if len(distinct) >= want {
			wait = 300 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			if len(distinct) >= want {
				break
			}
			continue
		}
		got = append(got, m)
		distinct[string(m.Payload())] = true
	}
	return got
}

// exactlyOnce checks that msgs hold every payload of want once and
// nothing else.
func exactlyOnce(t *testing.T, msgs []pulsar.Message, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range msgs {
		count[string(m.Payload())]++
	}
	var missing, dup []string
	for _, w := range want {
		switch n := count[w]; {
		case n == 0:
			missing = append(missing, w)
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s×%d", w, n))
		}
		delete(count, w)
	}
	var extra []string
	for p := range count {
		extra = append(extra, p)
	}
	if len(missing)+len(dup)+len(extra) > 0 {
		clip := func(s []string) string { return strings.Join(s[:min(len(s), 8)], " ") }
		t.Fatalf("read %d messages: %d missing (%s), %d duplicated (%s), %d unexpected (%s)",
			len(msgs), len(missing), clip(missing), len(dup), clip(dup), len(extra), clip(extra))
	}
}

// instanceStatus is the reported status of instance 0 of mesh/fn.
func instanceStatus(f *testFed, mesh, fn string) *meshfedv1.InstanceStatus {
	o, _, err := f.srv.State().Get("Assignment", "public", "default", mesh+"."+fn+".0")
	if err != nil {
		return nil
	}
	return o.GetAssignment().GetStatus()
}

func stateValue(f *testFed, mesh, fn, key string) (string, bool) {
	vs := f.srv.State().GetState(&meshfedv1.StateScope{Tenant: "public", Namespace: "default", Mesh: mesh, Function: fn}, []string{key})
	if len(vs) == 0 || !vs[0].GetExists() {
		return "", false
	}
	return string(vs[0].GetValue()), true
}

// A replay of everything already processed (the subscription reset to the
// earliest message while the instance was stopped) writes nothing twice,
// and every output it did not write is counted: in the instance's status
// and in meshfed_function_deduplicated. Inputs are batched, several share a
// millisecond, and the broker's ledger ids are far above 2^19.
func TestEffectivelyOnceReplayIsDeduplicatedAndCounted(t *testing.T) {
	metricsReader()
	dedupBefore := counterSum(t, "meshfed_function_deduplicated", map[string]string{"mesh": "rewind"})
	lookBacksBefore := counterSum(t, "meshfed_function_look_backs", map[string]string{"mesh": "rewind"})
	f := newFederation(t, "a")
	dir := t.TempDir()
	stop := f.startAgent(t, "agent-a", "a", dir)
	in, out := "persistent://public/default/rin", "persistent://public/default/rout"
	f.apply(t, meshObj("rewind", builtinFn("split", "word-split", "a", in, "a", out, "effectively_once")))
	c := pulsarClient(t, f.brokers["a"])
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: in, Name: "src", BatchingMaxPublishDelay: 5 * time.Millisecond, BatchingMaxMessages: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want []string
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			p.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("w%da w%db", i, i))}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
			want = append(want, fmt.Sprintf("w%da", i), fmt.Sprintf("w%db", i))
		}
		if err := p.FlushWithCtx(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	send(0, 100)
	got := drainMessages(t, c, out, 200, 30*time.Second)
	exactlyOnce(t, got, want)
	for _, m := range got {
		if cl := m.Properties()[clusterProperty]; cl != "a" {
			t.Fatalf("output %q has %s=%q, want a", m.Payload(), clusterProperty, cl)
		}
	}
	inputs := drainMessages(t, c, in, 100, 10*time.Second)
	var newest int64
	batched := false
	for _, m := range inputs {
		if m.ID().LedgerID() < 1<<19 {
			t.Fatalf("input ledger id %d: the broker should hand out ledger ids of 2^19 and more", m.ID().LedgerID())
		}
		batched = batched || m.ID().BatchSize() > 1
		newest = max(newest, m.PublishTime().UnixMilli())
	}
	if !batched {
		t.Fatal("no input arrived in a batch: the test does not cover batches")
	}
	// Everything is processed: the watermark is the newest publish time.
	key := watermarkKey(in, false, 0)
	controlplane.WaitFor(t, 10*time.Second, func() error {
		if v, _ := stateValue(f, "rewind", "split", key); v != strconv.FormatInt(newest, 10) {
			return fmt.Errorf("watermark %q = %q, want %d", key, v, newest)
		}
		return nil
	})
	stop()

	sub := "meshfed-public-default-rewind-split"
	if err := testAdmin(t, f.brokers["a"]).Subscriptions().ResetCursorToTimestamp(topicName(t, in), sub, 0); err != nil {
		t.Fatalf("reset %s to the earliest message: %v", sub, err)
	}
	send(100, 50)
	f.startAgent(t, "agent-a", "a", dir)
	got = drainMessages(t, c, out, 300, 30*time.Second)
	exactlyOnce(t, got, want)
	controlplane.WaitFor(t, 10*time.Second, func() error {
		st := instanceStatus(f, "rewind", "split")
		if st.GetDeduplicated() != 200 || st.GetUnproven() != 0 {
			return fmt.Errorf("status deduplicated=%d unproven=%d, want 200 and 0", st.GetDeduplicated(), st.GetUnproven())
		}
		return nil
	})
	if n := counterSum(t, "meshfed_function_deduplicated", map[string]string{"mesh": "rewind"}) - dedupBefore; n != 200 {
		t.Fatalf("meshfed_function_deduplicated{mesh=rewind} grew by %d, want 200", n)
	}
	if n := counterSum(t, "meshfed_function_look_backs", map[string]string{"mesh": "rewind"}) - lookBacksBefore; n < 2 {
		t.Fatalf("meshfed_function_look_backs{mesh=rewind} grew by %d, want one per session at least", n)
	}
}

// An input whose outputs cannot be written (here: the output broker
// refuses its producer, because another client holds the producer's name)
// stops the instance, which restarts until the write succeeds; no later
// input of the same producer is written meanwhile, so when the input is
// redelivered its outputs are not mistaken for duplicates.
func TestEffectivelyOnceInputIsNeverOvertaken(t *testing.T) {
	f := newFederation(t, "a")
	f.startAgentWith(t, "agent-a", "a", t.TempDir(), func(c *Config) { c.ProducerIdleTimeout = 200 * time.Millisecond })
	in, out := "persistent://public/default/oin", "persistent://public/default/oout"
	f.apply(t, meshObj("order", builtinFn("f", "identity", "a", in, "a", out, "effectively_once")))
	c := pulsarClient(t, f.brokers["a"])
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: in, Name: "src", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want []string
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("m%02d", i))}); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("m%02d", i))
		}
	}
	send(0, 10)
	exactlyOnce(t, drainMessages(t, c, out, 10, 30*time.Second), want)

	// Once the instance closed its idle producer, take its name.
	name := eoName("public", "default", "order", "f", eoKey{partition: in, producer: "src", topic: out})
	var holder pulsar.Producer
	controlplane.WaitFor(t, 20*time.Second, func() error {
		holder, err = c.CreateProducer(pulsar.ProducerOptions{Topic: out, Name: name, DisableBatching: true})
		return err
	})
	send(10, 10)
	controlplane.WaitFor(t, 30*time.Second, func() error {
		if st := instanceStatus(f, "order", "f"); !strings.Contains(st.GetLastError(), "create producer "+name) {
			return fmt.Errorf("instance status %v: want a failure to create %s", st, name)
		}
		return nil
	})
	// Restarts continue while the name is held; nothing of m10.. is written.
	if got := drainMessages(t, c, out, 11, 2*time.Second); len(got) != 10 {
		t.Fatalf("%d outputs while the producer was refused, want the 10 of before", len(got))
	}
	holder.Close()
	got := drainMessages(t, c, out, 20, 30*time.Second)
	exactlyOnce(t, got, want)
	for i, m := range got {
		if string(m.Payload()) != want[i] {
			t.Fatalf("output %d is %q, want %q: outputs out of input order", i, m.Payload(), want[i])
		}
	}
}

// An input with more outputs than the sequence id has room for is
// processed at-least-once and counted as unproven, never skipped.
func TestEffectivelyOnceUnprovenInputsAreCounted(t *testing.T) {
	metricsReader()
	unprovenBefore := counterSum(t, "meshfed_function_unproven", map[string]string{"mesh": "unproven", "reason": unprovenOutputs})
	f := newFederation(t, "a")
	f.startAgent(t, "agent-a", "a", t.TempDir())
	in, out := "persistent://public/default/uin", "persistent://public/default/uout"
	f.apply(t, meshObj("unproven", builtinFn("split", "word-split", "a", in, "a", out, "effectively_once")))
	c := pulsarClient(t, f.brokers["a"])
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: in})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var words []string
	for i := 0; i < maxOutputsPerInput+88; i++ {
		words = append(words, fmt.Sprintf("u%d", i))
	}
	if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte(strings.Join(words, " "))}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("v0 v1")}); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, drainMessages(t, c, out, len(words)+2, 30*time.Second), append(words, "v0", "v1"))
	controlplane.WaitFor(t, 10*time.Second, func() error {
		if st := instanceStatus(f, "unproven", "split"); st.GetUnproven() != 1 || st.GetProcessed() != 2 {
			return fmt.Errorf("status unproven=%d processed=%d, want 1 and 2", st.GetUnproven(), st.GetProcessed())
		}
		return nil
	})
	if n := counterSum(t, "meshfed_function_unproven", map[string]string{"mesh": "unproven", "reason": unprovenOutputs}) - unprovenBefore; n != 1 {
		t.Fatalf("meshfed_function_unproven{reason=%s} grew by %d, want 1", unprovenOutputs, n)
	}
}

// A send the broker answers as a duplicate (receipt id -1:-1: the output
// topic already holds the sequence id) is counted, as is one skipped
// because the producer's last sequence id covers it.
func TestDuplicateSendsAreCounted(t *testing.T) {
	b := broker.TestBroker(t, func(c *broker.Config) { c.ClusterName, c.DeduplicationDefault, c.Logger = "a", true, quiet() })
	c := pulsarClient(t, b)
	a := probeAgent(t, b.ServiceURL(), "")
	inst := &instance{a: a, logger: quiet(), asg: &meshfedv1.Assignment{Metadata: &meshfedv1.ObjectMeta{Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.AssignmentSpec{Mesh: "m", Function: "f", Cluster: "a", FunctionSpec: &meshfedv1.FunctionSpec{Output: &meshfedv1.FunctionOutput{Cluster: "a"}}}}}
	prods := newProducerSet(inst, c, c, newRunFailure())
	defer prods.closeAll()
	k := eoKey{partition: "persistent://public/default/in", producer: "src", topic: "persistent://public/default/dup-out"}
	send := func(seq int64) {
		t.Helper()
		done := make(chan error, 1)
		prods.sendEO(context.Background(), k, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint(seq)), SequenceID: &seq}, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatalf("send %d: %v", seq, err)
		}
	}
	send(5)
	send(5) // at or below the producer's last sequence id: not sent
	if got := inst.deduplicated.Load(); got != 1 {
		t.Fatalf("deduplicated = %d after a skip, want 1", got)
	}
	// Forget locally what was written: the broker answers the resend as a
	// duplicate.
	prods.mu.Lock()
	prods.eo[k].last = -1
	prods.mu.Unlock()
	send(5)
	if got := inst.deduplicated.Load(); got != 2 {
		t.Fatalf("deduplicated = %d after a duplicate receipt, want 2", got)
	}
	send(6)
	if got := drainMessages(t, c, k.topic, 2, 10*time.Second); len(got) != 2 {
		t.Fatalf("%d messages on the output topic, want 2", len(got))
	}
}
