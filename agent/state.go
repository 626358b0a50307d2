package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fnState is a function's key/value state as one instance sees it. It lives
// in the control plane (replicated by Raft, so it survives restarts and
// follows the function to any agent and cluster). The instance reads the
// whole state into a cache when it starts (prefetch) and buffers changes;
// flush commits them, merged per key, in one Raft write before the inputs
// that caused them are acknowledged, so an acknowledged message's state
// change is never lost. Counters are exact while one instance writes a key
// (Failover or Key_Shared subscriptions).
//
// A strict state (effectively_once) commits a change only with the input
// that made it: a change of an input that is not acknowledged in the same
// flush stays buffered. The commit also records, per input partition and
// producer, the newest input it covers (applied records); an input
// redelivered at or below its record — the commit was applied, the
// acknowledgement lost — changes nothing, so no change applies twice.
// After a failed commit a strict state refuses every call until the run
// ends: its cache no longer matches the control plane, and nothing may be
// written from it.
type fnState struct {
	a     *Agent
	scope *meshfedv1.StateScope
	// writer identifies this instance's commits (assignment, epoch and a
	// start nonce); seq numbers them, so a retried commit applies once.
	writer string
	seq    uint64
	strict bool

	// mu guards counters, values, present, pending, input, failure and
	// fenced.
	mu       sync.Mutex
	counters map[string]int64
	values   map[string][]byte
	// present marks keys read or written (a nil value means absent).
	present map[string]bool
	// complete: the cache holds every key the scope had when prefetch
	// read it, so a key not present is absent and needs no read.
	complete bool
	pending  []pendingOp
	// input is the input being processed, whose changes are tagged with
	// it; nil between inputs.
	input *ticket
	// failure is the first state call that failed for want of the control
	// plane since takeFailure; nil: none. The function may swallow the
	// error, so the instance asks here.
	failure error
	// fenced is the failed commit that fenced a strict state; nil: none.
	fenced error
}

// pendingOp is a buffered change and the input that made it (nil: none).
type pendingOp struct {
	op    *meshfedv1.StateOp
	input *ticket
}

func newFnState(a *Agent, scope *meshfedv1.StateScope, writer string, strict bool) *fnState {
	return &fnState{a: a, scope: scope, writer: writer, strict: strict, counters: map[string]int64{}, values: map[string][]byte{}, present: map[string]bool{}}
}

// setInput tags the changes made from now on with t (nil: untagged).
func (s *fnState) setInput(t *ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.input = t
}

// checkFencedLocked fails a call on a fenced state.
func (s *fnState) checkFencedLocked() error {
	if s.fenced == nil {
		return nil
	}
	err := fmt.Errorf("%w: an earlier commit failed (%w)", errStateUnavailable, s.fenced)
	if s.failure == nil {
		s.failure = err
	}
	return err
}

// loadLocked reads a key from the control plane into the cache.
func (s *fnState) loadLocked(ctx context.Context, key string) error {
	if err := s.checkFencedLocked(); err != nil {
		return err
	}
	if s.present[key] {
		return nil
	}
	if s.complete {
		s.present[key] = true
		return nil
	}
	var resp *meshfedv1.GetStateResponse
	err := s.a.cp.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = meshfedv1.NewAgentServiceClient(conn).GetState(ctx, &meshfedv1.GetStateRequest{Scope: s.scope, Keys: []string{key}})
		return err
	})
	if err != nil {
		err = fmt.Errorf("read state %q: %w: %w", key, errStateUnavailable, err)
		if s.failure == nil {
			s.failure = err
		}
		return err
	}
	for _, v := range resp.GetValues() {
		if v.GetKey() == "" {
			v.Key = key
		}
		s.cacheLocked(v)
	}
	s.present[key] = true
	return nil
}

// stateCacheKeys bounds the keys prefetch caches: a state with more is read
// key by key as the function asks for the rest.
const stateCacheKeys = 100000

// prefetchTimeout bounds each page of prefetch: a control plane that does
// not answer delays an instance's start by at most this much per page.
const prefetchTimeout = 10 * time.Second

// prefetch fills the cache with the scope's whole state, page by page, so
// that the function's reads, of present and absent keys alike, need no
// call to the control plane. A state larger than stateCacheKeys, or a
// control plane that cannot scan (it predates the scan), leaves the cache
// incomplete: keys not cached are then read one by one, as before. Called
// before the instance takes its first input.
func (s *fnState) prefetch(ctx context.Context) error {
	after := ""
	for {
		var resp *meshfedv1.GetStateResponse
		pctx, cancel := context.WithTimeout(ctx, prefetchTimeout)
		err := s.a.cp.DoRead(pctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
			resp, err = meshfedv1.NewAgentServiceClient(conn).GetState(ctx, &meshfedv1.GetStateRequest{Scope: s.scope, All: true, After: after})
			return err
		})
		cancel()
		if err != nil {
			return fmt.Errorf("prefetch state: %w", err)
		}
		if !resp.GetScanned() {
			return nil
		}
		s.mu.Lock()
		for _, v := range resp.GetValues() {
			s.cacheLocked(v)
		}
		full := len(s.present) >= stateCacheKeys
		s.complete = !resp.GetMore()
		s.mu.Unlock()
		if !resp.GetMore() || full || len(resp.GetValues()) == 0 {
			return nil
		}
		after = resp.GetValues()[len(resp.GetValues())-1].GetKey()
	}
}

