package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/lincheck"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// The linearizability test: concurrent clients put, read and
// compare-and-set a few Cluster objects through the fail-over client while a
// seeded nemesis, at random moments, kills the Raft leader (Shutdown) and
// restarts it on the same data dir, Raft address and gRPC address, or makes
// it transfer leadership. Porcupine checks each run's history against
// lincheck.Model, one register per object. Runs share one cluster and use
// their own objects. The same check over `meshfed server` processes, with
// SIGKILL and SIGSTOP, is e2e/linearizability_test.go.
//
//	MESHFED_LIN_RUNS     number of runs (default 20; 8 under -race)
//	MESHFED_LIN_SEED     seed of the first run; run i uses seed+i (default: clock)
//	MESHFED_LIN_DURATION length of each run's workload (default 2s)
//	MESHFED_LIN_STALE_READS=1 reads with stale=true: a deliberately broken
//	                     read path the checker must catch (a self-check)
//	MESHFED_LIN_TRANSFERS=0 turns off leadership transfers (on by default:
//	                     one fault in three). Servers run Raft without
//	                     pipelined replication, whose Shutdown deadlock in
//	                     hashicorp/raft v1.7.3 transfers used to hit
//	                     (TestRaftShutdownPipelineDeadlock).
//
// Each call goes through client.Do like client.Apply and client.Get, and
// every attempt Do makes is recorded as an operation of its own, since Do
// sends a write to the next server after a refusal. Strict: an attempt that
// failed with Unavailable carrying NOT_ACCEPTED is recorded as not applied,
// as the API promises; if it was applied, a read of its value fails the
// check and explain names it. Writes that end in Unknown, DeadlineExceeded
// or an Unavailable without NOT_ACCEPTED (the connection broke mid-call,
// which client.Do reports as Unknown) have an unknown outcome: porcupine may
// take them as applied at any point after their call, or never. Reads that
// fail are left out.
//
// The seed fixes the nemesis' schedule and each client's choice of
// operations; thread timing still varies, so a failing seed reproduces the
// schedule, not necessarily the same interleaving. On a violation the
// operations on the failing registers and the porcupine visualization are
// written to the test's artifact directory (kept with
// `go test -artifacts -outputdir DIR`).

const (
	linClients   = 6
	linKeys      = 3
	linOpTimeout = 2 * time.Second
)

func TestLinearizabilityUnderLeaderFailures(t *testing.T) {
	runs := linEnvInt(t, "MESHFED_LIN_RUNS", 20)
	if linRaceEnabled && os.Getenv("MESHFED_LIN_RUNS") == "" {
		runs = 8 // the race detector makes each run several times slower
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MESHFED_LIN_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MESHFED_LIN_SEED=%q: %v", s, err)
		}
		seed = v
	}
	dur := 2 * time.Second
	if s := os.Getenv("MESHFED_LIN_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MESHFED_LIN_DURATION=%q: %v", s, err)
		}
		dur = d
	}
	mode := linMode{
		staleReads: os.Getenv("MESHFED_LIN_STALE_READS") == "1",
		transfers:  os.Getenv("MESHFED_LIN_TRANSFERS") != "0",
	}
	t.Logf("%d runs of %s, first seed %d (reproduce: MESHFED_LIN_SEED=%d)", runs, dur, seed, seed)

	lc := newLinCluster(t)
	clients := make([]*client.Client, linClients)
	for i := range clients {
		c, err := client.New(lc.grpcAddrs())
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	start := time.Now()
	var total linFaults
	for run := range runs {
		runSeed := seed + uint64(run)
		st := lc.run(t, run, runSeed, dur, clients, mode)
		if t.Failed() {
			t.FailNow()
		}
		total.kills += st.faults.kills
		total.transfers += st.faults.transfers
		t.Logf("run %d seed %d: %s", run, runSeed, &st)
		for cause, n := range st.unknown {
			t.Logf("    %d unknown: %s", n, cause)
		}
		if st.gets == 0 || st.puts+st.casOK == 0 {
			t.Fatalf("run %d seed %d made no progress: %s", run, runSeed, &st)
		}
		res, info := porcupine.CheckOperationsVerbose(lincheck.Model, st.history, 30*time.Second)
		switch res {
		case porcupine.Ok:
		case porcupine.Illegal:
			path := filepath.Join(t.ArtifactDir(), fmt.Sprintf("linearizability-seed-%d.html", runSeed))
			st.explain(t, t.ArtifactDir(), runSeed)
			if err := porcupine.VisualizePath(lincheck.Model, info, path); err != nil {
				t.Logf("write visualization: %v", err)
			}
			t.Fatalf("run %d (MESHFED_LIN_SEED=%d MESHFED_LIN_RUNS=1): history of %d operations is not linearizable; visualization: %s",
				run, runSeed, len(st.history), path)
		default:
			t.Fatalf("run %d seed %d: checker gave up on %d operations", run, runSeed, len(st.history))
		}
	}
	if total.kills+total.transfers < runs {
		t.Fatalf("the nemesis replaced %d leaders in %d runs: too few to test fail-over", total.kills+total.transfers, runs)
	}
	t.Logf("%d runs, %d leader kills, %d leadership transfers, 0 violations in %s",
		runs, total.kills, total.transfers, time.Since(start).Round(time.Millisecond))
}

func linEnvInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// linCluster is a 3-node cluster whose nodes the nemesis replaces.
type linCluster struct {
	// mu guards servers; a nil entry is a node the nemesis has stopped.
	mu      sync.Mutex
	servers []*Server
}

// linShutdownTimeout bounds a server's Shutdown: a hung shutdown fails the
// test instead of hanging it.
const linShutdownTimeout = 30 * time.Second

// newLinCluster starts three servers as TestCluster does, but owns their
// shutdown (bounded by linShutdownTimeout), since the nemesis replaces them.
func newLinCluster(t *testing.T) *linCluster {
	lc := &linCluster{}
	t.Cleanup(func() {
		lc.mu.Lock()
		defer lc.mu.Unlock()
		for _, s := range lc.servers {
			if s != nil {
				if err := linShutdown(s); err != nil {
					t.Error(err)
				}
			}
		}
	})
	for i := 1; i <= 3; i++ {
		cfg := TestConfig(t, fmt.Sprintf("s%d", i))
		if i > 1 {
			cfg.Join = []string{lc.servers[0].GRPCAddr()}
		}
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.NodeID, err)
		}
		lc.mu.Lock()
		lc.servers = append(lc.servers, s)
		lc.mu.Unlock()
	}
	WaitFor(t, 15*time.Second, func() error {
		for _, s := range lc.servers {
			if n := len(s.State().Members()); n != 3 {
				return fmt.Errorf("%s knows %d of 3 members", s.NodeID(), n)
			}
		}
		return nil
	})
	WaitForLeader(t, lc.servers...)
	return lc
}

// linShutdown shuts s down, giving up after linShutdownTimeout.
func linShutdown(s *Server) error {
	done := make(chan error, 1)
	go func() { done <- s.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown %s: %w", s.NodeID(), err)
		}
		return nil
	case <-time.After(linShutdownTimeout):
		return fmt.Errorf("shutdown of %s hung for %s: hashicorp/raft's pipelined replication can "+
			"deadlock once a leader is deposed (pipelineDecode returns, pipelineSend blocks on a full "+
			"pipeline), and Raft's Shutdown waits for it", s.NodeID(), linShutdownTimeout)
	}
}

func (lc *linCluster) grpcAddrs() []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []string
	for _, s := range lc.servers {
		out = append(out, s.GRPCAddr())
	}
	return out
}

