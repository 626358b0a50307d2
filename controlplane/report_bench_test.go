package controlplane

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// BenchmarkReportStatusRaftWrites drives N agents (MESHFED_BENCH_AGENTS,
// default 1,000), each reporting its one instance's status every 500 ms
// with a counter that changes on every report, over gRPC against a
// three-server in-process cluster, and reports the Raft entries committed
// per second while they do (nothing else writes meanwhile). Run it with
// -benchtime=1x; the window is MESHFED_BENCH_SECONDS (default 10).
func BenchmarkReportStatusRaftWrites(b *testing.B) {
	agents := envInt("MESHFED_BENCH_AGENTS", 1000)
	window := time.Duration(envInt("MESHFED_BENCH_SECONDS", 10)) * time.Second
	const every = 500 * time.Millisecond
	servers := TestCluster(b, 3, func(c *Config) {
		// Agents do not heartbeat here: only reports load the servers.
		c.AgentLease = time.Hour
		c.AgentTTL = 2 * time.Hour
		c.SchedulerInterval = 200 * time.Millisecond
		// Timeouts of a real deployment: the test defaults are tuned for
		// fast elections, and this load on a small machine would cause them.
		c.RaftTweak = func(rc *raft.Config) {
			rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, time.Second
		}
	})
	leader := WaitForLeader(b, servers...)
	objc, _ := TestClient(b, leader.GRPCAddr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := objc.Apply(ctx, &meshfedv1.ApplyRequest{Objects: identityMesh(int32(agents), true)}); err != nil {
		b.Fatal(err)
	}
	ac := TestAgents(b, leader.GRPCAddr())
	for i := 0; i < agents; i++ {
		req := &meshfedv1.RegisterRequest{Name: fmt.Sprintf("ag%04d", i), Cluster: "a", Capacity: 1}
		WaitFor(b, 30*time.Second, func() error {
			_, err := ac.Register(ctx, req)
			return err
		})
	}
	// Wait until every instance is placed and the placement has settled.
	byAgent := map[string]*meshfedv1.Assignment{}
	WaitFor(b, 120*time.Second, func() error {
		as, _, err := leader.State().List(stateFilter("Assignment"))
		if err != nil {
			return err
		}
		byAgent = map[string]*meshfedv1.Assignment{}
		for _, o := range as {
			if a := o.GetAssignment(); a.GetSpec().GetAgent() != "" {
				byAgent[a.GetSpec().GetAgent()] = a
			}
		}
		if len(byAgent) < agents {
			return fmt.Errorf("%d of %d instances placed", len(byAgent), agents)
		}
		return nil
	})
	if l := WaitForLeader(b, servers...); l != leader {
		b.Fatalf("leadership moved from %s to %s while placing", leader.NodeID(), l.NodeID())
	}
	settle := leader.Raft().AppliedIndex()
	WaitFor(b, 60*time.Second, func() error {
		time.Sleep(time.Second) // idle window: how many entries the cluster writes on its own
		now := leader.Raft().AppliedIndex()
		if now != settle {
			settle = now
			return fmt.Errorf("still writing")
		}
		return nil
	})

	var sent, failed, started atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for name, a := range byAgent {
		wg.Add(1)
		go func(name string, a *meshfedv1.Assignment, offset time.Duration) {
			defer wg.Done()
			select {
			case <-time.After(offset):
			case <-stop:
				return
			}
			t := time.NewTicker(every)
			defer t.Stop()
			md := a.GetMetadata()
			for n := uint64(1); ; n++ {
				_, err := ac.ReportStatus(ctx, &meshfedv1.ReportStatusRequest{Agent: name, Instances: []*meshfedv1.InstanceReport{{
					Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName(), Epoch: a.GetSpec().GetEpoch(),
					Status: &meshfedv1.InstanceStatus{State: "Running", Received: n, Processed: n}}}})
				sent.Add(1)
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err.Error())
				}
				if n == 1 {
					started.Add(1)
				}
				select {
				case <-t.C:
				case <-stop:
					return
				}
			}
		}(name, a, time.Duration(hash(name)%500)*time.Millisecond)
	}
	// Warm up: every agent's first report (Pending to Running) is a
	// transition, written at once; measure the steady state after them.
	WaitFor(b, 120*time.Second, func() error {
		if n := started.Load(); n < int64(agents) {
			return fmt.Errorf("%d of %d agents made their first report", n, agents)
		}
		return nil
	})
	b.ResetTimer()
	startIdx, startSent, start := leader.Raft().AppliedIndex(), sent.Load(), time.Now()
	time.Sleep(window)
	endIdx, endSent, elapsed := leader.Raft().AppliedIndex(), sent.Load(), time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	writes := float64(endIdx-startIdx) / elapsed.Seconds()
	reports := float64(endSent-startSent) / elapsed.Seconds()
	b.ReportMetric(writes, "raft-writes/s")
	b.ReportMetric(reports, "reports/s")
	b.ReportMetric(float64(failed.Load()), "failed-reports")
	b.Logf("%d agents, one report each per %s: %.0f reports/s sent, %.1f Raft entries/s committed, %d reports failed (first: %v); leader %s is still leader: %v",
		agents, every, reports, writes, failed.Load(), firstErr.Load(), leader.NodeID(), leader.IsLeader())
}

func hash(s string) int {
	h := 0
	for _, c := range s {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	return h
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
