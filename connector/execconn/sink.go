package execconn

import (
	"context"
	"fmt"

	"github.com/meshfed/meshfed/connector"
)

// sink is a Sink served by a process.
type sink struct{ s *session }

var _ connector.Sink = (*sink)(nil)

func openSink(ctx context.Context, cc connector.Config) (connector.Sink, error) {
	s, err := open(ctx, cc, roleSink)
	if err != nil {
		return nil, err
	}
	return &sink{s: s}, nil
}

// Write sends the batch as WRITE frames and a FLUSH, and returns once the
// process answers OK, which it sends only after the batch is durable.
// After a crash, the next Write starts a new process: the agent retries a
// failed write on the same Sink rather than reopening it.
func (k *sink) Write(ctx context.Context, batch []connector.SinkRecord) error {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	if err := s.restartLocked(ctx); err != nil {
		return err
	}
	req := s.nextLocked()
	out := make([]frame, 0, len(batch)+1)
	for _, r := range batch {
		var et int64
		if !r.EventTime.IsZero() {
			et = r.EventTime.UnixMilli()
		}
		out = append(out, &writeFrame{Request: req, Topic: r.Topic, Key: r.Key, Value: r.Value, Properties: r.Properties,
			EventTime: et, Stream: r.Stream, Sequence: r.Sequence})
	}
	out = append(out, &flushFrame{Request: req, Count: uint32(len(batch))})
	return s.exchangeLocked(ctx, "write", out, func(f frame) (bool, error) {
		if handled, err := answer("write", req, f); handled {
			return err == nil, err
		}
		return false, fmt.Errorf("%w: %s frame while FLUSH %d is in flight", ErrProtocol, frameName(frameType(f)), req)
	})
}

// Close ends the process.
func (k *sink) Close() error { return k.s.close() }
