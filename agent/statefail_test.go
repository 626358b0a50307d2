package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failStateReads is a client interceptor that answers the first n GetState
// calls for key as a control plane without a leader does (Unavailable),
// without sending them. It answers reads of the whole state as a server
// that predates them does (not scanned), so that the instance reads key by
// key.
type failStateReads struct {
	key string
	// mu guards left and failed.
	mu           sync.Mutex
	left, failed int
}

func (f *failStateReads) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*meshfedv1.GetStateRequest); ok && method == meshfedv1.AgentService_GetState_FullMethodName {
		if r.GetAll() {
			return nil // reply stays empty: Scanned is false
		}
		for _, k := range r.GetKeys() {
			if k != f.key {
				continue
			}
			f.mu.Lock()
			fail := f.left > 0
			if fail {
				f.left--
				f.failed++
			}
			f.mu.Unlock()
			if fail {
				return status.Error(codes.Unavailable, "no server could serve the request (no leader)")
			}
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (f *failStateReads) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// A state read that fails because the control plane cannot answer (its
// leader died) is not the function's failure: the input is processed again
// once the state can be read, never acknowledged without its output and
// its state change. word-count under both guarantees that promise no loss.
func TestStateReadFailureIsRetriedNotSkipped(t *testing.T) {
	for _, g := range []string{"effectively_once", "atleast_once"} {
		t.Run(g, func(t *testing.T) {
			inj := &failStateReads{key: "w3", left: 2}
			mesh := "sf" + strings.ReplaceAll(g, "_", "")
			const n = 10
			f, _, got := runWordCount(t, inj.intercept, mesh, g, n)
			missing := missingOutputs(got, wordCounts(n))
			if inj.count() == 0 {
				t.Fatal("no state read of w3 failed: the test does not cover a failed read")
			}
			if len(missing) > 0 {
				t.Errorf("after %d failed state reads of w3: %d outputs, missing %v", inj.count(), len(got), missing)
			}
			if g == "effectively_once" && len(got) != 2*n {
				t.Errorf("%d outputs under effectively_once, want %d", len(got), 2*n)
			}
			controlplane.WaitFor(t, 10*time.Second, func() error {
				st := instanceStatus(f, mesh, "count")
				if st.GetFailed() != 0 {
					return fmt.Errorf("status failed=%d, want 0: a state read the control plane could not answer is not the function's failure", st.GetFailed())
				}
				if v := stateCounter(f, mesh, "count", "fox"); v != n {
					return fmt.Errorf("state fox=%d, want %d", v, n)
				}
				if v := stateCounter(f, mesh, "count", "w3"); v != 1 {
					return fmt.Errorf("state w3=%d, want 1", v)
				}
				return nil
			})
		})
	}
}

// failCommits is a client interceptor that answers every CommitState of
// the first writer whose commit changes key as unavailable, without
// sending it: that run's commit fails after its retries.
type failCommits struct {
	key string
	// mu guards writer and failed.
	mu     sync.Mutex
	writer string
	failed int
}

func (f *failCommits) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*meshfedv1.CommitStateRequest); ok && method == meshfedv1.AgentService_CommitState_FullMethodName {
		f.mu.Lock()
		if f.writer == "" {
			for _, op := range r.GetOps() {
				if op.GetKey() == f.key {
					f.writer = r.GetWriter()
				}
			}
		}
		fail := f.writer != "" && f.writer == r.GetWriter()
		if fail {
			f.failed++
		}
		f.mu.Unlock()
		if fail {
			return status.Error(codes.Unavailable, "no server could serve the request (no leader)")
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (f *failCommits) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// A state commit that fails under effectively_once restarts the instance
// and acknowledges nothing after it: every input whose change was not
// committed is processed again, and no change is applied twice.
func TestEffectivelyOnceFailedCommitLosesNoChange(t *testing.T) {
	inj := &failCommits{key: "w3"}
	const n = 40
	f, _, got := runWordCount(t, inj.intercept, "fc", "effectively_once", n)
	if inj.count() == 0 {
		t.Fatal("no commit failed: the test does not cover a failed commit")
	}
	if missing := missingOutputs(got, wordCounts(n)); len(missing) > 0 || len(got) != 2*n {
		t.Errorf("after %d failed commits: %d outputs (want %d), missing %v", inj.count(), len(got), 2*n, missing)
	}
	waitWordState(t, f, "fc", n)
}