func (lc *linCluster) live() []*Server {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []*Server
	for _, s := range lc.servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// kill stops the current leader, if there is one, and returns the
// configuration to restart it with (same data dir, node ID and addresses).
func (lc *linCluster) kill() (int, Config, bool, error) {
	lc.mu.Lock()
	idx := -1
	for i, s := range lc.servers {
		if s != nil && s.IsLeader() {
			idx = i
		}
	}
	if idx < 0 {
		lc.mu.Unlock()
		return -1, Config{}, false, nil
	}
	s := lc.servers[idx]
	lc.servers[idx] = nil
	lc.mu.Unlock()
	cfg := s.cfg
	cfg.RaftAddr, cfg.GRPCAddr = s.RaftAddr(), s.GRPCAddr()
	return idx, cfg, true, linShutdown(s)
}

// restart starts a stopped node again; the ports it held were just released,
// so binding them is retried for a while.
func (lc *linCluster) restart(idx int, cfg Config) error {
	var s *Server
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if s, err = NewServer(cfg); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("restart %s: %w", cfg.NodeID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lc.mu.Lock()
	lc.servers[idx] = s
	lc.mu.Unlock()
	return nil
}

// linFaults counts what the nemesis did in a run.
type linFaults struct {
	kills, transfers int
}

// transfer asks the current leader, if there is one, to hand leadership to
// another node. The old leader stays up, connected to clients and other
// servers, and learns of its successor only from Raft messages.
func (lc *linCluster) transfer() bool {
	lc.mu.Lock()
	var leader *Server
	for _, s := range lc.servers {
		if s != nil && s.IsLeader() {
			leader = s
		}
	}
	lc.mu.Unlock()
	if leader == nil {
		return false
	}
	// Errors (no suitable follower, the leader stepped down meanwhile)
	// just mean nothing happened. Raft bounds the transfer by its election
	// timeout; the test does not rely on that to finish.
	done := make(chan error, 1)
	go func() { done <- leader.Raft().LeadershipTransfer().Error() }()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(5 * time.Second):
		return false
	}
}

// nemesis, at random intervals until stop closes, kills the leader and
// restarts it after a random pause or, with transfers, one time in three
// makes it hand over leadership instead.
// It leaves every node running, or reports (t.Errorf) the one it could not
// restart and returns.
func (lc *linCluster) nemesis(t *testing.T, rng *rand.Rand, stop <-chan struct{}, transfers bool) (f linFaults) {
	for {
		select {
		case <-stop:
			return f
		case <-time.After(time.Duration(100+rng.IntN(600)) * time.Millisecond):
		}
		// Every draw is made whatever happens next, so a seed's schedule
		// does not depend on timing.
		kill := rng.IntN(3) > 0 || !transfers
		pause := time.Duration(rng.IntN(400)) * time.Millisecond
		if !kill {
			if lc.transfer() {
				f.transfers++
			}
			continue
		}
		idx, cfg, ok, err := lc.kill()
		if err != nil {
			t.Errorf("nemesis: %v", err)
			return f
		}
		if !ok {
			continue
		}
		f.kills++
		select {
		case <-stop:
		case <-time.After(pause):
		}
		if err := lc.restart(idx, cfg); err != nil {
			t.Errorf("nemesis: %v", err)
			return f
		}
	}
}

// linMode holds the switches of a run.
type linMode struct {
	// staleReads reads with stale=true: a broken read path the checker
	// must catch (MESHFED_LIN_STALE_READS=1).
	staleReads bool
	// transfers lets the nemesis also make the leader hand over leadership
	// (on unless MESHFED_LIN_TRANSFERS=0).
	transfers bool
}

type linRunStats struct {
	history []porcupine.Operation
	faults  linFaults
	// Operations recorded, by kind and outcome.
	gets, puts, putsUnknown       int
	casOK, casAborted, casUnknown int
	// failed counts calls left out of the history.
	failed int
	// dropped are the write attempts left out of the history because a
	// server refused them (Unavailable with NOT_ACCEPTED), by value, with
	// the error.
	dropped map[string][]string
	// unknown counts the causes of unknown outcomes.
	unknown map[string]int
}

func (st *linRunStats) String() string {
	return fmt.Sprintf("%d kills, %d transfers; gets %d, puts %d (%d unknown), cas %d ok / %d aborted / %d unknown; %d calls left out",
		st.faults.kills, st.faults.transfers, st.gets, st.puts, st.putsUnknown, st.casOK, st.casAborted, st.casUnknown, st.failed)
}

// linRecorder collects one run's operations from all clients.
type linRecorder struct {
	start time.Time
	// mu guards st.
	mu sync.Mutex
	st linRunStats
}

func (r *linRecorder) now() int64 { return int64(time.Since(r.start)) }

func (r *linRecorder) add(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.history = append(r.st.history, op)
	in, out := op.Input.(lincheck.Input), op.Output.(lincheck.Output)
	switch {
	case in.Op == lincheck.Get:
		r.st.gets++
	case in.Op == lincheck.Put:
		r.st.puts++
		if out.Unknown {
			r.st.putsUnknown++
		}
	case out.Unknown:
		r.st.casUnknown++
	case out.OK:
		r.st.casOK++
	default:
		r.st.casAborted++
	}
}

func (r *linRecorder) fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.failed++
}

