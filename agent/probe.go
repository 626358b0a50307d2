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
	"github.com/meshfed/meshfed/agent/pulsarauth"
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

	// mu guards failures, topics, client, clientKey and seen.
	mu sync.Mutex
	// failures counts consecutive failed probes.
	failures int
	// topics are input topics of the agent's cluster read by its
	// instances, by instance key: a lookup of one of them is the binary
	// probe.
	topics map[string]string
	// client is the lookup probe's Pulsar client for clientKey (service
	// URL and spec.auth), kept while its lookups succeed — so an OAuth2
	// credential fetches a token once, not at every probe — and closed
	// after a failed one, so the next probe connects and authenticates
	// afresh. Nil: none yet.
	client    pulsar.Client
	clientKey string
	// seen catches the refusals client logs (a refused handshake is
	// only in its log).
	seen *refusalSeen
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
// A broker that refuses the agent's credential answered: it is reachable,
// and the refusal is recorded (the cluster goes Degraded, not Down).
func (b *brokerProbe) check(ctx context.Context) bool {
	err := b.probe(ctx)
	cluster := b.a.cfg.Cluster
	if kind, ok := refusalKind(err); ok {
		cred := "the agent's credential"
		if creds, _, cerr := b.a.pulsar.credentials(cluster); cerr == nil {
			cred = creds.Describe()
		}
		b.a.refusals.set(cluster, sourceProbe, describeRefusal(cred, kind, cluster, err))
		err = nil
	} else if err == nil {
		b.a.refusals.clear(cluster, sourceProbe)
	}
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
//
// Before either, the credential is checked on the agent's host
// (pulsarauth.Credentials.Check: files readable, a JWT not expired); an
// answer 401 to the health check is a refused credential, as is a
// handshake or lookup the broker refused.
func (b *brokerProbe) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	creds, authKey, err := b.a.pulsar.credentials(b.a.cfg.Cluster)
	if err != nil {
		return err
	}
	if err := creds.Check(b.a.cfg.Now()); err != nil {
		return err
	}
	adm, err := b.a.pulsar.admin(b.a.cfg.Cluster)
	if err == nil {
		err = adm.Brokers().HealthCheckWithTopicVersionWithContext(ctx, utils.TopicVersionV2)
		var re rest.Error
		if err == nil || !errors.As(err, &re) || (re.Code != 404 && re.Code != 405 && re.Code != 403) {
			if err != nil {
				return fmt.Errorf("broker health check: %w", err)
			}
			return nil
		}
	}
	return b.lookup(ctx, creds, authKey)
}

// lookup asks the broker for the partitions of a topic over the binary
// protocol, on a connection kept while lookups succeed and made afresh
// (with a new handshake) after one failed.
func (b *brokerProbe) lookup(ctx context.Context, creds *pulsarauth.Credentials, authKey string) error {
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
	c, seen, err := b.lookupClient(u, authKey, creds)
	if err != nil {
		return err
	}
	res := make(chan error, 1)
	go func() {
		_, err := c.TopicPartitions(topic)
		res <- err
	}()
	var lerr error
	select {
	case err := <-res:
		if err == nil {
			return nil
		}
		lerr = fmt.Errorf("look up %s on %s: %w", topic, u, err)
		if r := seen.get(); r != nil {
			lerr = fmt.Errorf("look up %s on %s: %w", topic, u, r)
		}
	case <-ctx.Done():
		lerr = fmt.Errorf("look up %s on %s: no answer within %s", topic, u, b.timeout)
		if r := seen.get(); r != nil {
			lerr = fmt.Errorf("look up %s on %s: %w", topic, u, r)
		}
	}
	b.closeClient()
	return lerr
}

// lookupClient returns the lookup probe's client for the URL and
// credentials, creating it when there is none or they changed.
func (b *brokerProbe) lookupClient(u, authKey string, creds *pulsarauth.Credentials) (pulsar.Client, *refusalSeen, error) {
	key := u + "\x00" + authKey
	b.mu.Lock()
	if b.client != nil && b.clientKey == key {
		c, seen := b.client, b.seen
		b.mu.Unlock()
		seen.reset()
		return c, seen, nil
	}
	b.mu.Unlock()
	b.closeClient()
	opts, err := creds.ClientOptions(u)
	if err != nil {
		return nil, nil, err
	}
	// The handshake's refusal is only in the client's log: catch it.
	seen := &refusalSeen{}
	opts.ConnectionTimeout, opts.OperationTimeout = b.timeout, b.timeout
	opts.Logger = plog.NewLoggerWithSlog(slog.New(&refusalWatch{next: b.a.logger.Handler(), min: slog.LevelError,
		onRefer: seen.set, onOK: func(string) {}}))
	c, err := pulsar.NewClient(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("probe client for %s: %w", u, err)
	}
	b.mu.Lock()
	b.client, b.clientKey, b.seen = c, key, seen
	b.mu.Unlock()
	return c, seen, nil
}

// closeClient closes the lookup probe's client, if any.
func (b *brokerProbe) closeClient() {
	b.mu.Lock()
	c := b.client
	b.client, b.clientKey, b.seen = nil, "", nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// refusalSeen keeps the first refusal a probe client logged.
type refusalSeen struct {
	// mu guards err.
	mu  sync.Mutex
	err *refusedError
}

func (s *refusalSeen) set(_ string, kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = &refusedError{kind: kind, err: err}
	}
}

func (s *refusalSeen) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = nil
}

func (s *refusalSeen) get() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return nil
	}
	return s.err
}
