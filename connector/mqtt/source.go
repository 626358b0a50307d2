package mqtt

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/meshfed/meshfed/connector"
)

func init() {
	connector.RegisterSource("mqtt", connector.SourceFactory{
		Open:     openSource,
		Validate: connector.Validator(decodeSource),
	})
	connector.RegisterSink("mqtt", connector.SinkFactory{
		Open:     openSink,
		Validate: connector.Validator(decodeSink),
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

// source reads its own MQTT session (session.go) and holds the messages
// read and not yet committed, in arrival order; Commit acknowledges them
// to the broker.
type source struct {
	cfg  sourceConfig
	sess *session

	// commitMu makes Commits one at a time, so acknowledgements leave in
	// the order the messages arrived, as MQTT requires.
	commitMu sync.Mutex
	// mu guards pending and props.
	mu sync.Mutex
	// pending are the messages read and not yet committed.
	pending connector.Pending[inbound]
	// props is the properties map of the last topic read: records of one
	// topic share it (the agent copies what it writes).
	props map[string]string
}

var _ connector.ConcurrentCommitter = (*source)(nil)

// CommitsConcurrently: Commit and Read share only pending, under mu.
func (s *source) CommitsConcurrently() bool { return true }

func openSource(ctx context.Context, cfg connector.Config) (connector.Source, error) {
	c, err := decodeSource(cfg.Values)
	if err != nil {
		return nil, err
	}
	if c.clientID == "" {
		c.clientID = clientID(cfg, "src")
	}
	// A persistent session: the broker keeps the subscription and every
	// QoS 1 message not acknowledged while the instance is away. Messages
	// are acknowledged by Commit, never on receipt.
	sess, err := dialSession(ctx, c.common, c.clientID, c.topics, c.qos)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s and subscribe to %v: %w", c.broker, c.clientID, c.topics, err)
	}
	cfg.Logger.Info("mqtt source connected", "broker", c.broker, "client_id", c.clientID, "topics", c.topics)
	return &source{cfg: c, sess: sess}, nil
}

func (s *source) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	msgs, err := s.sess.take(ctx, s.cfg.maxBatch)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("connection to %s lost: %w", s.cfg.broker, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]connector.SourceRecord, len(msgs))
	for i, m := range msgs {
		if s.props[TopicProperty] != m.topic {
			s.props = map[string]string{TopicProperty: m.topic}
		}
		r := connector.Record{Value: m.payload, Properties: s.props}
		if s.cfg.key == keyTopic {
			r.Key = m.topic
		}
		out[i] = connector.SourceRecord{Record: r, Position: s.pending.Add(m)}
	}
	return out, nil
}

// Commit acknowledges every message up to position to the broker, in one
// write.
func (s *source) Commit(_ context.Context, position string) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	done, err := s.pending.Take(position)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.sess.ack(done); err != nil {
		return fmt.Errorf("acknowledge to %s: %w", s.cfg.broker, err)
	}
	return nil
}

// Close disconnects without acknowledging what was not committed: the
// broker delivers it again to the next session of this client id. It
// waits up to closeQuiesce for the broker to take the acknowledgements of
// committed messages; any it has not taken are delivered again
// (at-least-once).
func (s *source) Close() error {
	s.sess.close(closeQuiesce)
	return nil
}

// closeQuiesce bounds how long Close waits for the broker to answer its
// barrier; it only matters on a starved machine, where a short one would
// have committed messages delivered again.
const closeQuiesce = 5 * time.Second
