package agent

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/apache/pulsar-client-go/pulsar"
)

// topicLogHandler writes a function's log records to the agent's log and,
// as JSON lines, to the function's logTopic (best effort: a log record never
// blocks or fails message processing).
type topicLogHandler struct {
	next  slog.Handler
	prods *producerSet
	topic string
	attrs []slog.Attr
}

func newTopicLogHandler(next slog.Handler, prods *producerSet, topic string) *topicLogHandler {
	return &topicLogHandler{next: next, prods: prods, topic: topic}
}

func (h *topicLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *topicLogHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	j := slog.NewJSONHandler(&buf, nil).WithAttrs(h.attrs)
	if err := j.Handle(ctx, r); err == nil {
		h.prods.send(ctx, h.topic, &pulsar.ProducerMessage{Payload: bytes.TrimRight(buf.Bytes(), "\n")}, func(error) {})
	}
	return h.next.Handle(ctx, r)
}

func (h *topicLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &topicLogHandler{next: h.next.WithAttrs(attrs), prods: h.prods, topic: h.topic, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *topicLogHandler) WithGroup(name string) slog.Handler {
	return &topicLogHandler{next: h.next.WithGroup(name), prods: h.prods, topic: h.topic, attrs: h.attrs}
}
