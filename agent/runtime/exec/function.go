package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/limits"
)

// function is one exec instance: at most one process, one message in
// flight.
type function struct {
	rt     *Runtime
	path   string   // resolved executable
	args   []string // argv, args[0] as the user wrote it
	dir    string   // working directory; empty: the agent's
	env    []string // KEY=value, sorted
	config []byte   // HELLO config, a JSON object
	limits limits.Limits

	// mu serializes Process and Close and guards the fields below it.
	mu sync.Mutex
	// proc is the running, handshaken process; nil: none (start on the
	// next message).
	proc *process
	// failures counts consecutive failures (crash, bad frame, timeout,
	// failed start); zero: the last process was healthy.
	failures int
	// notBefore is the earliest time the next process may start; zero:
	// any time.
	notBefore time.Time

	// lifeMu guards closed and live, which Close reads without mu.
	lifeMu sync.Mutex
	closed bool
	// live is the process being started or running; nil: none.
	live *process
	// closing is closed by Close, to cut a backoff wait short.
	closing chan struct{}

	// cpuMu guards the CPU time bookkeeping: cpuDone of processes that
	// ended, cpuLast last read of process cpuPid (zero: none yet).
	cpuMu   sync.Mutex
	cpuDone time.Duration
	cpuLast time.Duration
	cpuPid  int
}

var _ runtime.Function = (*function)(nil)

// Process implements runtime.Function. The process starts (or restarts,
// after the backoff) on demand. A crash, a bad frame or a version mismatch
// kill the process and return an error wrapping runtime.ErrFunctionCrashed
// (and ErrProtocol or ErrVersionMismatch); a timeout kills it and returns
// the context's error; a FAIL frame returns a *FunctionError and keeps it.
func (f *function) Process(ctx context.Context, fctx runtime.Context, msg *runtime.Message) ([]runtime.Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isClosed() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		// Not the process's fault: leave it running.
		return nil, fmt.Errorf("exec: message not sent: %w", err)
	}
	p, err := f.ensureLocked(ctx, fctx)
	if err != nil {
		return nil, err
	}
	outs, err := f.exchangeLocked(ctx, fctx, p, msg)
	if err == nil {
		return outs, nil
	}
	var ferr *FunctionError
	if errors.As(err, &ferr) || (errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrProtocol)) {
		// The function is fine: it refused the message, or the message
		// cannot be framed.
		return nil, err
	}
	return nil, f.failLocked(ctx, p, err)
}

