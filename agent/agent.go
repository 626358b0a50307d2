package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/builtin"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"log/slog"
)

// Version is reported at registration.
var Version = "dev"

// Agent runs the instances the control plane assigns to it.
type Agent struct {
	cfg    Config
	logger *slog.Logger
	cp     *client.Client
	epochs *epochBook
	pulsar *pulsarClients
	pkgs   *packageCache
	probe  *brokerProbe
	// refusals are the brokers' current refusals of the agent's
	// credentials; its own cluster's go out with every heartbeat.
	refusals *refusals

	// brokerReachable is the broker probe's latest verdict, sent with
	// every heartbeat.
	brokerReachable atomic.Bool

	// lastRenewed is the send time (UnixNano) of the last successful
	// heartbeat; the lease runs from it.
	lastRenewed atomic.Int64
	// leaseNanos is the lease the servers granted.
	leaseNanos atomic.Int64
	// heartbeatEvery is the interval the servers asked for.
	heartbeatEvery atomic.Int64
	// staleView is set when the lease lapses and cleared by the next full
	// list: until then the agent's view of its assignments may predate moves
	// made while it was cut off, so it starts nothing.
	staleView atomic.Bool
	// cancelWatch ends the current watch so the watch loop lists again.
	cancelWatch atomic.Pointer[context.CancelFunc]

	// mu guards desired, clusters, running and handover.
	mu       sync.Mutex
	desired  map[string]*meshfedv1.Assignment
	clusters map[string]*meshfedv1.Cluster
	running  map[string]*instance
	// handover holds assignments moved off this agent while its cluster is
	// cordoned (a drain): their instances keep running here until the new
	// instance reports Running, or handoverTimeout passes.
	handover map[string]*handoverState

	wake chan struct{}

	// metrics are the instances' Pulsar-compatible function metrics.
	metrics *functionMetrics
}

// New validates the configuration and opens the agent's data dir.
func New(cfg Config) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Runtimes == nil {
		cfg.Runtimes = map[string]runtime.Runtime{"builtin": builtin.Runtime{}}
	}
	epochs, err := openEpochBook(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cp, err := client.New(cfg.Servers, cfg.DialOptions...)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:      cfg,
		logger:   cfg.Logger.With("agent", cfg.Name, "cluster", cfg.Cluster),
		cp:       cp,
		epochs:   epochs,
		desired:  map[string]*meshfedv1.Assignment{},
		clusters: map[string]*meshfedv1.Cluster{},
		running:  map[string]*instance{},
		handover: map[string]*handoverState{},
		wake:     make(chan struct{}, 1),
		metrics:  newFunctionMetrics(cfg.Now),
	}
	a.refusals = newRefusals(a.logger, cfg.Now)
	a.pulsar = newPulsarClients(a)
	a.pkgs = newPackageCache(a)
	a.probe = newBrokerProbe(a)
	return a, nil
}

// Run registers the agent and reconciles until ctx ends, then stops every
// instance and closes its connections.
func (a *Agent) Run(ctx context.Context) error {
	defer a.cp.Close()
	defer a.pulsar.closeAll()
	defer a.probe.closeClient()
	if err := a.register(ctx); err != nil {
		return err
	}
	// The cluster list (for the admin URL) arrives with the first list;
	// until the first probe answers, the broker counts as reachable.
	a.brokerReachable.Store(true)
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); a.probeLoop(ctx) }()
	go func() { defer wg.Done(); a.heartbeatLoop(ctx) }()
	go func() { defer wg.Done(); a.watchLoop(ctx) }()
	go func() { defer wg.Done(); a.handoverLoop(ctx) }()
	go func() { defer wg.Done(); a.reportLoop(ctx) }()
	a.reconcileLoop(ctx)
	wg.Wait()
	a.stopAll("agent stopping")
	return nil
}

