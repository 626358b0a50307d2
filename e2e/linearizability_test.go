//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/lincheck"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The linearizability test over processes: three `meshfed server`
// processes; six clients (the client package, each starting at a different
// server) get, put and compare-and-set (Apply with the resourceVersion last
// read) a few Cluster objects; a seeded nemesis, in the test's goroutine,
// SIGKILLs and restarts, SIGSTOPs and SIGCONTs the leader or a follower,
// and makes the leader transfer leadership (SIGUSR1). Porcupine checks each
// run's history against lincheck.Model.
//
// Strict: a write that failed with Unavailable is recorded as not applied,
// as the API promises (the servers answer Unavailable only for a request
// they refused before taking it into the Raft log, and the client only for
// attempts that were all refused so or never sent). If such a write was
// applied, a read sees its value and the check fails. Writes that failed
// with any other code but Aborted (a refused compare-and-set) have an
// unknown outcome: porcupine may take them as applied at any point after
// their call, or never. Reads that fail are left out.
//
//	MESHFED_E2E_LIN_RUNS      runs (default 2)
//	MESHFED_E2E_LIN_DURATION  workload per run (default 20s)
//	MESHFED_E2E_LIN_SEED      seed of the first run; run i uses seed+i
//
// The acceptance configuration is 20 runs of 30 s (docs/e2e.md).

const (
	linClients = 6
	linKeys    = 4
	// linOpTimeout bounds one client call (all its attempts).
	linOpTimeout = 3 * time.Second
	// linCheckTimeout bounds porcupine on one run.
	linCheckTimeout = 3 * time.Minute
)

func TestLinearizabilityProcesses(t *testing.T) {
	cfg := linConfigFromEnv(t)
	t.Logf("%d runs of %s, first seed %d (reproduce: MESHFED_E2E_LIN_SEED=%d)", cfg.runs, cfg.dur, cfg.seed, cfg.seed)
	lc := newLinProcCluster(t)
	var total linTotals
	for run := range cfg.runs {
		seed := cfg.seed + uint64(run)
		st := lc.run(t, run, seed, cfg.dur, false)
		res := st.check(t, seed)
		total.add(st)
		t.Logf("run %d seed %d: %s; check: %s", run, seed, st, res)
		if res != porcupine.Ok {
			t.Fatalf("run %d (MESHFED_E2E_LIN_SEED=%d MESHFED_E2E_LIN_RUNS=1): history of %d operations is %s", run, seed, len(st.history), res)
		}
		if st.gets == 0 || st.writesOK == 0 {
			t.Fatalf("run %d seed %d made no progress: %s", run, seed, st)
		}
		if st.events.total() == 0 {
			t.Fatalf("run %d seed %d: the nemesis did nothing", run, seed)
		}
	}
	t.Logf("total: %d runs of %s, %s, 0 violations", cfg.runs, cfg.dur, &total)
}

// TestLinearizabilityCatchesStaleReads is the checker's self-check: the
// same workload reads with stale=true (a server's local state, without the
// read barrier; followers lag the leader), and the check must fail.
func TestLinearizabilityCatchesStaleReads(t *testing.T) {
	cfg := linConfigFromEnv(t)
	lc := newLinProcCluster(t)
	const maxRuns = 3
	for run := range maxRuns {
		seed := cfg.seed + uint64(run)
		st := lc.run(t, run, seed, 10*time.Second, true)
		res := st.check(t, seed)
		t.Logf("stale reads, run %d seed %d: %s; check: %s", run, seed, st, res)
		if res == porcupine.Illegal {
			return
		}
	}
	t.Fatalf("%d runs with stale reads passed the check: the checker does not catch stale reads", maxRuns)
}

type linConfig struct {
	runs int
	dur  time.Duration
	seed uint64
}

func linConfigFromEnv(t *testing.T) linConfig {
	cfg := linConfig{runs: 2, dur: 20 * time.Second, seed: uint64(time.Now().UnixNano())}
	if s := os.Getenv("MESHFED_E2E_LIN_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MESHFED_E2E_LIN_RUNS=%q: want a positive integer", s)
		}
		cfg.runs = n
	}
	if s := os.Getenv("MESHFED_E2E_LIN_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("MESHFED_E2E_LIN_DURATION=%q: want a positive duration like 30s", s)
		}
		cfg.dur = d
	}
	if s := os.Getenv("MESHFED_E2E_LIN_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MESHFED_E2E_LIN_SEED=%q: %v", s, err)
		}
		cfg.seed = v
	}
	return cfg
}

