package agent

import (
	"context"
	"fmt"
	"log/slog"
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
// follows the function to any agent and cluster). The instance reads keys
// through a cache and buffers changes; flush commits them in one Raft write
// before the inputs that caused them are acknowledged, so an acknowledged
// message's state change is never lost. Counters are exact while one
// instance writes a key (Failover or Key_Shared subscriptions).
type fnState struct {
	a     *Agent
	scope *meshfedv1.StateScope
	// writer identifies this instance's commits (assignment, epoch and a
	// start nonce); seq numbers them, so a retried commit applies once.
	writer string
	seq    uint64

	// mu guards counters, values and pending.
	mu       sync.Mutex
	counters map[string]int64
	values   map[string][]byte
	// present marks keys read or written (a nil value means absent).
	present map[string]bool
	pending []*meshfedv1.StateOp
}

func newFnState(a *Agent, scope *meshfedv1.StateScope, writer string) *fnState {
	return &fnState{a: a, scope: scope, writer: writer, counters: map[string]int64{}, values: map[string][]byte{}, present: map[string]bool{}}
}

// loadLocked reads a key from the control plane into the cache.
func (s *fnState) loadLocked(ctx context.Context, key string) error {
	if s.present[key] {
		return nil
	}
	var resp *meshfedv1.GetStateResponse
	err := s.a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = meshfedv1.NewAgentServiceClient(conn).GetState(ctx, &meshfedv1.GetStateRequest{Scope: s.scope, Keys: []string{key}})
		return err
	})
	if err != nil {
		return fmt.Errorf("read state %q: %w", key, err)
	}
	for _, v := range resp.GetValues() {
		if v.GetIsCounter() {
			s.counters[key] = v.GetCounter()
		} else if v.GetExists() {
			s.values[key] = v.GetValue()
		}
	}
	s.present[key] = true
	return nil
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
	err := s.a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
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
	s.counters[key] += delta
	s.pending = append(s.pending, &meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Incr{Incr: delta}})
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
	if value == nil {
		delete(s.values, key)
		s.pending = append(s.pending, &meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Delete{Delete: true}})
		return nil
	}
	v := append([]byte(nil), value...)
	s.values[key] = v
	s.pending = append(s.pending, &meshfedv1.StateOp{Key: key, Op: &meshfedv1.StateOp_Put{Put: v}})
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
// the same commit. A commit whose outcome is unknown (the
// leader changed mid-commit, a server stopped answering) is retried with the
// same writer and sequence, which the control plane applies at most once.
// If it still fails the cache is dropped (it may hold changes that were
// never committed) and the error returned, so the caller does not
// acknowledge the inputs.
func (s *fnState) flush(ctx context.Context, extra ...*meshfedv1.StateOp) error {
	s.mu.Lock()
	ops := append(s.pending, extra...)
	s.pending = nil
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
	s.mu.Lock()
	s.counters, s.values, s.present = map[string]int64{}, map[string][]byte{}, map[string]bool{}
	s.mu.Unlock()
	return fmt.Errorf("commit state: %w", err)
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
