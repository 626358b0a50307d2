package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/meshfed/meshfed/broker"
)

// replBenchResult is one run of the replication benchmark.
type replBenchResult struct {
	// localRate is the produce rate to a topic that is not replicated;
	// replProduceRate the produce rate to a replicated one, and replRate
	// the rate at which that stream reached c (messages / time from the
	// first send until c stored the last). catchupRate is the rate of
	// replicating a backlog built while c was unreachable.
	localRate, replProduceRate, replRate, catchupRate float64
	// lag* are publish-on-a to receive-on-c latencies (ms) under a steady
	// rate, localLag* the publish-to-receive latencies on a in the same run.
	lagP50, lagP99, lagMax, localLagP50, localLagP99 float64
	lagMessages                                      int
	sentRate                                         float64
}

// benchReplication runs two brokers in-process, a and c, replicating a
// namespace from a to c, and measures replication throughput and lag with
// pulsar-client-go over loopback.
func benchReplication(ctx context.Context, dir string, n, size, rate int, dur time.Duration) (replBenchResult, error) {
	var r replBenchResult
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(name string) (*broker.Broker, error) {
		b, err := broker.New(broker.Config{DataDir: filepath.Join(dir, name), ListenAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			ClusterName: name, Logger: quiet})
		if err != nil {
			return nil, err
		}
		return b, b.Start()
	}
	a, err := start("a")
	if err != nil {
		return r, fmt.Errorf("start broker a: %w", err)
	}
	defer a.Close()
	c, err := start("c")
	if err != nil {
		return r, fmt.Errorf("start broker c: %w", err)
	}
	defer c.Close()
	adminA, err := configureBenchGeo(a, c)
	if err != nil {
		return r, err
	}
	if _, err := configureBenchGeo(c, a); err != nil {
		return r, err
	}
	ca, err := pulsar.NewClient(pulsar.ClientOptions{URL: a.ServiceURL(), Logger: quietPulsarLogger()})
	if err != nil {
		return r, err
	}
	defer ca.Close()
	cc, err := pulsar.NewClient(pulsar.ClientOptions{URL: c.ServiceURL(), Logger: quietPulsarLogger()})
	if err != nil {
		return r, err
	}
	defer cc.Close()

	payload := make([]byte, size)

	// Local produce throughput, the yardstick.
	el, err := produceBurst(ctx, ca, "persistent://bench/local/t", n, size)
	if err != nil {
		return r, err
	}
	r.localRate = float64(n) / el.Seconds()

	// The same burst to a replicated topic: how fast it reaches c.
	geo := "persistent://bench/geo/t"
	t0 := time.Now()
	el, err = produceBurst(ctx, ca, geo, n, size)
	if err != nil {
		return r, err
	}
	r.replProduceRate = float64(n) / el.Seconds()
	if err := waitStored(ctx, c, geo, int64(n)); err != nil {
		return r, err
	}
	r.replRate = float64(n) / time.Since(t0).Seconds()

	// Catch-up: c unreachable while a stores another burst, then back.
	cdata := utils.ClusterData{Name: "c", ServiceURL: c.AdminURL(), BrokerServiceURL: c.ServiceURL()}
	dead := cdata
	dead.BrokerServiceURL = "pulsar://127.0.0.1:1"
	if err := adminA.Clusters().Update(dead); err != nil {
		return r, err
	}
	if _, err := produceBurst(ctx, ca, geo, n, size); err != nil {
		return r, err
	}
	t0 = time.Now()
	if err := adminA.Clusters().Update(cdata); err != nil {
		return r, err
	}
	if err := waitStored(ctx, c, geo, int64(2*n)); err != nil {
		return r, err
	}
	r.catchupRate = float64(n) / time.Since(t0).Seconds()

	// Lag under a steady rate.
	lags, local, sentRate, err := steadyLag(ctx, ca, cc, "persistent://bench/geo/lag", rate, dur, payload)
	if err != nil {
		return r, err
	}
	r.lagMessages, r.sentRate = len(lags), sentRate
	r.localLagP50, r.localLagP99 = percentile(local, 0.50), percentile(local, 0.99)
	r.lagP50, r.lagP99, r.lagMax = percentile(lags, 0.50), percentile(lags, 0.99), percentile(lags, 1)
	return r, nil
}

