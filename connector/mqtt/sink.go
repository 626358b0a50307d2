package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/meshfed/meshfed/connector"
)

// sink publishes records to an MQTT broker.
type sink struct {
	cfg    sinkConfig
	client paho.Client
}

var _ connector.Sink = (*sink)(nil)

func openSink(ctx context.Context, cfg connector.Config) (connector.Sink, error) {
	c, err := decodeSink(cfg.Values)
	if err != nil {
		return nil, err
	}
	if c.clientID == "" {
		c.clientID = clientID(cfg, "sink")
	}
	s := &sink{cfg: c}
	s.client = paho.NewClient(clientOptions(c.common, c.clientID).SetCleanSession(true).SetAutoReconnect(true))
	if err := wait(ctx, s.client.Connect(), c.connectTimeout); err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", c.broker, c.clientID, err)
	}
	return s, nil
}

// Write publishes the batch and returns once the broker acknowledged every
// message (at QoS 1 and 2; at QoS 0 once they are written to the socket).
func (s *sink) Write(ctx context.Context, batch []connector.SinkRecord) error {
	tokens := make([]paho.Token, len(batch))
	for i, r := range batch {
		topic := s.cfg.topic
		if s.cfg.topicFromKey && r.Key != "" {
			topic = r.Key
		}
		tokens[i] = s.client.Publish(topic, s.cfg.qos, s.cfg.retain, r.Value)
	}
	for i, t := range tokens {
		if err := wait(ctx, t, s.cfg.timeout); err != nil {
			return fmt.Errorf("publish record %d of %d: %w", i+1, len(batch), err)
		}
	}
	return nil
}

func (s *sink) Close() error {
	s.client.Disconnect(250)
	return nil
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