// linProcCluster is a three-process group, its clients and their
// connections for the nemesis' leader look-ups.
type linProcCluster struct {
	c       *cluster
	clients []*client.Client
	// peers has one client per server, for ListPeers.
	peers []*client.Client
	// paused marks servers the nemesis has SIGSTOPped (test goroutine only).
	paused map[*server]bool
}

func newLinProcCluster(t *testing.T) *linProcCluster {
	c := startBootstrapped(t, 3)
	lc := &linProcCluster{c: c, paused: map[*server]bool{}}
	dial := c.dialOptions(t)
	for i := range linClients {
		// Each client starts at a different server.
		var addrs []string
		for j := range c.servers {
			addrs = append(addrs, c.servers[(i+j)%len(c.servers)].grpcAddr)
		}
		cl, err := client.New(addrs, dial...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		lc.clients = append(lc.clients, cl)
	}
	for _, s := range c.servers {
		cl, err := client.New([]string{s.grpcAddr}, dial...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		lc.peers = append(lc.peers, cl)
	}
	return lc
}

// leader returns the server a running, unpaused server names as leader, or nil.
func (lc *linProcCluster) leader() *server {
	for i, s := range lc.c.servers {
		if !s.running() || lc.paused[s] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var resp *meshfedv1.ListPeersResponse
		err := lc.peers[i].DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
			resp, err = client.Operator(conn).ListPeers(ctx, &meshfedv1.ListPeersRequest{})
			return err
		})
		cancel()
		if err != nil {
			continue
		}
		for _, p := range resp.GetPeers() {
			if p.GetLeader() {
				for _, s := range lc.c.servers {
					if s.id == p.GetId() {
						return s
					}
				}
			}
		}
	}
	return nil
}

// linEvents counts what the nemesis did.
type linEvents struct {
	killLeader, killFollower   int
	pauseLeader, pauseFollower int
	// transfers moved leadership; transfersNoop were asked for (SIGUSR1)
	// but no other server led within 3 s.
	transfers, transfersNoop int
}

func (e linEvents) total() int {
	return e.killLeader + e.killFollower + e.pauseLeader + e.pauseFollower + e.transfers
}

func (e linEvents) String() string {
	return fmt.Sprintf("SIGKILL %d leader / %d follower, SIGSTOP %d leader / %d follower, %d leadership transfers (%d asked for without effect)",
		e.killLeader, e.killFollower, e.pauseLeader, e.pauseFollower, e.transfers, e.transfersNoop)
}

// nemesis injects faults until the deadline, one at a time, each followed
// by a wait for the group to be whole again, so a majority is usually up.
// Every random draw is made whatever happens, so a seed fixes the schedule.
func (lc *linProcCluster) nemesis(t *testing.T, rng *rand.Rand, until time.Time) linEvents {
	var ev linEvents
	for time.Now().Before(until) {
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		action, toLeader := rng.IntN(5), rng.IntN(2) == 0
		pick := rng.IntN(len(lc.c.servers))
		pause := time.Duration(100+rng.IntN(2400)) * time.Millisecond
		if !time.Now().Before(until) {
			break
		}
		leader := lc.leader()
		target := lc.c.servers[pick]
		if toLeader && leader != nil {
			target = leader
		} else if target == leader {
			target = lc.c.servers[(pick+1)%len(lc.c.servers)]
		}
		isLeader := target == leader
		switch {
		case action <= 1: // SIGKILL, restart after the pause
			target.p.cmd.Process.Kill()
			<-target.p.done
			if isLeader {
				ev.killLeader++
			} else {
				ev.killFollower++
			}
			time.Sleep(pause)
			target.start()
		case action <= 3: // SIGSTOP for the pause, then SIGCONT
			if err := target.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatalf("SIGSTOP %s: %v", target.id, err)
			}
			lc.paused[target] = true
			if isLeader {
				ev.pauseLeader++
			} else {
				ev.pauseFollower++
			}
			time.Sleep(pause)
			lc.resume(t, target)
		default: // leadership transfer
			if leader == nil {
				continue
			}
			if err := leader.p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatalf("SIGUSR1 %s: %v", leader.id, err)
			}
			// Count the transfer once another server leads.
			moved := false
			for end := time.Now().Add(3 * time.Second); !moved && time.Now().Before(end); time.Sleep(pollInterval) {
				l := lc.leader()
				moved = l != nil && l != leader
			}
			if moved {
				ev.transfers++
			} else {
				ev.transfersNoop++
			}
		}
		lc.waitWhole(t, 15*time.Second)
	}
	return ev
}

