package wasm

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

const (
	maxLogLine = 4 << 10
	maxTail    = 8 << 10
)

// logWriter turns a module's WASI stdout or stderr into log lines. It is
// only written from calls into the module, which hold function.mu; that
// lock guards its fields.
type logWriter struct {
	f      *function
	level  slog.Level
	stream string
	// line is the unfinished last line.
	line []byte
	// keepTail keeps the output since resetTail (capped at maxTail bytes)
	// for naming a panic; tail is it.
	keepTail bool
	tail     []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.keepTail && len(w.tail) < maxTail {
		w.tail = append(w.tail, p[:min(len(p), maxTail-len(w.tail))]...)
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			if len(w.line) >= maxLogLine {
				w.flush()
			}
			break
		}
		w.line = append(w.line, p[:i]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

// flush logs the unfinished line, if any.
func (w *logWriter) flush() {
	if len(w.line) == 0 {
		return
	}
	w.f.logger().Log(context.Background(), w.level, string(w.line), "stream", w.stream)
	w.line = w.line[:0]
}

func (w *logWriter) resetTail() { w.tail = w.tail[:0] }

// panicLine returns the first "panic: …" or "fatal error: …" line written
// since resetTail, or "".
func (w *logWriter) panicLine() string {
	for line := range strings.SplitSeq(string(w.tail), "\n") {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
