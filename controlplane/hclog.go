package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogAdapter routes hashicorp/raft's hclog output into slog.
func newHCLogAdapter(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Info,
		Output: slogWriter{l},
	})
}

// slogWriter forwards each hclog line to slog at the line's own level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := slog.LevelInfo
	switch {
	case strings.Contains(msg, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(msg, "[WARN]"):
		level = slog.LevelWarn
	case strings.Contains(msg, "[DEBUG]"), strings.Contains(msg, "[TRACE]"):
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}

var _ io.Writer = slogWriter{}
