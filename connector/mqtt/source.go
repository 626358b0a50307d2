package mqtt

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/meshfed/meshfed/connector"
)

func init() {
	connector.RegisterSource("mqtt", connector.SourceFactory{
		Open: openSource,
		Validate: func(values map[string]any) error {
			_, err := decodeSource(values)
			return err
		},
	})
	connector.RegisterSink("mqtt", connector.SinkFactory{
		Open: openSink,
		Validate: func(values map[string]any) error {
			_, err := decodeSink(values)
			return err
		},
	})
}

// clientID is the client id of an instance: fixed for its mesh, connector
// and index, so a restart or a move of the instance resumes its MQTT
// session wherever it runs.
func clientID(cfg connector.Config, role string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s/%s/%s", cfg.Tenant, cfg.Namespace, cfg.Mesh, cfg.Name)
	return fmt.Sprintf("meshfed-%s-%d-%08x", role, cfg.Instance, h.Sum32())
}

func clientOptions(c common, id string) *paho.ClientOptions {
	o := paho.NewClientOptions().AddBroker(c.broker).SetClientID(id).
		SetConnectTimeout(c.connectTimeout).SetKeepAlive(c.keepAlive).
		SetAutoReconnect(false).SetConnectRetry(false)
	if c.username != "" {
		o.SetUsername(c.username).SetPassword(c.password)
	}
	return o
}

// source holds the messages received and not yet committed, in arrival
// order; Commit acknowledges them to the broker.
type source struct {
	cfg    sourceConfig
	client paho.Client
	in     chan paho.Message
	lost   chan error

	// mu guards pending and next.
	mu sync.Mutex
	// pending are the messages read and not yet committed; pending[0]
	// has position next-len(pending).
	pending []paho.Message
	next    uint64
}

var _ connector.ConcurrentCommitter = (*source)(nil)

// CommitsConcurrently: Commit and Read share only pending, under mu.
func (s *source) CommitsConcurrently() bool { return true }

// inboxSize bounds the messages received ahead of Read. The broker sends
// at most its max_inflight_messages unacknowledged QoS 1 messages, and the
// source acknowledges only committed ones, so the inbox stays below that.
const inboxSize = 1 << 16

func openSource(ctx context.Context, cfg connector.Config) (connector.Source, error) {
	c, err := decodeSource(cfg.Values)
	if err != nil {
		return nil, err
	}
	if c.clientID == "" {
		c.clientID = clientID(cfg, "src")
	}
	s := &source{cfg: c, in: make(chan paho.Message, inboxSize), lost: make(chan error, 1)}
	filters := make(map[string]byte, len(c.topics))
	for _, t := range c.topics {
		filters[t] = c.qos
	}
	// A persistent session: the broker keeps the subscription and every
	// QoS 1 message not acknowledged while the instance is away. Messages
	// are acknowledged by Commit, never on receipt.
	o := clientOptions(c.common, c.clientID).SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { s.in <- m }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case s.lost <- err:
			default:
			}
		})
	s.client = paho.NewClient(o)
	if err := wait(ctx, s.client.Connect(), c.connectTimeout); err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", c.broker, c.clientID, err)
	}
	if err := wait(ctx, s.client.SubscribeMultiple(filters, nil), c.connectTimeout); err != nil {
		s.client.Disconnect(0)
		return nil, fmt.Errorf("subscribe to %v: %w", c.topics, err)
	}
	cfg.Logger.Info("mqtt source connected", "broker", c.broker, "client_id", c.clientID, "topics", c.topics)
	return s, nil
}

// wait waits for a paho token, ctx or the timeout.
func wait(ctx context.Context, t paho.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("timed out")
	}
}

func (s *source) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	var first paho.Message
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case err := <-s.lost:
		return nil, fmt.Errorf("connection to %s lost: %w", s.cfg.broker, err)
	case first = <-s.in:
	}
	msgs := connector.Drain([]paho.Message{first}, s.in, s.cfg.maxBatch)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]connector.SourceRecord, len(msgs))
	for i, m := range msgs {
		s.pending = append(s.pending, m)
		s.next++
		r := connector.Record{Value: m.Payload(), Properties: map[string]string{TopicProperty: m.Topic()}}
		if s.cfg.key == keyTopic {
			r.Key = m.Topic()
		}
		out[i] = connector.SourceRecord{Record: r, Position: strconv.FormatUint(s.next, 10)}
	}
	return out, nil
}

// Commit acknowledges every message up to position to the broker.
func (s *source) Commit(_ context.Context, position string) error {
	p, err := strconv.ParseUint(position, 10, 64)
	if err != nil {
		return fmt.Errorf("position %q: %w", position, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.next - uint64(len(s.pending)) + 1 // position of pending[0]
	if p < first {
		return nil
	}
	n := min(int(p-first+1), len(s.pending))
	for _, m := range s.pending[:n] {
		m.Ack()
	}
	s.pending = append(s.pending[:0:0], s.pending[n:]...)
	return nil
}

// Close disconnects without acknowledging what was not committed: the
// broker delivers it again to the next session of this client id. It
// waits up to closeQuiesce for the acknowledgements of committed messages
// to leave; any still queued are delivered again (at-least-once).
func (s *source) Close() error {
	// A round trip first: the broker handles a connection's packets in
	// order, so its answer to this UNSUBSCRIBE (of a filter the session
	// does not hold) means it has taken every acknowledgement sent before.
	tok := s.client.Unsubscribe("meshfed/close-barrier/" + s.cfg.clientID)
	tok.WaitTimeout(closeQuiesce * time.Millisecond)
	s.client.Disconnect(closeQuiesce)
	return nil
}

// closeQuiesce is how long Close lets queued acknowledgements go out, in
// ms. Disconnect returns as soon as its DISCONNECT is written, which the
// client writes after every acknowledgement queued before it; the bound
// only matters on a starved machine, where a short one would cut the
// queue and have committed messages delivered again.
const closeQuiesce = 5000
