package execconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/meshfed/meshfed/agent/runtime/exec"
	"github.com/meshfed/meshfed/connector"
)

// session is one connector process after its handshake. Calls are
// serialized by mu (the agent drives a connector stop-and-wait); kill may
// run at any time.
type session struct {
	cfg    config
	cc     connector.Config
	role   byte
	logger *slog.Logger

	mu sync.Mutex
	// child is the running process; nil after a crash or Close (guarded
	// by mu). broken is the error that ended it.
	child  *exec.Child
	broken error
	// running is child, readable without mu so that close can kill a
	// process a call is blocked on.
	running atomic.Pointer[exec.Child]
	// closed is set by close (guarded by mu).
	closed bool
	// request numbers this process's requests from 1 (guarded by mu).
	request uint64
}

// open decodes the config and starts the first process.
func open(ctx context.Context, cc connector.Config, role byte) (*session, error) {
	cfg, err := decodeConfig(cc.Values)
	if err != nil {
		return nil, err
	}
	if cc.Logger == nil {
		cc.Logger = slog.New(slog.DiscardHandler)
	}
	s := &session{cfg: cfg, cc: cc, role: role, logger: cc.Logger}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// startLocked starts a process and exchanges OPEN and READY.
func (s *session) startLocked(ctx context.Context) error {
	path, err := exec.ResolveCommand(s.cfg.command[0], s.cfg.dir)
	if err != nil {
		return fmt.Errorf("command %q: %w", s.cfg.command[0], err)
	}
	child, err := exec.StartChild(path, s.cfg.command, s.cfg.dir, s.cfg.environ(), s.logger)
	if err != nil {
		return err
	}
	s.child, s.broken, s.request = child, nil, 0
	s.running.Store(child)
	cc := s.cc
	hello := &openFrame{Version: exec.ProtocolVersion, Role: s.role, Tenant: cc.Tenant, Namespace: cc.Namespace,
		Mesh: cc.Mesh, Name: cc.Name, Instance: uint32(cc.Instance), MaxFrameSize: exec.DefaultMaxFrameSize,
		EffectivelyOnce: cc.EffectivelyOnce, Config: s.cfg.processConfig}
	hctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	return s.exchangeLocked(hctx, "open", []frame{hello}, func(f frame) (bool, error) {
		r, ok := f.(*readyFrame)
		if !ok {
			return false, fmt.Errorf("%w: %s frame before READY", ErrProtocol, frameName(frameType(f)))
		}
		if r.Version != exec.ProtocolVersion {
			return false, fmt.Errorf("%w: %w: the host speaks version %d, the connector answered READY with version %d",
				ErrProtocol, exec.ErrVersionMismatch, exec.ProtocolVersion, r.Version)
		}
		return true, nil
	})
}

// restartLocked starts a new process when the last one crashed; the agent
// retries a failed sink write on the same Sink, after its own backoff.
func (s *session) restartLocked(ctx context.Context) error {
	if s.child != nil || s.closed {
		return nil
	}
	s.logger.Info("restarting the connector process", "after", s.broken)
	return s.startLocked(ctx)
}

// exchangeLocked sends frames, then hands each frame the process answers
// to handle until handle says done. A ConnectorError from handle leaves
// the process running; any other failure kills it and makes the session
// broken.
func (s *session) exchangeLocked(ctx context.Context, op string, out []frame, handle func(frame) (done bool, err error)) error {
	if s.child == nil {
		if s.broken != nil {
			return s.broken
		}
		return ErrClosed
	}
	unwatch := s.child.Watch(ctx)
	defer unwatch()
	// Encode everything first: a frame over the limit fails the call
	// before anything is sent, and the process is fine. One write per
	// call saves a system call per record of a sink batch.
	var buf []byte
	for _, f := range out {
		b, err := encode(f, exec.DefaultMaxFrameSize)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		buf = append(buf, b...)
	}
	if err := s.child.Send(buf); err != nil {
		return s.crashLocked(ctx, op, fmt.Errorf("write to the process: %w", err))
	}
	for {
		t, body, err := s.child.ReadFrame(exec.DefaultMaxFrameSize)
		if err != nil {
			return s.crashLocked(ctx, op, fmt.Errorf("read from the process: %w", err))
		}
		f, err := decode(t, body)
		if err != nil {
			return s.crashLocked(ctx, op, err)
		}
		done, err := handle(f)
		var ce *ConnectorError
		switch {
		case errors.As(err, &ce):
			return err
		case err != nil:
			return s.crashLocked(ctx, op, err)
		case done:
			return nil
		}
	}
}

// crashLocked kills and reaps the process and records why it ended.
func (s *session) crashLocked(ctx context.Context, op string, cause error) error {
	s.child.Kill()
	exit := s.child.Reap()
	s.child = nil
	s.running.Store(nil)
	if ctx.Err() != nil {
		cause = fmt.Errorf("%w (%v)", ctx.Err(), cause)
	}
	s.broken = fmt.Errorf("%s: %w: %w; process %s", op, ErrCrashed, cause, exit)
	return s.broken
}

// nextLocked returns the next request number.
func (s *session) nextLocked() uint64 {
	s.request++
	return s.request
}

// answer checks that a connector's OK or ERROR answers request; other
// frames are the caller's.
func answer(op string, request uint64, f frame) (handled bool, err error) {
	switch f := f.(type) {
	case *okFrame:
		if f.Request != request {
			return true, fmt.Errorf("%w: OK for request %d while %d is in flight", ErrProtocol, f.Request, request)
		}
		return true, nil
	case *errorFrame:
		if f.Request != request {
			return true, fmt.Errorf("%w: ERROR for request %d while %d is in flight", ErrProtocol, f.Request, request)
		}
		return true, &ConnectorError{Op: op, Reason: f.Error}
	}
	return false, nil
}

// close ends the process: gracefully when no call is in flight, by
// SIGKILL when one is.
func (s *session) close() error {
	if !s.mu.TryLock() {
		// A call is in flight: kill the process so that it returns.
		if c := s.running.Load(); c != nil {
			c.Kill()
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if s.child != nil {
		s.child.Stop(s.cfg.stopGrace)
		s.child = nil
		s.running.Store(nil)
	}
	s.closed = true
	s.broken = ErrClosed
	return nil
}
