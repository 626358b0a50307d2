package agent

import (
	"context"
	"fmt"
	"log/slog"
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

func (s *fnState) IncrCounter(ctx context.Context, key string, delta int64) (int64, error) {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return 0, err
	}
	return s.counters[key], nil
}

func (s *fnState) PutState(ctx context.Context, key string, value []byte) error {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx, key); err != nil {
		return nil, err
	}
	return s.values[key], nil
}

// flush commits buffered changes. A commit whose outcome is unknown (the
// leader changed mid-commit, a server stopped answering) is retried with the
// same writer and sequence, which the control plane applies at most once.
// If it still fails the cache is dropped (it may hold changes that were
// never committed) and the error returned, so the caller does not
// acknowledge the inputs.
func (s *fnState) flush(ctx context.Context) error {
	s.mu.Lock()
	ops := s.pending
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
