package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCoalesceMergesChangesPerKey(t *testing.T) {
	incr := func(k string, n int64) *meshfedv1.StateOp {
		return &meshfedv1.StateOp{Key: k, Op: &meshfedv1.StateOp_Incr{Incr: n}}
	}
	put := func(k, v string) *meshfedv1.StateOp {
		return &meshfedv1.StateOp{Key: k, Op: &meshfedv1.StateOp_Put{Put: []byte(v)}}
	}
	del := func(k string) *meshfedv1.StateOp {
		return &meshfedv1.StateOp{Key: k, Op: &meshfedv1.StateOp_Delete{Delete: true}}
	}
	for _, tc := range []struct {
		name string
		in   []*meshfedv1.StateOp
		want []*meshfedv1.StateOp
	}{
		{"empty", nil, nil},
		{"one", []*meshfedv1.StateOp{incr("a", 1)}, []*meshfedv1.StateOp{incr("a", 1)}},
		{"increments add up in first-change order", []*meshfedv1.StateOp{incr("b", 1), incr("a", 2), incr("b", 3), incr("a", -2)},
			[]*meshfedv1.StateOp{incr("b", 4), incr("a", 0)}},
		{"last put wins", []*meshfedv1.StateOp{put("v", "1"), put("w", "x"), put("v", "2")}, []*meshfedv1.StateOp{put("v", "2"), put("w", "x")}},
		{"delete after put", []*meshfedv1.StateOp{put("v", "1"), del("v")}, []*meshfedv1.StateOp{del("v")}},
		{"put after delete", []*meshfedv1.StateOp{del("v"), put("v", "3")}, []*meshfedv1.StateOp{put("v", "3")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := coalesce(tc.in)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("coalesce(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// loseCommitAnswers is a client interceptor that sends the commits of the
// first writer whose commit changes key, and answers each as failed: the
// control plane applies the commit, the instance never learns it — as when
// an agent dies between its state commit and its acknowledgement.
type loseCommitAnswers struct {
	key string
	// mu guards writer and lost.
	mu     sync.Mutex
	writer string
	lost   int
}

func (l *loseCommitAnswers) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	r, ok := req.(*meshfedv1.CommitStateRequest)
	if !ok || err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writer == "" {
		for _, op := range r.GetOps() {
			if op.GetKey() == l.key {
				l.writer = r.GetWriter()
			}
		}
	}
	if l.writer != "" && l.writer == r.GetWriter() {
		l.lost++
		return status.Error(codes.Internal, "answer lost")
	}
	return nil
}

func (l *loseCommitAnswers) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// A state commit applied whose inputs were never acknowledged (the answer
// was lost, the instance restarts, the inputs come again) changes the
// state once under effectively_once: the commit recorded the inputs it
// came from, and their redelivery changes nothing; outputs stay exactly
// once, and the replayed inputs are counted.
func TestEffectivelyOnceStateCommittedButNotAcknowledgedIsNotAppliedTwice(t *testing.T) {
	metricsReader()
	before := counterSum(t, "meshfed_function_state_already_applied", map[string]string{"mesh": "lc"})
	inj := &loseCommitAnswers{key: "w3"}
	const n = 40
	f, in, got := runWordCount(t, inj.intercept, "lc", "effectively_once", n)
	if inj.count() == 0 {
		t.Fatal("no commit answer was lost: the test does not cover a commit applied but not acknowledged")
	}
	seen := map[string]int{}
	for _, m := range got {
		seen[string(m.Payload())]++
	}
	for _, w := range wordCounts(n) {
		if seen[w] != 1 {
			t.Errorf("output %q written %d times, want once (outputs %d)", w, seen[w], len(got))
		}
	}
	// The outputs were all written before the lost answer: wait for the
	// restarted instance to take the redelivered inputs and acknowledge
	// everything, then check the state.
	admin, tn := testAdmin(t, f.brokers["a"]), topicName(t, in)
	controlplane.WaitFor(t, 20*time.Second, func() error {
		if d := counterSum(t, "meshfed_function_state_already_applied", map[string]string{"mesh": "lc"}) - before; d == 0 {
			return fmt.Errorf("no redelivered input counted as already applied (%d commit answers lost)", inj.count())
		}
		st, err := admin.Topics().GetStats(tn)
		if err != nil {
			return err
		}
		if sub := st.Subscriptions["meshfed-public-default-lc-count"]; sub.MsgBacklog != 0 || sub.UnAckedMessages != 0 {
			return fmt.Errorf("subscription backlog %d, unacknowledged %d", sub.MsgBacklog, sub.UnAckedMessages)
		}
		return nil
	})
	waitWordState(t, f, "lc", n)
}