// register announces the agent, retrying until a server accepts it.
func (a *Agent) register(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	caps := probeCapabilities(a.cfg)
	a.logger.Info("capabilities", "runtimes", caps.runtimes, "interpreters", caps.interpreters, "cpuMillis", caps.cpuMillis, "memoryBytes", caps.memoryBytes)
	for {
		start := a.cfg.Now()
		var resp *meshfedv1.RegisterResponse
		err := a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			resp, err = meshfedv1.NewAgentServiceClient(conn).Register(rctx, &meshfedv1.RegisterRequest{
				Name: a.cfg.Name, Cluster: a.cfg.Cluster, Capacity: int32(a.cfg.Capacity), Labels: a.cfg.Labels, Version: Version,
				Runtimes: caps.runtimes, Interpreters: caps.interpreters, CpuMillis: caps.cpuMillis, MemoryBytes: caps.memoryBytes,
				Limits: a.limitsMechanism(),
			})
			return err
		})
		if err == nil {
			a.leaseNanos.Store(int64(time.Duration(resp.GetLeaseMs()) * time.Millisecond))
			a.heartbeatEvery.Store(int64(time.Duration(resp.GetHeartbeatIntervalMs()) * time.Millisecond))
			a.lastRenewed.Store(start.UnixNano())
			a.logger.Info("registered", "lease", time.Duration(a.leaseNanos.Load()), "heartbeat", time.Duration(a.heartbeatEvery.Load()))
			return nil
		}
		a.logger.Warn("register failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// limitsMechanism is how the agent holds exec instances to their
// resources: what its exec runtime uses, "none" without one.
func (a *Agent) limitsMechanism() string {
	if l, ok := a.cfg.Runtimes["exec"].(runtime.Limited); ok {
		return l.LimitsMechanism()
	}
	return "none"
}

// leaseValid reports whether the agent may run instances: its last
// successful heartbeat was sent less than a lease ago.
func (a *Agent) leaseValid() bool {
	return a.cfg.Now().UnixNano()-a.lastRenewed.Load() < a.leaseNanos.Load()
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	for {
		interval, ok := a.waitHeartbeat(ctx)
		if !ok {
			return
		}
		start := a.cfg.Now()
		var resp *meshfedv1.HeartbeatResponse
		err := a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
			hctx, cancel := context.WithTimeout(ctx, interval*2)
			defer cancel()
			resp, err = meshfedv1.NewAgentServiceClient(conn).Heartbeat(hctx, &meshfedv1.HeartbeatRequest{Name: a.cfg.Name, BrokerReachable: a.brokerReachable.Load(),
				BrokerAuthError: a.refusals.reason(a.cfg.Cluster)})
			return err
		})
		wasValid := a.leaseValid()
		switch {
		case err != nil:
			if wasValid && !a.leaseValid() {
				a.logger.Warn("lease expired: no control-plane server reachable; stopping instances", "err", err)
			}
		case resp.GetUnknownAgent():
			if err := a.register(ctx); err != nil {
				return
			}
		default:
			if start.UnixNano()-a.lastRenewed.Load() >= a.leaseNanos.Load() {
				// The lease lapsed since the last renewal, however briefly:
				// assignments may have moved meanwhile.
				a.markStale()
			}
			a.lastRenewed.Store(start.UnixNano())
			if resp.GetLeaseMs() > 0 {
				a.leaseNanos.Store(int64(time.Duration(resp.GetLeaseMs()) * time.Millisecond))
			}
		}
		if wasValid != a.leaseValid() {
			a.poke()
		}
	}
}

// probeLoop probes the agent's own broker every heartbeat interval.
func (a *Agent) probeLoop(ctx context.Context) {
	for {
		a.brokerReachable.Store(a.probe.check(ctx))
		if _, ok := a.waitHeartbeat(ctx); !ok {
			return
		}
	}
}

// waitHeartbeat waits one heartbeat interval (500 ms until the control
// plane names one) and returns it; false when ctx ended first.
func (a *Agent) waitHeartbeat(ctx context.Context) (time.Duration, bool) {
	d := time.Duration(a.heartbeatEvery.Load())
	if d <= 0 {
		d = 500 * time.Millisecond
	}
	select {
	case <-ctx.Done():
		return d, false
	case <-time.After(d):
		return d, true
	}
}

// markStale distrusts the agent's view of its assignments after it was cut
// off: it starts nothing until the watch loop has listed them again.
func (a *Agent) markStale() {
	a.staleView.Store(true)
	if c := a.cancelWatch.Load(); c != nil {
		(*c)()
	}
}

