package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshfed/meshfed/internal/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
)

// The etcd side talks to etcd's v3 gRPC API directly, with the request
// encoded by hand (etcdserverpb.PutRequest is two bytes fields), so the
// comparison uses the same gRPC stack on both sides without pulling the
// etcd client module and its dependency versions into this module.

const etcdPutMethod = "/etcdserverpb.KV/Put"

// rawCodec passes pre-encoded protobuf bytes through gRPC.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// encodeEtcdPut encodes etcdserverpb.PutRequest{key: 1, value: 2}.
func encodeEtcdPut(key, value []byte) []byte {
	b := make([]byte, 0, len(key)+len(value)+8)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, key)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, value)
	return b
}

// EtcdCluster is a group of etcd processes on loopback.
type EtcdCluster struct {
	addrs   []string
	version string
	cmds    []*exec.Cmd
	logs    []*os.File
}

var _ Cluster = (*EtcdCluster)(nil)

// StartEtcd runs n members of the etcd binary bin, data and logs under dir,
// on free loopback ports, and waits until the cluster accepts a put.
func StartEtcd(ctx context.Context, bin, dir string, n int) (*EtcdCluster, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", bin, err)
	}
	ports, err := testkit.FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", i+1, ports[2*i]))
	}
	e := &EtcdCluster{version: firstLine(string(out))}
	for i := range n {
		id := fmt.Sprintf("e%d", i+1)
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		logf, err := os.Create(filepath.Join(dir, id+".log"))
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("etcd log: %w", err)
		}
		cmd := exec.Command(bin, "--name", id, "--data-dir", filepath.Join(dir, id),
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "meshfed-bench", "--logger", "zap", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			e.Close()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		e.addrs = append(e.addrs, fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]))
		e.cmds = append(e.cmds, cmd)
		e.logs = append(e.logs, logf)
	}
	p, err := NewEtcdPutter(e.addrs, 1, 16)
	if err != nil {
		e.Close()
		return nil, err
	}
	defer p.Close()
	err = waitUntil(ctx, 30*time.Second, "etcd cluster (logs in "+dir+")", func() error {
		for _, cmd := range e.cmds {
			if cmd.ProcessState != nil {
				return fmt.Errorf("etcd exited: %s", cmd.ProcessState)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return p.Put(rctx, 0, 0)
	})
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Addrs implements Cluster.
func (e *EtcdCluster) Addrs() []string { return e.addrs }

// Version is the first line of `etcd --version`.
func (e *EtcdCluster) Version() string { return e.version }

// CPUTime implements CPUMeter.
func (e *EtcdCluster) CPUTime() (time.Duration, error) { return processCPU(e.cmds) }

// Close implements Cluster.
func (e *EtcdCluster) Close() error { return stopProcesses(e.cmds, e.logs) }

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// EtcdPutter puts values of a fixed size with etcd's KV.Put.
type EtcdPutter struct {
	conns []*grpc.ClientConn
	size  int
}

var _ Putter = (*EtcdPutter)(nil)

// NewEtcdPutter opens conns connections spread over addrs.
func NewEtcdPutter(addrs []string, conns, size int) (*EtcdPutter, error) {
	p := &EtcdPutter{size: size}
	for i := range conns {
		c, err := grpc.NewClient(addrs[i%len(addrs)], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("dial etcd: %w", err)
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

// Put implements Putter.
func (p *EtcdPutter) Put(ctx context.Context, worker, seq int) error {
	req := encodeEtcdPut(fmt.Appendf(nil, "b-%d", keyIndex(worker, seq)), fill(p.size, worker, seq))
	var resp []byte
	return p.conns[worker%len(p.conns)].Invoke(ctx, etcdPutMethod, &req, &resp, grpc.ForceCodec(rawCodec{}))
}

// Close closes the connections.
func (p *EtcdPutter) Close() {
	for _, c := range p.conns {
		c.Close()
	}
}
