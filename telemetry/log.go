package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log formats of --log-format.
const (
	LogJSON = "json"
	LogText = "text"
)

// NewLogger returns a logger writing format ("json" or "text") at level to
// w. A line logged with a context that holds a recording or sampled span
// (logger.InfoContext(ctx, ...)) carries trace_id and span_id.
func NewLogger(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case LogJSON:
		h = slog.NewJSONHandler(w, opts)
	case LogText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("%q: %w", format, ErrLogFormat)
	}
	return slog.New(TraceHandler(h)), nil
}

// TraceHandler wraps h: records handled with a context holding a valid span
// context get trace_id and span_id attributes (W3C hex), so a log line can
// be found from a trace and the other way round.
func TraceHandler(h slog.Handler) slog.Handler { return traceHandler{next: h} }

type traceHandler struct{ next slog.Handler }

func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{next: h.next.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{next: h.next.WithGroup(name)}
}