// poke wakes the reconcile loop.
func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// watchLoop keeps desired (this agent's assignments) and clusters current:
// list, then watch from the list's revision; list again on a resync.
func (a *Agent) watchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := a.relist(ctx)
		if err != nil {
			a.logger.Warn("list assignments failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		a.cancelWatch.Store(&cancel)
		err = a.cp.Watch(wctx, a.feed(rev), func(resp *meshfedv1.WatchResponse) error {
			changed := false
			a.mu.Lock()
			for _, ev := range resp.GetEvents() {
				changed = a.applyEventLocked(ev) || changed
			}
			a.mu.Unlock()
			if changed {
				a.poke()
			}
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, client.ErrResync) && ctx.Err() == nil && wctx.Err() == nil {
			a.logger.Warn("watch ended; listing again", "err", err)
		}
	}
}

// feedKinds are the kinds an agent lists and watches: clusters (whether
// its own is cordoned) and its own assignments.
var feedKinds = []string{objects.KindCluster, objects.KindAssignment}

// feed is the agent's narrow watch: clusters and the assignments naming
// this agent, including the event that moves one away from it.
func (a *Agent) feed(rev uint64) *meshfedv1.WatchRequest {
	return &meshfedv1.WatchRequest{Kinds: feedKinds, Agent: a.cfg.Name, StartRevision: rev}
}

func (a *Agent) relist(ctx context.Context) (uint64, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := a.cp.List(lctx, &meshfedv1.ListRequest{Kinds: feedKinds, Agent: a.cfg.Name})
	if err != nil {
		return 0, err
	}
	moved, gone := a.fetchAssignments(lctx, a.handoverKeys())
	a.mu.Lock()
	a.clusters = map[string]*meshfedv1.Cluster{}
	a.desired = map[string]*meshfedv1.Assignment{}
	for _, o := range resp.GetObjects() {
		switch {
		case o.GetCluster() != nil:
			a.clusters[o.GetCluster().GetMetadata().GetName()] = o.GetCluster()
		case o.GetAssignment().GetSpec().GetAgent() == a.cfg.Name:
			a.desired[objects.KeyOf(o)] = o.GetAssignment()
		}
	}
	for k, h := range a.handover {
		if to, ok := moved[k]; ok && to.GetSpec().GetAgent() != a.cfg.Name {
			h.to = to
		} else if ok || gone[k] {
			delete(a.handover, k) // back on this agent, or deleted
		}
	}
	a.mu.Unlock()
	if a.leaseValid() {
		a.staleView.Store(false)
	}
	a.poke()
	return resp.GetRevision(), nil
}

// handoverKeys returns the assignments this agent is handing over, by key.
func (a *Agent) handoverKeys() map[string]*meshfedv1.ObjectMeta {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]*meshfedv1.ObjectMeta, len(a.handover))
	for k, h := range a.handover {
		out[k] = h.to.GetMetadata()
	}
	return out
}

// fetchAssignments reads the given assignments one by one: the agent's
// feed carries only its own, and a handover follows one that moved away
// until its new instance runs. Deleted ones are returned in gone; one
// that cannot be read now is in neither and read on the next pass.
func (a *Agent) fetchAssignments(ctx context.Context, keys map[string]*meshfedv1.ObjectMeta) (got map[string]*meshfedv1.Assignment, gone map[string]bool) {
	got, gone = make(map[string]*meshfedv1.Assignment, len(keys)), map[string]bool{}
	for k, md := range keys {
		r, err := a.cp.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindAssignment, Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName()})
		switch {
		case status.Code(err) == codes.NotFound:
			gone[k] = true
		case err == nil:
			got[k] = r.GetObject().GetAssignment()
		}
	}
	return got, gone
}

// handoverPoll is how often a pending handover reads the assignment it
// hands over, to see its replacement run.
const handoverPoll = 200 * time.Millisecond

// handoverLoop follows the assignments this agent hands over: its feed
// no longer carries them once they moved.
func (a *Agent) handoverLoop(ctx context.Context) {
	every(ctx, handoverPoll, func() { a.followHandovers(ctx) })
}

// followHandovers reads the assignments this agent hands over once.
func (a *Agent) followHandovers(ctx context.Context) {
	keys := a.handoverKeys()
	if len(keys) == 0 {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	got, gone := a.fetchAssignments(gctx, keys)
	cancel()
	changed := false
	a.mu.Lock()
	for k := range gone {
		if _, ok := a.handover[k]; ok {
			delete(a.handover, k)
			changed = true
		}
	}
	for k, to := range got {
		if h := a.handover[k]; h != nil && to.GetSpec().GetAgent() != a.cfg.Name && !proto.Equal(h.to, to) {
			h.to = to
			changed = true
		}
	}
	a.mu.Unlock()
	if changed {
		a.poke()
	}
}

// handoverTimeout bounds how long a drained instance waits for its
// replacement to run before stopping anyway.
const handoverTimeout = 30 * time.Second

type handoverState struct {
	// to is the assignment as it now stands (on its new agent).
	to    *meshfedv1.Assignment
	since time.Time
}

// drainingLocked reports whether this agent's cluster is cordoned.
func (a *Agent) drainingLocked() bool {
	return a.clusters[a.cfg.Cluster].GetSpec().GetCordoned()
}

// applyEventLocked folds one watch event into desired/clusters and reports
// whether anything this agent cares about changed.
func (a *Agent) applyEventLocked(ev *meshfedv1.Event) bool {
	o := ev.GetObject()
	del := ev.GetType() == meshfedv1.EventType_EVENT_TYPE_DELETE
	switch {
	case o.GetCluster() != nil:
		name := o.GetCluster().GetMetadata().GetName()
		if del {
			delete(a.clusters, name)
		} else {
			a.clusters[name] = o.GetCluster()
		}
		return true
	case o.GetAssignment() != nil:
		k := objects.KeyOf(o)
		mine := !del && o.GetAssignment().GetSpec().GetAgent() == a.cfg.Name
		if h, ok := a.handover[k]; ok && !mine {
			if del {
				delete(a.handover, k)
			} else {
				h.to = o.GetAssignment() // the replacement's status
			}
			return true
		}
		_, had := a.desired[k]
		if !mine && !had {
			return false
		}
		if mine {
			delete(a.handover, k)
			old := a.desired[k]
			a.desired[k] = o.GetAssignment()
			// Status-only changes (our own reports) need no reconcile.
			return old == nil || !proto.Equal(old.GetSpec(), o.GetAssignment().GetSpec())
		}
		delete(a.desired, k)
		if !del && (a.drainingLocked() || o.GetAssignment().GetSpec().GetHandover() == a.cfg.Name) {
			// Drained or rebalanced away: make before break.
			a.handover[k] = &handoverState{to: o.GetAssignment(), since: a.cfg.Now()}
		}
		return true
	}
	return false
}

// reconcileLoop diffs desired against running on every change, and fully
// at least every ResyncInterval.
func (a *Agent) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ResyncInterval)
	defer t.Stop()
	leaseCheck := time.NewTicker(100 * time.Millisecond)
	defer leaseCheck.Stop()
	valid := true
	for {
		a.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-t.C:
		case <-leaseCheck.C:
			// Stop instances as soon as the lease lapses, even if no
			// heartbeat attempt returned yet.
			now := a.leaseValid()
			if now == valid {
				continue
			}
			valid = now
			if !now {
				a.markStale()
			}
		}
	}
}

