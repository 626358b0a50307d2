package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
)

// The broker probe behind the heartbeat's BrokerReachable: a broker counts
// as reachable only when it answers a request that goes through it, never
// on a bare TCP connect — a broker that accepts connections but does not
// answer is unreachable.
const (
	// probeTimeout bounds one probe.
	probeTimeout = 2 * time.Second
	// probeFailuresDown consecutive failed probes report the broker
	// unreachable (one slow answer on a busy machine does not move work).
	probeFailuresDown = 2
	// probeTopic is looked up when no instance of the agent reads a topic
	// of its own cluster.
	probeTopic = "persistent://public/default/meshfed-probe"
)

// brokerProbe checks the agent's own broker.
type brokerProbe struct {
	a *Agent
	// timeout bounds one probe: probeTimeout (tests shorten it).
	timeout time.Duration

	// mu guards failures and topics.
	mu sync.Mutex
	// failures counts consecutive failed probes.
	failures int
	// topics are input topics of the agent's cluster read by its
	// instances, by instance key: a lookup of one of them is the binary
	// probe.
	topics map[string]string
}

func newBrokerProbe(a *Agent) *brokerProbe {
	return &brokerProbe{a: a, timeout: probeTimeout, topics: map[string]string{}}
}

// useTopic records (or, with topic "", forgets) an instance's input topic.
func (b *brokerProbe) useTopic(key, topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if topic == "" {
		delete(b.topics, key)
	} else {
		b.topics[key] = topic
	}
}

// check probes once and reports whether the broker counts as reachable.
func (b *brokerProbe) check(ctx context.Context) bool {
	err := b.probe(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		if b.failures >= probeFailuresDown {
			b.a.logger.Info("broker reachable again")
		}
		b.failures = 0
		return true
	}
	b.failures++
	if b.failures == probeFailuresDown {
		b.a.logger.Warn("broker unreachable", "err", err)
	} else {
		b.a.logger.Debug("broker probe failed", "err", err, "consecutive", b.failures)
	}
	return b.failures < probeFailuresDown
}

// probe is one round trip through the broker: Pulsar's broker health check
// (GET /admin/v2/brokers/health: a produce and consume on a heartbeat
// topic inside the broker) when the cluster has an admin URL; without
// one, or when the admin API has no such endpoint or refuses the call, a
// partitioned-metadata lookup over the binary protocol.
func (b *brokerProbe) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	adm, err := b.a.pulsar.admin(b.a.cfg.Cluster)
	if err == nil {
		err = adm.Brokers().HealthCheckWithTopicVersionWithContext(ctx, utils.TopicVersionV2)
		var re rest.Error
		if err == nil || !errors.As(err, &re) || (re.Code != 404 && re.Code != 405 && re.Code != 401 && re.Code != 403) {
			if err != nil {
				return fmt.Errorf("broker health check: %w", err)
			}
			return nil
		}
	}
	return b.lookup(ctx)
}

// lookup connects to the broker afresh and asks it for the partitions of
// a topic over the binary protocol.
func (b *brokerProbe) lookup(ctx context.Context) error {
	u, err := b.a.pulsar.serviceURL(b.a.cfg.Cluster)
	if err != nil {
		return err
	}
	b.mu.Lock()
	topic := probeTopic
	for _, t := range b.topics {
		topic = t
		break
	}
	b.mu.Unlock()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: u, ConnectionTimeout: b.timeout, OperationTimeout: b.timeout,
		Logger: plog.NewLoggerWithSlog(slog.New(minLevel{b.a.logger.Handler(), slog.LevelError}))})
	if err != nil {
		return fmt.Errorf("probe client for %s: %w", u, err)
	}
	defer c.Close()
	res := make(chan error, 1)
	go func() {
		_, err := c.TopicPartitions(topic)
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("look up %s on %s: %w", topic, u, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("look up %s on %s: no answer within %s", topic, u, b.timeout)
	}
}