// unknownCause counts the errors that left writes with an unknown outcome.
func (r *linRecorder) unknownCause(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st.unknown == nil {
		r.st.unknown = map[string]int{}
	}
	msg := status.Convert(err).Message()
	if i := strings.LastIndex(msg, ": "); i >= 0 && status.Code(err) != codes.Unavailable {
		msg = msg[:i]
	}
	r.st.unknown[status.Code(err).String()+": "+msg]++
}

func (r *linRecorder) drop(value string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.failed++
	if r.st.dropped == nil {
		r.st.dropped = map[string][]string{}
	}
	r.st.dropped[value] = append(r.st.dropped[value], status.Convert(err).Message())
}

// explain writes the operations on the registers that fail the check to
// dir, in call order, with the server each went to, and logs reads that saw
// the value of a write attempt left out of the history as refused.
func (st *linRunStats) explain(t *testing.T, dir string, seed uint64) {
	var b strings.Builder
	for _, part := range lincheck.Model.Partition(st.history) {
		if porcupine.CheckOperationsTimeout(lincheck.Model, part, 10*time.Second) == porcupine.Ok {
			continue
		}
		sorted := slices.Clone(part)
		slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range sorted {
			ret := "never"
			if op.Return != math.MaxInt64 {
				ret = time.Duration(op.Return).String()
			}
			fmt.Fprintf(&b, "%s..%s c%d %s via %v\n", time.Duration(op.Call), ret, op.ClientId, lincheck.Model.DescribeOperation(op.Input, op.Output), op.Metadata)
		}
		b.WriteString("\n")
	}
	path := filepath.Join(dir, fmt.Sprintf("linearizability-seed-%d.txt", seed))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Logf("write history: %v", err)
	} else {
		t.Logf("operations on the failing registers: %s", path)
	}
	written := map[string]bool{}
	for _, op := range st.history {
		if in := op.Input.(lincheck.Input); in.Op != lincheck.Get {
			written[in.Value] = true
		}
	}
	for _, op := range st.history {
		in, out := op.Input.(lincheck.Input), op.Output.(lincheck.Output)
		if msgs, ok := st.dropped[out.Value]; ok && in.Op == lincheck.Get && !written[out.Value] {
			t.Logf("get(%s) by client %d read %q, written by a call whose every attempt was refused (NOT_ACCEPTED): %q", in.Key, op.ClientId, out.Value, msgs)
		}
	}
}