// configureBenchGeo makes self know other, allows both for tenant bench and
// creates bench/local (not replicated) and bench/geo (replicated to both).
func configureBenchGeo(self, other *broker.Broker) (pulsaradmin.Client, error) {
	admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: self.AdminURL()})
	if err != nil {
		return nil, err
	}
	clusters := []string{self.ClusterName(), other.ClusterName()}
	steps := []func() error{
		func() error {
			return admin.Clusters().Create(utils.ClusterData{Name: other.ClusterName(), ServiceURL: other.AdminURL(),
				BrokerServiceURL: other.ServiceURL()})
		},
		func() error {
			return admin.Tenants().Create(utils.TenantData{Name: "bench", AllowedClusters: clusters})
		},
		func() error { return admin.Namespaces().CreateNamespace("bench/local") },
		func() error { return admin.Namespaces().CreateNamespace("bench/geo") },
		func() error { return admin.Namespaces().SetNamespaceReplicationClusters("bench/geo", clusters) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("configure replication on %s: %w", self.ClusterName(), err)
		}
	}
	return admin, nil
}

// produceBurst sends n messages of size bytes asynchronously (batching
// on) and returns the time until the last receipt.
func produceBurst(ctx context.Context, client pulsar.Client, topic string, n, size int) (time.Duration, error) {
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: time.Millisecond,
		BatchingMaxMessages: 1000, MaxPendingMessages: 2000})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	_, el, err := sendAll(ctx, p, n, size)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", topic, err)
	}
	return time.Duration(el * float64(time.Second)), nil
}

// waitStored polls until broker b stored at least want messages in topic.
func waitStored(ctx context.Context, b *broker.Broker, topic string, want int64) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if st, err := b.Stats(topic); err == nil && st.MsgInCounter >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d messages not replicated within 5 minutes", topic, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// steadyLag publishes to topic on a at rate messages per second for dur,
// each carrying its send time, and returns the publish-to-receive latency
// of every message on c and on a, and the rate actually sent.
func steadyLag(ctx context.Context, ca, cc pulsar.Client, topic string, rate int, dur time.Duration, payload []byte) (onC, onA []time.Duration, sent float64, err error) {
	total := int(float64(rate) * dur.Seconds())
	receive := func(client pulsar.Client) (<-chan []time.Duration, error) {
		cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "lag",
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, ReceiverQueueSize: 5000})
		if err != nil {
			return nil, err
		}
		out := make(chan []time.Duration, 1)
		go func() {
			defer cons.Close()
			lags := make([]time.Duration, 0, total)
			for len(lags) < total {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				m, err := cons.Receive(rctx)
				cancel()
				if err != nil {
					break
				}
				if ns, err := strconv.ParseInt(m.Properties()["sent"], 10, 64); err == nil {
					lags = append(lags, time.Since(time.Unix(0, ns)))
				}
				cons.Ack(m)
			}
			out <- lags
		}()
		return out, nil
	}
	onCch, err := receive(cc)
	if err != nil {
		return nil, nil, 0, err
	}
	onAch, err := receive(ca)
	if err != nil {
		return nil, nil, 0, err
	}
	p, err := ca.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: time.Millisecond,
		MaxPendingMessages: 5000})
	if err != nil {
		return nil, nil, 0, err
	}
	defer p.Close()
	start := time.Now()
	for i := 0; i < total; i++ {
		if due := start.Add(time.Duration(i) * time.Second / time.Duration(rate)); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload,
			Properties: map[string]string{"sent": strconv.FormatInt(time.Now().UnixNano(), 10)}}, nil)
	}
	if err := p.Flush(); err != nil {
		return nil, nil, 0, err
	}
	sent = float64(total) / time.Since(start).Seconds()
	onC, onA = <-onCch, <-onAch
	if len(onC) < total {
		return nil, nil, 0, fmt.Errorf("only %d of %d messages reached c", len(onC), total)
	}
	return onC, onA, sent, nil
}