func (lc *linProcCluster) resume(t *testing.T, s *server) {
	if err := s.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", s.id, err)
	}
	delete(lc.paused, s)
}

// waitWhole waits, up to timeout, for every server to answer /readyz 200
// (a leader is ready, a follower in contact and caught up). It restarts a
// server that exited, and it does not fail the test: faults may meet a
// group that is not whole.
func (lc *linProcCluster) waitWhole(t *testing.T, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		whole := true
		for _, s := range lc.c.servers {
			if !s.running() {
				t.Logf("%s exited (%v); restarting it\n%s", s.id, s.p.err, s.logTail())
				s.start()
			}
			if ok, _ := s.readyz(); !ok {
				whole = false
			}
		}
		if whole {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// linStats is one run's history and counts.
type linStats struct {
	history []porcupine.Operation
	events  linEvents
	// gets recorded; readsFailed left out.
	gets, readsFailed int
	// writesOK applied, casRefused refused, writesUnknown of unknown
	// outcome (recorded), writesRefused failed with Unavailable (not
	// recorded: not applied).
	writesOK, casRefused, writesUnknown, writesRefused int
	// refused maps the value of each write that failed with Unavailable to
	// the error, to name it if a read sees it.
	refused map[string]string
	// unknownBy counts unknown outcomes by code.
	unknownBy map[codes.Code]int
}

func (st *linStats) String() string {
	var unknown []string
	for c, n := range st.unknownBy {
		unknown = append(unknown, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(unknown)
	return fmt.Sprintf("%d operations checked (%d gets, %d writes applied, %d cas refused, %d writes unknown [%s]); %d writes refused with Unavailable and %d failed reads left out; nemesis: %s",
		len(st.history), st.gets, st.writesOK, st.casRefused, st.writesUnknown, strings.Join(unknown, ", "), st.writesRefused, st.readsFailed, st.events)
}

// linTotals sums runs.
type linTotals struct {
	ops, refused, unknown int
	events                linEvents
}

func (tt *linTotals) add(st *linStats) {
	tt.ops += len(st.history)
	tt.refused += st.writesRefused
	tt.unknown += st.writesUnknown
	tt.events.killLeader += st.events.killLeader
	tt.events.killFollower += st.events.killFollower
	tt.events.pauseLeader += st.events.pauseLeader
	tt.events.pauseFollower += st.events.pauseFollower
	tt.events.transfers += st.events.transfers
	tt.events.transfersNoop += st.events.transfersNoop
}

func (tt *linTotals) String() string {
	return fmt.Sprintf("%d operations checked, %d writes refused with Unavailable (strict: not applied), %d writes of unknown outcome; nemesis: %s (%d events)",
		tt.ops, tt.refused, tt.unknown, tt.events, tt.events.total())
}

// linRecorder collects one run's operations from all clients.
type linRecorder struct {
	start time.Time
	// mu guards st.
	mu sync.Mutex
	st linStats
}

func (r *linRecorder) now() int64 { return int64(time.Since(r.start)) }

func (r *linRecorder) add(op porcupine.Operation, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.history = append(r.st.history, op)
	in, out := op.Input.(lincheck.Input), op.Output.(lincheck.Output)
	switch {
	case in.Op == lincheck.Get:
		r.st.gets++
	case out.Unknown:
		r.st.writesUnknown++
		if r.st.unknownBy == nil {
			r.st.unknownBy = map[codes.Code]int{}
		}
		r.st.unknownBy[status.Code(err)]++
	case out.OK || in.Op == lincheck.Put:
		r.st.writesOK++
	default:
		r.st.casRefused++
	}
}

func (r *linRecorder) readFailed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.readsFailed++
}

func (r *linRecorder) refuse(value string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.writesRefused++
	if r.st.refused == nil {
		r.st.refused = map[string]string{}
	}
	r.st.refused[value] = status.Convert(err).Message()
}

// run runs the workload and the nemesis for dur on fresh keys, then makes
// the group whole again.
func (lc *linProcCluster) run(t *testing.T, run int, seed uint64, dur time.Duration, stale bool) *linStats {
	keys := make([]string, linKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("lin-r%d-k%d", run, i)
	}
	rec := &linRecorder{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id, c := range lc.clients {
		rng := rand.New(rand.NewPCG(seed, uint64(id)+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			linProcClient(t, c, id, run, rng, keys, rec, stop, stale)
		}()
	}
	rec.st.events = lc.nemesis(t, rand.New(rand.NewPCG(seed, 0)), time.Now().Add(dur))
	close(stop)
	wg.Wait()
	for s := range lc.paused {
		lc.resume(t, s)
	}
	if !lc.waitWhole(t, readyTimeout) {
		for _, s := range lc.c.servers {
			s.waitReady()
		}
	}
	return &rec.st
}

// check runs porcupine on the history. On a violation it writes the
// porcupine visualization to the test's artifact directory and names reads
// that saw the value of a write refused with Unavailable.
func (st *linStats) check(t *testing.T, seed uint64) porcupine.CheckResult {
	res, info := porcupine.CheckOperationsVerbose(lincheck.Model, st.history, linCheckTimeout)
	if res != porcupine.Illegal {
		return res
	}
	path := filepath.Join(t.ArtifactDir(), fmt.Sprintf("linearizability-e2e-seed-%d.html", seed))
	if err := porcupine.VisualizePath(lincheck.Model, info, path); err != nil {
		t.Logf("write visualization: %v", err)
	} else {
		t.Logf("visualization of the violation: %s", path)
	}
	for _, op := range st.history {
		in, out := op.Input.(lincheck.Input), op.Output.(lincheck.Output)
		if msg, ok := st.refused[out.Value]; ok && in.Op == lincheck.Get {
			t.Logf("get(%s) by client %v read %q, written by a write refused with Unavailable: %q", in.Key, op.Metadata, out.Value, msg)
		}
	}
	return res
}

// linProcClient issues random operations until stop closes. It remembers,
// per key, the last value it saw and its resourceVersion, which its
// compare-and-sets use as their precondition.
func linProcClient(t *testing.T, c *client.Client, id, run int, rng *rand.Rand, keys []string, rec *linRecorder, stop <-chan struct{}, stale bool) {
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
		p := rng.IntN(10)
		ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		if p < 4 {
			call := rec.now()
			resp, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: "Cluster", Name: key, Stale: stale})
			ret := rec.now()
			cancel()
			var out lincheck.Output
			switch status.Code(err) {
			case codes.OK:
				var rv uint64
				out.Value, rv = lincheck.Read(resp.GetObject())
				known[key] = seen{out.Value, rv}
			case codes.NotFound:
				delete(known, key)
			default:
				rec.readFailed()
				continue
			}
			rec.add(porcupine.Operation{ClientId: id, Input: lincheck.Input{Op: lincheck.Get, Key: key}, Call: call, Output: out, Return: ret, Metadata: id}, nil)
			continue
		}
		in := lincheck.Input{Op: lincheck.Put, Key: key, Value: fmt.Sprintf("r%d-c%d-%d", run, id, seq)}
		var rv uint64
		if prev, ok := known[key]; ok && p >= 7 {
			in.Op, in.Expect, rv = lincheck.CAS, prev.value, prev.rv
		}
		delete(known, key)
		call := rec.now()
		resp, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{lincheck.Object(key, in.Value, rv)}})
		ret := rec.now()
		cancel()
		var out lincheck.Output
		switch code := status.Code(err); {
		case err == nil:
			out.OK = true
			known[key] = seen{in.Value, objects.Meta(resp.GetObjects()[0]).GetResourceVersion()}
		case code == codes.Aborted && in.Op == lincheck.CAS:
			// Refused: the resourceVersion no longer matched.
		case code == codes.Unavailable:
			// Strict: refused before any server took it on.
			rec.refuse(in.Value, err)
			continue
		case code == codes.InvalidArgument || code == codes.Aborted || code == codes.PermissionDenied || code == codes.Unauthenticated:
			t.Errorf("client %d: write %s: %v", id, key, err)
			continue
		default:
			// Unknown, DeadlineExceeded...: it may have applied, now or later.
			out.Unknown = true
			ret = math.MaxInt64
		}
		rec.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret, Metadata: id}, err)
	}
}