// cacheLocked stores a value read from the control plane.
func (s *fnState) cacheLocked(v *meshfedv1.StateValue) {
	key := v.GetKey()
	if v.GetIsCounter() {
		s.counters[key] = v.GetCounter()
	} else if v.GetExists() {
		s.values[key] = v.GetValue()
	}
	s.present[key] = true
}

// takeFailure returns the first state read that failed since the last call
// (nil: none) and forgets it.
func (s *fnState) takeFailure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.failure
	s.failure = nil
	return err
}

// reservedStatePrefix starts the state keys meshfed keeps for itself
// (input watermarks); functions can neither read nor write them.
const reservedStatePrefix = "__meshfed/"

func checkUserKey(key string) error {
	if strings.HasPrefix(key, reservedStatePrefix) {
		return fmt.Errorf("state key %q: %w", key, ErrReservedStateKey)
	}
	return nil
}

// readInternal reads keys of meshfed's own (not through the cache):
// present keys with a value, by key.
func (s *fnState) readInternal(ctx context.Context, keys []string) (map[string][]byte, error) {
	var resp *meshfedv1.GetStateResponse
	err := s.a.cp.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = meshfedv1.NewAgentServiceClient(conn).GetState(ctx, &meshfedv1.GetStateRequest{Scope: s.scope, Keys: keys})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	out := map[string][]byte{}
	for i, v := range resp.GetValues() {
		key := v.GetKey()
		if key == "" && i < len(keys) {
			key = keys[i]
		}
		if v.GetExists() && !v.GetIsCounter() {
			out[key] = v.GetValue()
		}
	}
	return out, nil
}

func (s *fnState) IncrCounter(ctx context.Context, key string, delta int64) (int64, error) {
	if err := checkUserKey(key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return 0, err
	}
	if _, isValue := s.values[key]; isValue {
		return 0, fmt.Errorf("state key %q holds a value, not a counter", key)
	}
	if s.input != nil && s.input.applied {
		return s.counters[key], nil
	}
	s.counters[key] += delta
	s.pending = append(s.pending, pendingOp{&meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Incr{Incr: delta}}, s.input})
	return s.counters[key], nil
}

func (s *fnState) GetCounter(ctx context.Context, key string) (int64, error) {
	if err := checkUserKey(key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return 0, err
	}
	return s.counters[key], nil
}

func (s *fnState) PutState(ctx context.Context, key string, value []byte) error {
	if err := checkUserKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return err
	}
	if _, isCounter := s.counters[key]; isCounter {
		return fmt.Errorf("state key %q is a counter", key)
	}
	if s.input != nil && s.input.applied {
		return nil
	}
	if value == nil {
		delete(s.values, key)
		s.pending = append(s.pending, pendingOp{&meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Delete{Delete: true}}, s.input})
		return nil
	}
	v := append([]byte(nil), value...)
	s.values[key] = v
	s.pending = append(s.pending, pendingOp{&meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Put{Put: v}}, s.input})
	return nil
}

func (s *fnState) GetState(ctx context.Context, key string) ([]byte, error) {
	if err := checkUserKey(key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return nil, err
	}
	return s.values[key], nil
}

