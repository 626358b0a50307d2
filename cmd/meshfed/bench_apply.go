package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/bench"
	"github.com/spf13/cobra"
)

func init() { registerBench(newBenchApplyCmd) }

type benchApplyFlags struct {
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	size        int
	conns       int
	etcd        string
	inProcess   bool
	watchers    int
	watchWrites int
	dir         string
	leaderOnly  bool
	cpuProfile  string
	serverProf  string
	full        bool
	rounds      int
	// Raft settings of in-process servers; zero keeps the default.
	maxAppend     int
	batchApply    bool
	commitTimeout time.Duration
}

// raftTweak returns the Raft adjustments the flags ask for, or nil.
func (f benchApplyFlags) raftTweak() func(*raft.Config) {
	if f.maxAppend == 0 && !f.batchApply && f.commitTimeout == 0 {
		return nil
	}
	return func(c *raft.Config) {
		if f.maxAppend > 0 {
			c.MaxAppendEntries = f.maxAppend
		}
		c.BatchApplyCh = f.batchApply
		if f.commitTimeout > 0 {
			c.CommitTimeout = f.commitTimeout
		}
	}
}

func newBenchApplyCmd() *cobra.Command {
	var f benchApplyFlags
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Measure write throughput and latency of a 3-node cluster, against etcd when it is installed",
		Long: `Start a 3-node meshfed cluster on loopback (three "meshfed server" processes of
this binary, or in-process servers with --in-process), write objects of --size
bytes with each --concurrency for --duration, and print ops/s and p50/p99
latency. Then time one write reaching --watchers open watch streams.

If an etcd binary is found (--etcd, default: etcd on PATH), also start a
3-member etcd cluster on loopback, run the same load with etcd's KV.Put (the
two systems take turns at each level while both clusters are up) and print
the meshfed/etcd ratios. The servers' CPU time per write is read from /proc.
scripts/bench-etcd.sh installs etcd and runs this.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.size < 64 || f.duration <= 0 || len(f.concurrency) == 0 || f.rounds < 1 {
				return usageError{fmt.Errorf("--size must be at least 64, --duration and --rounds positive and --concurrency not empty")}
			}
			for _, c := range f.concurrency {
				if c < 1 {
					return usageError{fmt.Errorf("--concurrency %d: must be positive", c)}
				}
			}
			if f.serverProf != "" && f.inProcess {
				return usageError{fmt.Errorf("--server-cpuprofile profiles server processes; with --in-process use --cpuprofile")}
			}
			if f.raftTweak() != nil && !f.inProcess {
				return usageError{fmt.Errorf("the --raft-* flags need --in-process")}
			}
			return runBenchApply(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.IntSliceVar(&f.concurrency, "concurrency", []int{1, 16, 256}, "numbers of concurrent writers, one level after another")
	fl.DurationVar(&f.duration, "duration", 5*time.Second, "measured time per level")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured writes before each level")
	fl.IntVar(&f.size, "size", 1024, "encoded size of each object (meshfed) or value (etcd) in bytes")
	fl.IntVar(&f.conns, "conns", 32, "most gRPC connections the writers share (fewer when there are fewer writers)")
	fl.StringVar(&f.etcd, "etcd", "", `etcd binary (default: etcd on PATH; "off" skips etcd)`)
	fl.BoolVar(&f.inProcess, "in-process", false, "run the meshfed servers inside this process instead of as child processes")
	fl.IntVar(&f.watchers, "watchers", 1000, "watch streams for the fan-out measurement (0 skips it)")
	fl.IntVar(&f.watchWrites, "watch-writes", 50, "writes timed for the fan-out measurement")
	fl.IntVar(&f.rounds, "rounds", 1, "times to run every level; the table sums throughput and takes the median p50/p99 of the rounds")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to the file (with --in-process it covers the servers)")
	fl.BoolVar(&f.full, "full-responses", false, "meshfed writes get the stored object back, as `meshfed apply` does (default: the revision and result only, as etcd's Put answers)")
	fl.StringVar(&f.serverProf, "server-cpuprofile", "", "write a CPU profile of each `meshfed server` process to DIR/<node-id>.cpu (not with --in-process)")
	fl.BoolVar(&f.leaderOnly, "leader-only", false, "send every write, and open every watch stream, at the leader (default: spread over all members; followers forward writes)")
	fl.IntVar(&f.maxAppend, "raft-max-append-entries", 0, "with --in-process: Raft MaxAppendEntries (default 64)")
	fl.BoolVar(&f.batchApply, "raft-batch-apply-ch", false, "with --in-process: Raft BatchApplyCh")
	fl.DurationVar(&f.commitTimeout, "raft-commit-timeout", 0, "with --in-process: Raft CommitTimeout (default 50ms)")
	fl.StringVar(&f.dir, "dir", "", "directory for data and logs (default: a temporary directory, removed afterwards)")
	return cmd
}

// benchSystem is one cluster under test.
type benchSystem struct {
	name      string
	cluster   bench.Cluster
	addrs     []string
	meter     bench.CPUMeter
	newPutter func(addrs []string, conns, size int) (bench.Putter, func(), error)
}

// benchDir returns dir, or when it is empty a new temporary directory
// named from prefix that cleanup removes.
func benchDir(dir, prefix string) (_ string, cleanup func(), err error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func runBenchApply(ctx context.Context, out io.Writer, f benchApplyFlags) error {
	dir, cleanup, err := benchDir(f.dir, "meshfed-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	etcdBin := f.etcd
	if etcdBin == "" {
		etcdBin, _ = exec.LookPath("etcd")
	} else if etcdBin == "off" {
		etcdBin = ""
	}
	mode := "3 `meshfed server` processes"
	if f.inProcess {
		mode = "3 in-process servers"
		if f.raftTweak() != nil {
			mode += fmt.Sprintf(" (raft: max-append-entries %d, batch-apply-ch %t, commit-timeout %s)", f.maxAppend, f.batchApply, f.commitTimeout)
		}
	}
	target := "writes spread over all members"
	if f.leaderOnly {
		target = "writes and watches at the leader"
	}
	answers := "answers carry revision and result (as etcd's Put)"
	if f.full {
		answers = "answers carry the stored object"
	}
	fmt.Fprintf(out, "# meshfed bench apply: %s on loopback, %s, %d-byte objects, %s, %d round(s) of %s per level, %d CPUs, %s\n",
		mode, target, f.size, answers, f.rounds, f.duration, runtime.NumCPU(), runtime.Version())

	ms, err := startMeshfed(ctx, dir, f)
	if err != nil {
		return fmt.Errorf("meshfed: %w", err)
	}
	defer ms.cluster.Close()
	systems := []*benchSystem{ms}
	if etcdBin != "" {
		es, err := startEtcd(ctx, dir, etcdBin, f)
		if err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		defer es.cluster.Close()
		fmt.Fprintf(out, "# etcd: %s (%s)\n", etcdBin, es.cluster.(*bench.EtcdCluster).Version())
		systems = append(systems, es)
	} else if f.etcd != "off" {
		fmt.Fprintln(out, "# etcd: not found on PATH (scripts/bench-etcd.sh installs it); skipping the comparison")
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	// Both clusters stay up and the systems take turns at each level, so a
	// change in the machine's load affects both alike.
	var results []bench.Result
	for round := range f.rounds {
		for _, c := range f.concurrency {
			for _, s := range systems {
				p, closeP, err := s.newPutter(s.addrs, min(c, f.conns), f.size)
				if err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				r := bench.Load(ctx, s.name, p, c, f.warmup, f.duration, s.meter)
				closeP()
				results = append(results, r)
				cpu := "n/a"
				if r.ServerCPU > 0 {
					cpu = r.CPUPerOp().String()
				}
				fmt.Fprintf(out, "round %d %s c=%d: %.0f ops/s p50 %s p99 %s, server CPU %s/op (%d errors)\n",
					round+1, s.name, c, r.Throughput(), r.P50, r.P99, cpu, r.Errors)
				if r.FirstErr != nil {
					fmt.Fprintf(out, "  first error: %v\n", r.FirstErr)
				}
			}
		}
	}
	var watch *bench.WatchResult
	if f.watchers > 0 {
		w, err := bench.WatchFanout(ctx, ms.addrs, f.watchers, min(f.watchers, 10), f.watchWrites, f.size)
		if err != nil {
			return fmt.Errorf("watch fan-out: %w", err)
		}
		watch = &w
	}
	fmt.Fprintln(out)
	if err := bench.WriteTable(out, bench.Merge(results)); err != nil {
		return err
	}
	if watch != nil {
		fmt.Fprintf(out, "\nwatch fan-out: one write reaches %d open streams in p50 %s, p99 %s over %d writes (write acknowledged in p50 %s)\n",
			watch.Watchers, watch.P50.Round(10*time.Microsecond), watch.P99.Round(10*time.Microsecond), watch.Writes, watch.AckP50.Round(10*time.Microsecond))
	}
	return nil
}

func startMeshfed(ctx context.Context, dir string, f benchApplyFlags) (*benchSystem, error) {
	mdir := filepath.Join(dir, "meshfed")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	s := &benchSystem{name: "meshfed", newPutter: func(addrs []string, conns, size int) (bench.Putter, func(), error) {
		p, err := bench.NewMeshfedPutter(addrs, conns, size)
		if err != nil {
			return nil, nil, err
		}
		p.Full = f.full
		return p, p.Close, nil
	}}
	var err error
	if f.inProcess {
		s.cluster, err = bench.StartInProcess(ctx, mdir, 3, f.raftTweak())
	} else {
		exe, eerr := os.Executable()
		if eerr != nil {
			return nil, eerr
		}
		s.cluster, err = bench.StartProcesses(ctx, exe, mdir, 3, serverProfileArgs(f.serverProf))
	}
	if err != nil {
		return nil, err
	}
	s.meter, _ = s.cluster.(bench.CPUMeter)
	s.addrs = s.cluster.Addrs()
	if f.leaderOnly {
		l, err := bench.MeshfedLeader(ctx, s.addrs)
		if err != nil {
			s.cluster.Close()
			return nil, err
		}
		s.addrs = []string{l}
	}
	return s, nil
}

func startEtcd(ctx context.Context, dir, bin string, f benchApplyFlags) (*benchSystem, error) {
	edir := filepath.Join(dir, "etcd")
	if err := os.MkdirAll(edir, 0o755); err != nil {
		return nil, err
	}
	e, err := bench.StartEtcd(ctx, bin, edir, 3)
	if err != nil {
		return nil, err
	}
	s := &benchSystem{name: "etcd", cluster: e, meter: e, addrs: e.Addrs(),
		newPutter: func(addrs []string, conns, size int) (bench.Putter, func(), error) {
			p, err := bench.NewEtcdPutter(addrs, conns, size)
			if err != nil {
				return nil, nil, err
			}
			return p, p.Close, nil
		}}
	if f.leaderOnly {
		l, err := bench.EtcdLeader(ctx, s.addrs)
		if err != nil {
			e.Close()
			return nil, err
		}
		s.addrs = []string{l}
	}
	return s, nil
}

// serverProfileArgs gives each server process a --cpuprofile in dir, or
// nothing when dir is empty.
func serverProfileArgs(dir string) func(id string) []string {
	if dir == "" {
		return nil
	}
	return func(id string) []string {
		return []string{"--cpuprofile", filepath.Join(dir, id+".cpu")}
	}
}
