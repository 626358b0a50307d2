package controlplane

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The hashicorp/raft v1.7.3 Shutdown deadlock with pipelined replication
// (why Server wraps its transport in noPipeline). With NetworkTransport's
// default of two RPCs in flight, the pipeline's channels are unbuffered:
// once a deposed leader's pipelineDecode returns on a reply with a newer
// term, the pipeline's decoder blocks handing the next reply to it, and if
// the replication loop sends once more before it sees the decoder gone,
// that send blocks handing its future to the decoder. The replication
// goroutine never ends, and Raft.Shutdown waits for it forever.
//
// TestRaftShutdownPipelineDeadlock runs a three-node group on TCP
// transports under load with leadership transfers, then shuts every node
// down with a deadline, for several attempts: with pipelining it reports
// the attempt that hung (and the goroutine that hangs), and it requires
// that no attempt hang with noPipeline. The hang depends on thread timing,
// so the pipelined half may not reproduce it in a given number of attempts;
// it then says so (t.Skip) rather than pass silently.
//
//	MESHFED_RAFT_DEADLOCK_ATTEMPTS  attempts per variant (default 4)
//	MESHFED_RAFT_DEADLOCK_LOAD      load per attempt (default 1.5s)

// raftDeadlockShutdownTimeout is how long a Shutdown may take before the
// attempt counts as hung.
const raftDeadlockShutdownTimeout = 10 * time.Second

func TestRaftShutdownPipelineDeadlock(t *testing.T) {
	if testing.Short() {
		t.Skip("drives Raft groups for several seconds")
	}
	attempts, load := 4, 1500*time.Millisecond
	if s := os.Getenv("MESHFED_RAFT_DEADLOCK_ATTEMPTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MESHFED_RAFT_DEADLOCK_ATTEMPTS=%q: want a positive integer", s)
		}
		attempts = n
	}
	if s := os.Getenv("MESHFED_RAFT_DEADLOCK_LOAD"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("MESHFED_RAFT_DEADLOCK_LOAD=%q: want a positive duration", s)
		}
		load = d
	}
	// The variant without pipelining runs first: once a pipelined attempt
	// hangs, its goroutines stay behind for the rest of the process.
	t.Run("noPipeline", func(t *testing.T) {
		for i := range attempts {
			res := raftDeadlockAttempt(t, false, load)
			t.Logf("attempt %d: %s", i, res)
			if res.hung != "" {
				t.Fatalf("attempt %d: Shutdown of %s hung for %s without pipelining:\n%s", i, res.hung, raftDeadlockShutdownTimeout, res.stacks)
			}
		}
	})
	t.Run("pipeline", func(t *testing.T) {
		for i := range attempts {
			res := raftDeadlockAttempt(t, true, load)
			t.Logf("attempt %d: %s", i, res)
			if res.hung != "" {
				if !strings.Contains(res.stacks, "pipelineSend") {
					t.Fatalf("attempt %d: Shutdown of %s hung, but no goroutine is in pipelineSend:\n%s", i, res.hung, res.stacks)
				}
				t.Logf("reproduced in attempt %d of %d: Shutdown of %s hung for %s; the replication goroutine it waits for:\n%s",
					i+1, attempts, res.hung, raftDeadlockShutdownTimeout, pipelineStack(res.stacks))
				return
			}
		}
		t.Skipf("not reproduced in %d attempts of %s (the hang depends on thread timing; raise MESHFED_RAFT_DEADLOCK_ATTEMPTS)", attempts, load)
	})
}

type raftDeadlockResult struct {
	applied, transfers int
	// hung is the node whose Shutdown did not return ("" if none).
	hung string
	// stacks are all goroutines' stacks when a Shutdown hung.
	stacks string
}

func (r raftDeadlockResult) String() string {
	s := fmt.Sprintf("%d entries applied, %d leadership transfers", r.applied, r.transfers)
	if r.hung != "" {
		s += ", Shutdown of " + r.hung + " hung"
	}
	return s
}

// pipelineStack returns the goroutine stacks that mention pipelineSend.
func pipelineStack(stacks string) string {
	var out []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "pipelineSend") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// raftDeadlockAttempt starts a group, applies from several goroutines to
// whichever node leads while another transfers leadership over and over,
// then shuts every node down.
func raftDeadlockAttempt(t *testing.T, pipeline bool, load time.Duration) raftDeadlockResult {
	var res raftDeadlockResult
	var (
		rafts  []*raft.Raft
		trans  []*raft.NetworkTransport
		config raft.Configuration
	)
	for i := range 3 {
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
		if err != nil {
			t.Fatalf("transport: %v", err)
		}
		trans = append(trans, tr)
		config.Servers = append(config.Servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i)), Address: tr.LocalAddr()})
	}
	for i, tr := range trans {
		rc := raft.DefaultConfig()
		rc.LocalID = config.Servers[i].ID
		rc.HeartbeatTimeout = 200 * time.Millisecond
		rc.ElectionTimeout = 200 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
		rc.CommitTimeout = time.Millisecond
		rc.MaxAppendEntries = 4
		rc.Logger = hclog.NewNullLogger()
		var t2 raft.Transport = tr
		if !pipeline {
			t2 = noPipeline{tr}
		}
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(rc, &countFSM{}, store, store, raft.NewDiscardSnapshotStore(), t2)
		if err != nil {
			t.Fatalf("raft: %v", err)
		}
		rafts = append(rafts, r)
	}
	if err := rafts[0].BootstrapCluster(config).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	leader := func() *raft.Raft {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				return r
			}
		}
		return nil
	}
	WaitFor(t, 10*time.Second, func() error {
		if leader() == nil {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var applied atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := leader()
				if r == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				if r.Apply(make([]byte, 64), 100*time.Millisecond).Error() == nil {
					applied.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(load)
	for time.Now().Before(deadline) {
		if r := leader(); r != nil && r.LeadershipTransfer().Error() == nil {
			res.transfers++
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	res.applied = int(applied.Load())
	for i, r := range rafts {
		done := make(chan error, 1)
		go func() { done <- r.Shutdown().Error() }()
		select {
		case <-done:
			trans[i].Close()
		case <-time.After(raftDeadlockShutdownTimeout):
			buf := make([]byte, 4<<20)
			res.hung = string(config.Servers[i].ID)
			res.stacks = string(buf[:runtime.Stack(buf, true)])
			for _, tr := range trans {
				tr.Close()
			}
			return res
		}
	}
	return res
}

// countFSM applies nothing but counts entries.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any { f.n.Add(1); return nil }

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return countSnapshot{}, nil }

func (f *countFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

type countSnapshot struct{}

func (countSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }

func (countSnapshot) Release() {}