// flush commits buffered changes, with extra (meshfed's own writes) in
// the same commit. A strict state commits only the changes of inputs
// acking reports true for (and untagged ones), keeping the rest buffered;
// otherwise every buffered change goes. A commit whose outcome is unknown
// (the leader changed mid-commit, a server stopped answering) is retried
// with the same writer and sequence, which the control plane applies at
// most once. If it still fails the cache is dropped (it may hold changes
// that were never committed), a strict state is fenced, and the error
// returned, so the caller does not acknowledge the inputs.
//
// marks (strict states) are the applied keys of the inputs acknowledged
// with this flush and their newest sequences: they go into the commit when
// it holds changes of inputs, so that a commit applied just before a crash
// is never applied again from the inputs' redelivery.
func (s *fnState) flush(ctx context.Context, acking func(*ticket) bool, marks map[string]int64, extra ...*meshfedv1.StateOp) error {
	s.mu.Lock()
	if s.fenced != nil {
		err := s.fenced
		s.mu.Unlock()
		return fmt.Errorf("commit state: an earlier commit failed: %w", err)
	}
	var ops []*meshfedv1.StateOp
	var kept []pendingOp
	for _, p := range s.pending {
		if s.strict && p.input != nil && (acking == nil || !acking(p.input)) {
			kept = append(kept, p)
			continue
		}
		ops = append(ops, p.op)
	}
	ops = coalesce(ops)
	var marked []*meshfedv1.StateOp
	if len(ops) > 0 {
		for _, k := range slices.Sorted(maps.Keys(marks)) {
			if cur, err := strconv.ParseInt(string(s.values[k]), 10, 64); err == nil && cur >= marks[k] {
				continue // never lowered: inputs replayed now are below it
			}
			marked = append(marked, &meshfedv1.StateOp{Key: k, Op: &meshfedv1.StateOp_Put{Put: []byte(strconv.FormatInt(marks[k], 10))}})
		}
	}
	ops = append(append(ops, marked...), extra...)
	s.pending = kept
	if len(ops) > 0 {
		s.seq++
	}
	seq := s.seq
	s.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	req := &meshfedv1.CommitStateRequest{Scope: s.scope, Ops: ops, Writer: s.writer, Sequence: seq}
	var err error
	backoff := 50 * time.Millisecond
	for attempt := 0; attempt < 8; attempt++ {
		err = s.a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(conn).CommitState(ctx, req)
			return err
		})
		if err == nil {
			s.mu.Lock()
			for _, op := range marked {
				s.values[op.GetKey()], s.present[op.GetKey()] = op.GetPut(), true
			}
			s.mu.Unlock()
			return nil
		}
		if c := status.Code(err); c != codes.Unknown && c != codes.Unavailable && c != codes.DeadlineExceeded || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	err = fmt.Errorf("commit state: %w", err)
	s.mu.Lock()
	s.counters, s.values, s.present, s.complete = map[string]int64{}, map[string][]byte{}, map[string]bool{}, false
	if s.strict {
		s.fenced, s.pending = err, nil
	}
	s.mu.Unlock()
	return err
}

// coalesce merges the changes of one commit key by key, in the order keys
// were first changed: increments of a counter add up, and of puts and
// deletes of a value the last wins. The commit applies the same changes
// with one operation per key.
func coalesce(ops []*meshfedv1.StateOp) []*meshfedv1.StateOp {
	if len(ops) < 2 {
		return ops
	}
	at := make(map[string]int, len(ops))
	out := make([]*meshfedv1.StateOp, 0, len(ops))
	for _, op := range ops {
		i, seen := at[op.GetKey()]
		if !seen {
			at[op.GetKey()] = len(out)
			out = append(out, op)
			continue
		}
		prev, isIncr := out[i].GetOp().(*meshfedv1.StateOp_Incr)
		if next, ok := op.GetOp().(*meshfedv1.StateOp_Incr); ok && isIncr {
			out[i] = &meshfedv1.StateOp{Key: op.GetKey(), Op: &meshfedv1.StateOp_Incr{Incr: prev.Incr + next.Incr}}
			continue
		}
		out[i] = op
	}
	return out
}

// appliedPrefix starts the keys that record, per input partition and
// original producer, the sequence of the newest input whose state changes
// are committed (effectively_once): the value is the decimal sequence id
// its first output has (sequenceID with k = 0), which grows in the
// producer's order and is the same in every cluster.
const appliedPrefix = reservedStatePrefix + "applied/"

// appliedKey names the applied record of producer's inputs in partition.
func appliedKey(partition, producer string) string {
	return appliedPrefix + partition + "\x00" + producer
}

// applied reports whether the state changes of the input with sequence seq
// whose applied record is key are already committed: a redelivered input
// at or below the record was acknowledged-or-committed before a crash.
func (s *fnState) applied(ctx context.Context, key string, seq int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return false, err
	}
	v, ok := s.values[key]
	if !ok {
		return false, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		// Not written by this code: nothing is known to be applied.
		return false, nil
	}
	return seq <= n, nil
}

// fnContext is the runtime.Context of one instance.
type fnContext struct {
	*fnState
	tenant, namespace, mesh, function string
	index                             int
	config                            map[string]any
	logger                            *slog.Logger
	// attrs label the instance's metrics; built once.
	attrs metric.MeasurementOption
}

func (c *fnContext) Tenant() string         { return c.tenant }
func (c *fnContext) Namespace() string      { return c.namespace }
func (c *fnContext) Mesh() string           { return c.mesh }
func (c *fnContext) Function() string       { return c.function }
func (c *fnContext) InstanceIndex() int     { return c.index }
func (c *fnContext) Config() map[string]any { return c.config }
func (c *fnContext) Logger() *slog.Logger   { return c.logger }