// reconcile makes running match desired: stop what is no longer assigned
// (or fenced), start what is assigned and admitted by the epoch book,
// restart what changed. Idempotent.
func (a *Agent) reconcile(ctx context.Context) {
	fenced := !a.leaseValid() || a.staleView.Load()
	a.mu.Lock()
	desired := make(map[string]*meshfedv1.Assignment, len(a.desired))
	for k, v := range a.desired {
		desired[k] = v
	}
	a.mu.Unlock()

	var toStop []*instance
	a.mu.Lock()
	for k, inst := range a.running {
		d, ok := desired[k]
		if !fenced && !ok {
			if h := a.handover[k]; h != nil && h.to.GetStatus().GetState() != federation.StateRunning && a.cfg.Now().Sub(h.since) < handoverTimeout {
				continue // keep running until the replacement runs
			}
		}
		if fenced || !ok || d.GetSpec().GetEpoch() != inst.epoch {
			toStop = append(toStop, inst)
			delete(a.running, k)
			delete(a.handover, k)
		}
	}
	a.mu.Unlock()
	for _, inst := range toStop {
		reason := "no longer assigned"
		if fenced {
			reason = "lease expired or view not yet re-synced"
		}
		inst.stop(reason)
	}
	if fenced {
		return
	}
	for k, d := range desired {
		a.mu.Lock()
		_, running := a.running[k]
		a.mu.Unlock()
		if running {
			continue
		}
		ok, err := a.epochs.admit(k, d.GetSpec().GetEpoch())
		if err != nil {
			a.logger.Error("record epoch", "assignment", k, "err", err)
			continue
		}
		if !ok {
			a.logger.Warn("refusing stale assignment", "assignment", k, "epoch", d.GetSpec().GetEpoch())
			continue
		}
		inst := startInstance(ctx, a, k, d)
		a.mu.Lock()
		a.running[k] = inst
		a.mu.Unlock()
	}
}

func (a *Agent) stopAll(reason string) {
	a.mu.Lock()
	insts := make([]*instance, 0, len(a.running))
	for k, inst := range a.running {
		insts = append(insts, inst)
		delete(a.running, k)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Add(1)
		go func() { defer wg.Done(); inst.stop(reason) }()
	}
	wg.Wait()
}

// reportLoop sends every running instance's status.
func (a *Agent) reportLoop(ctx context.Context) {
	every(ctx, a.cfg.ReportInterval, func() { a.reportOnce(ctx) })
}

// reportOnce sends every running instance's status once.
func (a *Agent) reportOnce(ctx context.Context) {
	a.mu.Lock()
	req := &meshfedv1.ReportStatusRequest{Agent: a.cfg.Name}
	for _, inst := range a.running {
		md := inst.asg.GetMetadata()
		req.Instances = append(req.Instances, &meshfedv1.InstanceReport{
			Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName(), Epoch: inst.epoch, Status: inst.status(),
		})
	}
	a.mu.Unlock()
	if len(req.Instances) == 0 {
		return
	}
	err := a.cp.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := meshfedv1.NewAgentServiceClient(conn).ReportStatus(rctx, req)
		return err
	})
	if err != nil && ctx.Err() == nil {
		a.logger.Debug("report status", "err", err)
	}
}

// cluster returns a cluster definition by name.
func (a *Agent) cluster(name string) (*meshfedv1.Cluster, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.clusters[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q is not defined in the control plane", name)
	}
	return c, nil
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}