func (lc *linCluster) run(t *testing.T, run int, seed uint64, dur time.Duration, clients []*client.Client, mode linMode) linRunStats {
	keys := make([]string, linKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("lin-r%d-k%d", run, i)
	}
	rec := &linRecorder{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id, c := range clients {
		rng := rand.New(rand.NewPCG(seed, uint64(id)+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			linClient(t, c, id, run, rng, keys, rec, stop, mode)
		}()
	}
	faults := make(chan linFaults, 1)
	go func() { faults <- lc.nemesis(t, rand.New(rand.NewPCG(seed, 0)), stop, mode.transfers) }()
	timer := time.NewTimer(dur)
	<-timer.C
	close(stop)
	wg.Wait()
	rec.st.faults = <-faults
	// Start the next run from a cluster with all nodes up and a leader, so
	// runs do not eat into each other.
	WaitForLeader(t, lc.live()...)
	return rec.st
}

// linClient issues random operations until stop closes. It remembers, per
// key, the last value it saw and that value's resourceVersion, which its
// CAS operations use as their precondition.
//
// It calls through client.Do, as client.Apply and client.Get do, but
// records every attempt Do makes as an operation of its own: Do moves on to
// the next server after an Unavailable, so one call may reach the leader
// more than once.
func linClient(t *testing.T, c *client.Client, id, run int, rng *rand.Rand, keys []string, rec *linRecorder, stop <-chan struct{}, mode linMode) {
	type seen struct {
		value string
		rv    uint64
	}
	known := map[string]seen{}
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		key := keys[rng.IntN(len(keys))]
		ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		if p := rng.IntN(10); p < 4 {
			in := lincheck.Input{Op: lincheck.Get, Key: key}
			_ = c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
				if !linSendable(ctx, conn) {
					rec.fail()
					return errLinNotConnected
				}
				call := rec.now()
				resp, err := client.Objects(conn).Get(ctx, &meshfedv1.GetRequest{Kind: "Cluster", Name: key, Stale: mode.staleReads})
				ret := rec.now()
				var out lincheck.Output
				switch status.Code(err) {
				case codes.OK:
					var rv uint64
					out.Value, rv = lincheck.Read(resp.GetObject())
					known[key] = seen{out.Value, rv}
				case codes.NotFound:
					delete(known, key)
				default:
					// A failed read changed nothing: leave it out.
					rec.fail()
					return err
				}
				rec.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret, Metadata: conn.Target()})
				return err
			})
		} else {
			in := lincheck.Input{Op: lincheck.Put, Key: key, Value: fmt.Sprintf("r%d-c%d-%d", run, id, seq)}
			var rv uint64
			if prev, ok := known[key]; ok && p >= 7 {
				in.Op, in.Expect, rv = lincheck.CAS, prev.value, prev.rv
			}
			delete(known, key)
			req := &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{lincheck.Object(key, in.Value, rv)}}
			_ = c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
				if !linSendable(ctx, conn) {
					rec.fail()
					return errLinNotConnected
				}
				call := rec.now()
				resp, err := client.Objects(conn).Apply(ctx, req)
				ret := rec.now()
				var out lincheck.Output
				switch code := status.Code(err); {
				case err == nil:
					out.OK = true
					known[key] = seen{in.Value, objects.Meta(resp.GetObjects()[0]).GetResourceVersion()}
				case code == codes.Aborted && in.Op == lincheck.CAS:
				case code == codes.Unavailable && notAcceptedStatus(err):
					// Strict: the server refused it before taking it on.
					rec.drop(in.Value, err)
					return err
				case code == codes.InvalidArgument || code == codes.Aborted:
					t.Errorf("client %d: write %s: %v", id, key, err)
					rec.fail()
					return err
				default:
					// Unknown, DeadlineExceeded, an Unavailable from a
					// broken connection...: the write may have applied,
					// now or later.
					out.Unknown = true
					ret = math.MaxInt64
					rec.unknownCause(err)
				}
				rec.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret, Metadata: conn.Target()})
				return err
			})
		}
		cancel()
	}
}

// errLinNotConnected fails an attempt the test client did not send.
var errLinNotConnected = status.Error(codes.Unavailable, "not connected")

// linSendable reports whether conn is connected, giving it a moment to
// connect. The test sends only on a ready connection, so an attempt that
// could not have been sent is left out of the history instead of being
// recorded as a write of unknown outcome (which slows the checker down).
func linSendable(ctx context.Context, conn *grpc.ClientConn) bool {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	for {
		st := conn.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, st) {
			return false
		}
	}
}
