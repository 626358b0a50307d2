package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane"
	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkSchedulerLeader runs the scheduler benchmark's federation
// through a real leader: one in-process server (Raft, store, scheduler),
// 1,000 agents registered over gRPC and heartbeating every second from
// this process, meshes applied through the API in batches. The meshes are
// applied while the agents' registrations have lapsed (every cluster
// Down, instances waiting); then every agent heartbeats at once. It
// reports the time from there until every instance is placed, one steady
// scheduler pass and one full pass over the unchanged federation (as the
// leader timed them), the leader's heap per mesh,
// and the time to move every instance of the 500-agent cluster once its
// agents stop heartbeating. MESHFED_BENCH_MESHES overrides the 10,000
// meshes. Run with -benchtime 1x.
func BenchmarkSchedulerLeader(b *testing.B) {
	c := DefaultSchedulerConfig()
	if n, err := strconv.Atoi(os.Getenv("MESHFED_BENCH_MESHES")); err == nil && n > 0 {
		c.Meshes = n
	}
	for range b.N {
		runSchedulerLeader(b, c)
	}
}

func runSchedulerLeader(b *testing.B, c SchedulerConfig) {
	const ttl = 5 * time.Second
	srv := controlplane.TestServer(b, func(cfg *controlplane.Config) {
		cfg.HeartbeatInterval, cfg.AgentLease, cfg.AgentTTL = time.Second, ttl-time.Second, ttl
		cfg.SchedulerInterval = time.Second
		cfg.RebalanceMoves = -1 // nothing to even out: measure placement alone
		// Timeouts of a real deployment: this load on a small machine
		// would trip the test defaults' elections.
		cfg.RaftTweak = func(rc *raft.Config) {
			rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, time.Second
		}
	})
	controlplane.WaitForLeader(b, srv)
	objc, _ := controlplane.TestClient(b, srv.GRPCAddr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agents, views, meshes := SchedulerFederation(c)

	base := []*meshfedv1.Object{
		objects.Wrap(&meshfedv1.Tenant{ApiVersion: objects.APIVersion, Kind: objects.KindTenant, Metadata: &meshfedv1.ObjectMeta{Name: "t"}}),
		objects.Wrap(&meshfedv1.Namespace{ApiVersion: objects.APIVersion, Kind: objects.KindNamespace, Metadata: &meshfedv1.ObjectMeta{Tenant: "t", Name: "ns"}}),
	}
	for name := range views {
		base = append(base, objects.Wrap(&meshfedv1.Cluster{ApiVersion: objects.APIVersion, Kind: objects.KindCluster,
			Metadata: &meshfedv1.ObjectMeta{Name: name}, Spec: &meshfedv1.ClusterSpec{ServiceUrl: "pulsar://" + name + ":6650"}}))
	}
	if _, err := objc.Apply(ctx, &meshfedv1.ApplyRequest{Objects: base}); err != nil {
		b.Fatal(err)
	}

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ac := meshfedv1.NewAgentServiceClient(conn)
	byCluster := map[string][]string{}
	for _, a := range agents {
		req := &meshfedv1.RegisterRequest{Name: a.Name, Cluster: a.Cluster, Capacity: int32(a.Capacity), Labels: a.Labels,
			Runtimes: a.Runtimes, Interpreters: a.Interpreters, CpuMillis: a.CPUMillis, MemoryBytes: a.MemoryBytes}
		if _, err := ac.Register(ctx, req); err != nil {
			b.Fatal(err)
		}
		byCluster[a.Cluster] = append(byCluster[a.Cluster], a.Name)
	}
	// One heartbeating goroutine per cluster, from startHeartbeats on;
	// closing stop[c] silences cluster c's agents.
	stop := map[string]chan struct{}{}
	var wg sync.WaitGroup
	startHeartbeats := func() {
		for cl, names := range byCluster {
			stop[cl] = make(chan struct{})
			wg.Add(1)
			go heartbeat(ctx, ac, names, stop[cl], &wg)
		}
	}
	defer func() { cancel(); wg.Wait() }()
	placedIn := func(cluster string) (placed, total int) {
		as, _, err := srv.State().List(state.Filter{Kind: objects.KindAssignment})
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range as {
			sp := o.GetAssignment().GetSpec()
			total++
			if sp.GetAgent() != "" && (cluster == "" || sp.GetCluster() != cluster) {
				placed++
			}
		}
		return placed, total
	}
	want := c.Meshes * c.Functions
	// Cold start: the agents' registrations lapse (no heartbeats yet), so
	// every cluster is Down while the meshes are applied and their
	// instances wait unassigned; then every agent heartbeats at once and
	// the leader places all instances.
	controlplane.WaitFor(b, time.Minute, func() error {
		cs, _, err := srv.State().List(state.Filter{Kind: objects.KindCluster})
		if err != nil {
			return err
		}
		for _, o := range cs {
			if h := o.GetCluster().GetStatus().GetHealth(); h != federation.Down {
				return fmt.Errorf("cluster %s is %s", o.GetCluster().GetMetadata().GetName(), h)
			}
		}
		return nil
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	start := time.Now()
	const batch = 250
	for i := 0; i < len(meshes); i += batch {
		var objs []*meshfedv1.Object
		for _, m := range meshes[i:min(i+batch, len(meshes))] {
			objs = append(objs, objects.Wrap(m))
		}
		if _, err := objc.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs}); err != nil {
			b.Fatal(err)
		}
	}
	applied := time.Since(start)
	controlplane.WaitFor(b, 10*time.Minute, func() error {
		if _, total := placedIn(""); total < want {
			return fmt.Errorf("%d of %d instances waiting", total, want)
		}
		return nil
	})
	start = time.Now()
	startHeartbeats()
	controlplane.WaitFor(b, 10*time.Minute, func() error {
		if placed, _ := placedIn(""); placed < want {
			return fmt.Errorf("%d of %d instances placed", placed, want)
		}
		return nil
	})
	placeAll := time.Since(start)

	// Steady: the leader's own timing of its passes once nothing changes
	// (passes that find nothing changed since a full pass that did
	// nothing), then of its full passes over the same unchanged state
	// (one at least every 10 s).
	bestOf := func(n int, last func() time.Duration) time.Duration {
		best := time.Duration(0)
		for range n {
			seen := last()
			controlplane.WaitFor(b, time.Minute, func() error {
				if last() == seen {
					return fmt.Errorf("no new pass yet")
				}
				return nil
			})
			if d := last(); best == 0 || d < best {
				best = d
			}
		}
		return best
	}
	steady := bestOf(5, srv.LastSchedulerPass)
	steadyFull := bestOf(2, srv.LastFullSchedulerPass)
	runtime.GC()
	runtime.ReadMemStats(&after)

	big := agents[0].Cluster
	inBig := want - func() int { p, _ := placedIn(big); return p }()
	failStart := time.Now()
	close(stop[big])
	var down time.Duration
	controlplane.WaitFor(b, 10*time.Minute, func() error {
		if down == 0 {
			if o, _, err := srv.State().Get(objects.KindCluster, "", "", big); err == nil && o.GetCluster().GetStatus().GetHealth() == federation.Down {
				down = time.Since(failStart)
			}
		}
		if placed, _ := placedIn(big); placed < want {
			return fmt.Errorf("%d of %d instances placed outside %s", placed, want, big)
		}
		return nil
	})
	moved := time.Since(failStart)

	b.ReportMetric(applied.Seconds(), "apply-s")
	b.ReportMetric(placeAll.Seconds(), "place-all-s")
	b.ReportMetric(float64(want)/placeAll.Seconds(), "assignments/s")
	b.ReportMetric(float64(steady.Microseconds())/1000, "steady-pass-ms")
	b.ReportMetric(float64(steadyFull.Microseconds())/1000, "full-pass-ms")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(c.Meshes), "leader-B/mesh")
	b.ReportMetric(down.Seconds(), "detect-down-s")
	b.ReportMetric((moved - down).Seconds(), "move-after-down-s")
	b.Logf("%d agents, %d clusters, %d meshes: applied in %s (clusters down), all %d placed %s after every agent began heartbeating; steady pass %s (full %s); "+
		"leader heap %.1f KiB/mesh; %s Down %s after its %d agents stopped, its %d instances moved %s later",
		c.Agents, c.Clusters, c.Meshes, applied, want, placeAll, steady, steadyFull, float64(after.HeapAlloc-before.HeapAlloc)/float64(c.Meshes)/1024,
		big, down, c.BigCluster, inBig, moved-down)
}

// heartbeat heartbeats for the named agents every second until stop or ctx.
func heartbeat(ctx context.Context, ac meshfedv1.AgentServiceClient, names []string, stop chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, n := range names {
			_, _ = ac.Heartbeat(ctx, &meshfedv1.HeartbeatRequest{Name: n, BrokerReachable: true})
		}
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
