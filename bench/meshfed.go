package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// Cluster is a running meshfed group on loopback.
type Cluster interface {
	// Addrs returns the servers' gRPC addresses.
	Addrs() []string
	// Close stops every server.
	Close() error
}

// InProcess is a group of servers running inside this process.
type InProcess struct {
	servers []*controlplane.Server
}

var _ Cluster = (*InProcess)(nil)

// StartInProcess starts n servers with production Raft settings (adjusted
// by tweak when it is not nil), data under dir and port 0 everywhere: the
// first bootstraps, the others join it.
func StartInProcess(ctx context.Context, dir string, n int, tweak func(*raft.Config)) (*InProcess, error) {
	c := &InProcess{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 1; i <= n; i++ {
		cfg := controlplane.Config{
			NodeID:   fmt.Sprintf("m%d", i),
			DataDir:  filepath.Join(dir, fmt.Sprintf("m%d", i)),
			RaftAddr: "127.0.0.1:0",
			GRPCAddr: "127.0.0.1:0",
			Logger:   logger,
		}
		if tweak != nil {
			cfg.RaftTweak = tweak
		}
		if i > 1 {
			cfg.Join = []string{c.servers[0].GRPCAddr()}
		}
		s, err := controlplane.NewServer(cfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("start server %s: %w", cfg.NodeID, err)
		}
		c.servers = append(c.servers, s)
	}
	err := waitUntil(ctx, 30*time.Second, "meshfed cluster", func() error {
		leaders := 0
		for _, s := range c.servers {
			if s.IsLeader() {
				leaders++
			}
			if got := len(s.State().Members()); got != n {
				return fmt.Errorf("%s knows %d of %d members", s.NodeID(), got, n)
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d ready leaders", leaders)
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Addrs implements Cluster.
func (c *InProcess) Addrs() []string {
	var out []string
	for _, s := range c.servers {
		out = append(out, s.GRPCAddr())
	}
	return out
}

// Close implements Cluster.
func (c *InProcess) Close() error {
	var errs []error
	for _, s := range c.servers {
		errs = append(errs, s.Shutdown())
	}
	return errors.Join(errs...)
}

// Processes is a group of `meshfed server` processes.
type Processes struct {
	addrs []string
	cmds  []*exec.Cmd
	logs  []*os.File
}

var _ Cluster = (*Processes)(nil)

// StartProcesses runs n `exe server` processes bootstrapped together with
// --initial-cluster on free loopback ports, data and logs under dir, and
// waits until the group accepts a write. extraArgs, when not nil, gives
// more flags for the server with the given ID.
func StartProcesses(ctx context.Context, exe, dir string, n int, extraArgs func(id string) []string) (*Processes, error) {
	ports, err := testkit.FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=127.0.0.1:%d", i+1, ports[2*i]))
	}
	p := &Processes{}
	for i := range n {
		id := fmt.Sprintf("m%d", i+1)
		grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		logf, err := os.Create(filepath.Join(dir, id+".log"))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("server log: %w", err)
		}
		cmd := exec.Command(exe, "server", "--node-id", id, "--data-dir", filepath.Join(dir, id),
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[2*i]), "--grpc-addr", grpcAddr, "--http-addr", "",
			"--initial-cluster", strings.Join(initial, ","), "--log-level", "warn")
		if extraArgs != nil {
			cmd.Args = append(cmd.Args, extraArgs(id)...)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			p.Close()
			return nil, fmt.Errorf("start %s server: %w", exe, err)
		}
		p.addrs = append(p.addrs, grpcAddr)
		p.cmds = append(p.cmds, cmd)
		p.logs = append(p.logs, logf)
	}
	c, err := client.New(p.addrs)
	if err != nil {
		p.Close()
		return nil, err
	}
	defer c.Close()
	err = waitUntil(ctx, 30*time.Second, "meshfed cluster (logs in "+dir+")", func() error {
		for _, cmd := range p.cmds {
			if cmd.ProcessState != nil {
				return fmt.Errorf("server exited: %s", cmd.ProcessState)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := c.Apply(rctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{benchCluster("bench-ready", nil)}})
		return err
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Addrs implements Cluster.
func (p *Processes) Addrs() []string { return p.addrs }

// CPUTime implements CPUMeter.
func (p *Processes) CPUTime() (time.Duration, error) { return processCPU(p.cmds) }

// Close implements Cluster: SIGTERM, then SIGKILL after 5s.
func (p *Processes) Close() error {
	return stopProcesses(p.cmds, p.logs)
}

func stopProcesses(cmds []*exec.Cmd, logs []*os.File) error {
	for _, cmd := range cmds {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range cmds {
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	for _, f := range logs {
		f.Close()
	}
	return nil
}

// clockTick is the unit of /proc/PID/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU sums user and system CPU time of running processes, from
// /proc/PID/stat (Linux).
func processCPU(cmds []*exec.Cmd) (time.Duration, error) {
	var total time.Duration
	for _, cmd := range cmds {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if err != nil {
			return 0, fmt.Errorf("read process cpu time: %w", err)
		}
		// Fields after the parenthesised command name: state is field 3,
		// utime 14 and stime 15.
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 {
			return 0, fmt.Errorf("parse /proc/%d/stat", cmd.Process.Pid)
		}
		for _, s := range f[11:13] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/%d/stat: %w", cmd.Process.Pid, err)
			}
			total += time.Duration(n) * clockTick
		}
	}
	return total, nil
}

// KeySpace is the number of distinct keys the load writes (as etcd's
// benchmark tool's --key-space-size).
const KeySpace = 10000

// keyIndex spreads workers' writes over the key space.
func keyIndex(worker, seq int) int { return (worker*7919 + seq) % KeySpace }

// MeshfedPutter applies Cluster objects of a fixed encoded size.
type MeshfedPutter struct {
	clients []*client.Client
	filler  int
	// Full asks for the stored object in each answer, as `meshfed
	// apply` does; otherwise writes ask for the revision and result only,
	// what etcd's Put answers.
	Full bool
}

var _ Putter = (*MeshfedPutter)(nil)

// NewMeshfedPutter opens conns fail-over clients, each preferring a
// different server in turn (so writes arrive at followers as well as at the
// leader, as they do from agents and CLIs), for objects of size bytes.
func NewMeshfedPutter(addrs []string, conns, size int) (*MeshfedPutter, error) {
	p := &MeshfedPutter{}
	for i := range conns {
		rot := append(append([]string(nil), addrs[i%len(addrs):]...), addrs[:i%len(addrs)]...)
		c, err := client.New(rot)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.clients = append(p.clients, c)
	}
	p.filler = fillerFor(size)
	return p, nil
}

// fillerFor returns the filler length that makes a bench object encode to
// size bytes (names of up to 6 characters).
func fillerFor(size int) int {
	n := max(size-proto.Size(benchCluster("b-0000", nil))-3, 0)
	for range 3 {
		got := proto.Size(benchCluster("b-0000", make([]byte, n)))
		n = max(n+size-got, 0)
	}
	return n
}

// Put implements Putter.
func (p *MeshfedPutter) Put(ctx context.Context, worker, seq int) error {
	c := p.clients[worker%len(p.clients)]
	obj := benchCluster(fmt.Sprintf("b-%d", keyIndex(worker, seq)), fill(p.filler, worker, seq))
	_, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{obj}, Brief: !p.Full})
	return err
}

// Close closes the clients.
func (p *MeshfedPutter) Close() {
	for _, c := range p.clients {
		c.Close()
	}
}

// fill returns n bytes of printable filler that differ per write, so no
// write is a no-op.
func fill(n, worker, seq int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	copy(b, fmt.Sprintf("%d.%d.", worker, seq))
	return b
}

// benchCluster is a valid Cluster object carrying filler in its auth
// parameters, as the path of a token file (nil: no auth).
func benchCluster(name string, filler []byte) *meshfedv1.Object {
	spec := &meshfedv1.ClusterSpec{Region: "bench", ServiceUrl: "pulsar://127.0.0.1:6650"}
	if filler != nil {
		spec.Auth = &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file:///bench/" + string(filler)}
	}
	return objects.Wrap(&meshfedv1.Cluster{
		ApiVersion: objects.APIVersion, Kind: objects.KindCluster,
		Metadata: &meshfedv1.ObjectMeta{Name: name},
		Spec:     spec,
	})
}
