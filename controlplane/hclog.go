package controlplane

import (
	"context"
	"io"
	"log/slog"

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

// slogWriter forwards each hclog line to slog at info level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.l.Log(context.Background(), slog.LevelInfo, msg)
	return len(p), nil
}

var _ io.Writer = slogWriter{}