// Close implements runtime.Function. An idle process gets StopGrace to exit
// after its stdin closes; a busy one is killed at once. Either way its
// process group is killed and reaped before Close returns.
func (f *function) Close() error {
	f.lifeMu.Lock()
	if f.closed {
		f.lifeMu.Unlock()
		return nil
	}
	f.closed = true
	close(f.closing)
	live := f.live
	f.lifeMu.Unlock()
	if !f.mu.TryLock() {
		if live != nil {
			live.kill()
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.proc != nil {
		f.proc.stop(f.rt.opts.StopGrace)
		f.setProc(nil)
	}
	return nil
}

func (f *function) isClosed() bool {
	f.lifeMu.Lock()
	defer f.lifeMu.Unlock()
	return f.closed
}

// setProc records the running process for Close; with mu held.
func (f *function) setProc(p *process) {
	f.proc = p
	f.lifeMu.Lock()
	f.live = p
	f.lifeMu.Unlock()
}

// ensureLocked returns the running process, starting one (after the
// backoff, if the last one failed) and handshaking with it.
func (f *function) ensureLocked(ctx context.Context, fctx runtime.Context) (*process, error) {
	if f.proc != nil {
		return f.proc, nil
	}
	opts := f.rt.opts
	if wait := f.notBefore.Sub(opts.Now()); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("exec: waiting %v to restart the function: %w", wait.Round(time.Millisecond), ctx.Err())
		case <-f.closing:
			return nil, ErrClosed
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec: start the function: %w", err)
	}
	logger := fctx.Logger()
	if logger == nil {
		logger = f.rt.logger
	}
	group, err := opts.Limits.Prepare(limits.GroupName("exec", os.Getpid(), groupSeq.Add(1)), f.limits)
	if err != nil {
		f.recordFailureLocked(nil)
		return nil, fmt.Errorf("exec: limits: %w: %w", err, runtime.ErrFunctionCrashed)
	}
	p, err := spawn(f.path, f.args, f.dir, f.env, logger, group)
	if err != nil {
		f.recordFailureLocked(nil)
		return nil, fmt.Errorf("exec: %w: %w", err, runtime.ErrFunctionCrashed)
	}
	p.started = opts.Now()
	f.lifeMu.Lock()
	f.live = p
	closed := f.closed
	f.lifeMu.Unlock()
	if closed {
		p.kill()
		p.reap()
		f.setProc(nil)
		return nil, ErrClosed
	}
	hctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := f.handshake(hctx, fctx, p); err != nil {
		return nil, f.failLocked(hctx, p, err)
	}
	f.setProc(p)
	return p, nil
}

// handshake sends HELLO and expects READY with this host's version.
func (f *function) handshake(ctx context.Context, fctx runtime.Context, p *process) error {
	unwatch := p.watch(ctx)
	defer unwatch()
	hello := &helloFrame{
		Version:      ProtocolVersion,
		Tenant:       fctx.Tenant(),
		Namespace:    fctx.Namespace(),
		Mesh:         fctx.Mesh(),
		Function:     fctx.Function(),
		Instance:     uint32(fctx.InstanceIndex()),
		MaxFrameSize: uint32(f.rt.opts.MaxFrameSize),
		Config:       f.config,
	}
	b, err := encodeFrame(hello, f.rt.opts.MaxFrameSize)
	if err != nil {
		return fmt.Errorf("exec: HELLO: %w (shrink the function's config)", err)
	}
	if err := f.send(p, b); err != nil {
		return fmt.Errorf("exec: send HELLO: %w", err)
	}
	fr, err := f.read(p)
	if err != nil {
		return fmt.Errorf("exec: waiting for READY: %w", err)
	}
	ready, ok := fr.(*readyFrame)
	if !ok {
		return fmt.Errorf("exec: %w: got a %s frame where READY was expected", ErrProtocol, frameName(fr.frameType()))
	}
	if ready.Version != ProtocolVersion {
		return fmt.Errorf("exec: %w: the host speaks version %d, the function answered READY with version %d (use a meshfed SDK for protocol %d in the function, or an agent that speaks %d)",
			ErrVersionMismatch, ProtocolVersion, ready.Version, ProtocolVersion, ready.Version)
	}
	return nil
}

// errStdoutClosed and errNoAnswer describe the usual read failures: the
// process ended, or the context (or Close) cut the wait short.
var (
	errStdoutClosed = errors.New("the process closed its stdout")
	errNoAnswer     = errors.New("no answer in time")
)

// read reads and decodes the next frame from the process.
func (f *function) read(p *process) (frame, error) {
	t, body, err := readFrame(p.outBuf, f.rt.opts.MaxFrameSize)
	switch {
	case err == io.EOF:
		return nil, errStdoutClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, errNoAnswer
	case err != nil:
		return nil, err
	}
	return decodeFrame(t, body)
}

// send writes one frame to the process.
func (f *function) send(p *process, b []byte) error {
	err := p.send(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errNoAnswer
	}
	return err
}

// exchangeLocked sends msg and collects the answer: OUTPUTs until DONE or
// FAIL, serving STATE requests on the way.
func (f *function) exchangeLocked(ctx context.Context, fctx runtime.Context, p *process, msg *runtime.Message) ([]runtime.Output, error) {
	id := p.lastID + 1
	mf := &messageFrame{
		ID:           id,
		Topic:        msg.Topic,
		Key:          msg.Key,
		Payload:      msg.Payload,
		Properties:   msg.Properties,
		EventTime:    unixMilli(msg.EventTime),
		PublishTime:  unixMilli(msg.PublishTime),
		ProducerName: msg.ProducerName,
		SequenceID:   msg.SequenceID,
	}
	b, err := encodeFrame(mf, f.rt.opts.MaxFrameSize)
	if err != nil {
		return nil, fmt.Errorf("exec: message: %w", err)
	}
	unwatch := p.watch(ctx)
	defer unwatch()
	p.lastID = id
	if err := f.send(p, b); err != nil {
		return nil, fmt.Errorf("exec: send MESSAGE %d: %w", id, err)
	}
	var outs []runtime.Output
	for {
		fr, err := f.read(p)
		if err != nil {
			return nil, fmt.Errorf("exec: message %d: %w", id, err)
		}
		got, ok := frameMessageID(fr)
		if !ok {
			return nil, fmt.Errorf("exec: message %d: %w: unexpected %s frame while processing", id, ErrProtocol, frameName(fr.frameType()))
		}
		if got != id {
			return nil, fmt.Errorf("exec: message %d: %w: %s frame for message %d", id, ErrProtocol, frameName(fr.frameType()), got)
		}
		switch fr := fr.(type) {
		case *outputFrame:
			if len(outs) == f.rt.opts.MaxOutputs {
				return nil, fmt.Errorf("exec: message %d: %w: more than %d OUTPUT frames", id, ErrProtocol, f.rt.opts.MaxOutputs)
			}
			outs = append(outs, runtime.Output{Topic: fr.Topic, Key: fr.Key, Payload: fr.Payload, Properties: fr.Properties})
		case *doneFrame:
			return outs, nil
		case *failFrame:
			return nil, &FunctionError{MessageID: id, Reason: fr.Error}
		case *stateFrame:
			res := serveState(ctx, fctx, fr)
			rb, err := encodeFrame(res, f.rt.opts.MaxFrameSize)
			if err != nil {
				// Only a value read from state can be this large.
				rb, _ = encodeFrame(&stateResultFrame{Request: fr.Request, Error: err.Error()}, f.rt.opts.MaxFrameSize)
			}
			if err := f.send(p, rb); err != nil {
				return nil, fmt.Errorf("exec: message %d: send STATE_RESULT: %w", id, err)
			}
		}
	}
}

// frameMessageID returns the message a function → host frame is about;
// false for frames not about a message.
func frameMessageID(fr frame) (uint64, bool) {
	switch fr := fr.(type) {
	case *outputFrame:
		return fr.ID, true
	case *doneFrame:
		return fr.ID, true
	case *failFrame:
		return fr.ID, true
	case *stateFrame:
		return fr.ID, true
	}
	return 0, false
}

// serveState runs one state request against the instance's state.
func serveState(ctx context.Context, st runtime.State, req *stateFrame) *stateResultFrame {
	res := &stateResultFrame{Request: req.Request}
	var err error
	switch req.Op {
	case opIncrCounter:
		res.Counter, err = st.IncrCounter(ctx, req.Key, req.Delta)
	case opGetCounter:
		res.Counter, err = st.GetCounter(ctx, req.Key)
	case opPutState:
		var v []byte
		if req.HasValue {
			v = req.Value
			if v == nil {
				v = []byte{}
			}
		}
		err = st.PutState(ctx, req.Key, v)
	case opGetState:
		res.Value, err = st.GetState(ctx, req.Key)
		res.HasValue = res.Value != nil
	default:
		err = fmt.Errorf("unknown state operation %d", req.Op)
	}
	if err != nil {
		return &stateResultFrame{Request: req.Request, Error: err.Error()}
	}
	res.OK = true
	return res
}

// failLocked kills and reaps p after err, schedules the restart, and
// returns the error the caller reports.
func (f *function) failLocked(ctx context.Context, p *process, err error) error {
	p.kill()
	exit := p.reap()
	f.setProc(nil)
	f.recordFailureLocked(p)
	switch {
	case f.isClosed():
		return fmt.Errorf("%w (%v)", ErrClosed, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%w; process killed, it restarts with the next message: %w", err, ctx.Err())
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrVersionMismatch):
		return fmt.Errorf("%w; process killed, it restarts with the next message: %w", err, runtime.ErrFunctionCrashed)
	case p.oomKilled:
		return fmt.Errorf("%w (%s): %w: %w", err, exit, runtime.ErrOutOfMemory, runtime.ErrFunctionCrashed)
	case errors.Is(err, errStdoutClosed):
		return fmt.Errorf("%w (%s): %w", err, exit, runtime.ErrFunctionCrashed)
	default:
		return fmt.Errorf("%w (process %s): %w", err, exit, runtime.ErrFunctionCrashed)
	}
}

// recordFailureLocked schedules the next start after a failure of p (nil:
// the process did not even start).
func (f *function) recordFailureLocked(p *process) {
	now := f.rt.opts.Now()
	if p != nil && now.Sub(p.started) >= f.rt.opts.HealthyAfter {
		f.failures = 0
	}
	f.failures++
	f.notBefore = now.Add(backoff(f.failures, f.rt.opts.MinBackoff, f.rt.opts.MaxBackoff))
	f.rt.logger.Debug("exec function failed", slog.Int("failures", f.failures), slog.Time("restart_after", f.notBefore))
}

// backoff returns the wait before restart number n (n ≥ 1): lo, 2·lo,
// 4·lo, … capped at hi.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
