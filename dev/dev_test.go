package dev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/dev/devtest"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

// startDev starts a quiet federation of n clusters in dir from the test
// binary, its control API on a free port; change adjusts the
// configuration. The caller stops it.
func startDev(ctx context.Context, t *testing.T, dir string, n int, change func(*Config)) *Federation {
	t.Helper()
	cfg := Config{DataDir: dir, Clusters: n, Binary: devtest.Binary(t), GRPCAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	change(&cfg)
	f, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// alive reports whether process pid exists and is not a zombie (an
// orphan's zombie lingers where nothing reaps it, as in some containers).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux"
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}

func clusterHealth(ctx context.Context, c *client.Client, name string) string {
	got, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: name})
	if err != nil {
		return err.Error()
	}
	return got.GetObject().GetCluster().GetStatus().GetHealth()
}

func quietPulsar(t *testing.T, url string) pulsar.Client {
	t.Helper()
	pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, OperationTimeout: 10 * time.Second,
		Logger: plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pc.Close)
	return pc
}

// TestClusterKillAndRestart kills one cluster's broker and agent with
// SIGKILL through the control API, checks that they are gone and the
// control plane sees the cluster Down, starts them again and checks that
// they come back on the same addresses with their data.
func TestClusterKillAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	f := startDev(ctx, t, dir, 2, func(c *Config) { c.NoExample = true })
	defer f.Stop()

	info, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Control == "" || info.Control != f.Info.Control || len(info.Clusters) != 2 || info.PID != os.Getpid() {
		t.Fatalf("dev.json %+v", info)
	}
	cc, err := client.New([]string{f.Info.Server})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, name := range []string{"a", "b"} {
		testkit.Eventually(t, 30*time.Second, "cluster "+name+" Healthy", func() (bool, string) {
			h := clusterHealth(ctx, cc, name)
			return h == "Healthy", h
		})
	}

	// A message written before the crash must be there after it.
	a := info.Clusters[0]
	pc := quietPulsar(t, a.ServiceURL)
	p, err := pc.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/kept"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("before the crash")}); err != nil {
		t.Fatal(err)
	}
	p.Close()

	ctl := NewControlClient(info.Control)
	before, err := ctl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || !before[0].Broker.Running || !before[0].Agent.Running || before[0].Broker.Starts != 1 {
		t.Fatalf("status before the kill: %+v", before)
	}
	brokerPID, agentPID := before[0].Broker.PID, before[0].Agent.PID

	st, err := ctl.Kill(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Broker.Running || st.Agent.Running || st.Broker.LastExit != "signal: killed" || st.Agent.LastExit != "signal: killed" {
		t.Fatalf("status after the kill: %+v", st)
	}
	if alive(brokerPID) || alive(agentPID) {
		t.Fatalf("broker %d or agent %d still alive after the kill", brokerPID, agentPID)
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(a.ServiceURL, "pulsar://"), time.Second); err == nil {
		conn.Close()
		t.Fatal("cluster a's broker port still accepts connections")
	}
	if others := f.Status()[1]; !others.Broker.Running || !others.Agent.Running {
		t.Fatalf("cluster b hit by the kill of a: %+v", others)
	}
	testkit.Eventually(t, 30*time.Second, "cluster a Down", func() (bool, string) {
		h := clusterHealth(ctx, cc, "a")
		return h == "Down", h
	})

	st, err = ctl.Restart(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Broker.Running || !st.Agent.Running || st.Broker.Starts != 2 || st.Agent.Starts != 2 || st.Broker.PID == brokerPID {
		t.Fatalf("status after the restart: %+v", st)
	}
	again, err := ReadInfo(dir)
	if err != nil || again.Clusters[0] != a {
		t.Fatalf("addresses after the restart %+v (%v), want %+v", again.Clusters[0], err, a)
	}
	testkit.Eventually(t, 30*time.Second, "cluster a Healthy again", func() (bool, string) {
		h := clusterHealth(ctx, cc, "a")
		return h == "Healthy", h
	})
	pc2 := quietPulsar(t, a.ServiceURL)
	rd, err := pc2.CreateReader(pulsar.ReaderOptions{Topic: "persistent://public/default/kept", StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	defer rcancel()
	msg, err := rd.Next(rctx)
	if err != nil || string(msg.Payload()) != "before the crash" {
		t.Fatalf("read after the restart: %v, %v", msg, err)
	}

	// One part alone, through the Go API.
	if err := f.Kill(ctx, "b", PartBroker); err != nil {
		t.Fatal(err)
	}
	if b := f.Status()[1]; b.Broker.Running || !b.Agent.Running {
		t.Fatalf("after killing b's broker: %+v", b)
	}
	if err := f.Restart(ctx, "b", PartBroker); err != nil {
		t.Fatal(err)
	}
	if b := f.Status()[1]; !b.Broker.Running || b.Broker.Starts != 2 || b.Agent.Starts != 1 {
		t.Fatalf("after restarting b's broker: %+v", b)
	}

	all := f.Status()
	f.Stop()
	for _, c := range all {
		if alive(c.Broker.PID) || alive(c.Agent.PID) {
			t.Fatalf("cluster %s has a process alive after Stop: %+v", c.Name, c)
		}
	}
	if _, err := ctl.Status(ctx); !errors.Is(err, ErrNoFederation) {
		t.Fatalf("control API after Stop: %v, want ErrNoFederation", err)
	}
	if err := f.Restart(ctx, "a"); !errors.Is(err, ErrStopped) {
		t.Fatalf("Restart after Stop: %v, want ErrStopped", err)
	}
}

func TestControlAPIErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := startDev(ctx, t, t.TempDir(), 1, func(c *Config) { c.NoExample = true })
	defer f.Stop()
	ctl := NewControlClient(f.Info.Control)
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown cluster", func() error { _, err := ctl.Kill(ctx, "z"); return err }, ErrUnknownCluster},
		{"unknown part", func() error { _, err := ctl.Restart(ctx, "a", Part("bookie")); return err }, ErrUnknownPart},
		{"unknown cluster in process", func() error { return f.KillCluster(ctx, "z") }, ErrUnknownCluster},
		{"nothing listening", func() error { _, err := NewControlClient("http://127.0.0.1:1").Status(ctx); return err }, ErrNoFederation},
		{"no dev.json", func() error { _, err := ReadInfo(t.TempDir()); return err }, ErrNoFederation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Starting what runs is a no-op.
	st, err := ctl.Restart(ctx, "a")
	if err != nil || st.Broker.Starts != 1 || st.Agent.Starts != 1 {
		t.Fatalf("start of a running cluster: %+v, %v", st, err)
	}
}

// TestChildrenDieWithDev kills `meshfed dev` itself with SIGKILL and checks
// that its brokers and agents do not outlive it.
func TestChildrenDieWithDev(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	dir := t.TempDir()
	cmd := exec.Command(devtest.Binary(t), "dev", "--clusters", "1", "--data-dir", dir, "--grpc-addr", "127.0.0.1:0",
		"--broker-port", "0", "--admin-port", "0", "--no-example", "--runtimes", "builtin")
	log, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var st []ClusterStatus
	testkit.Eventually(t, 60*time.Second, "meshfed dev ready", func() (bool, string) {
		info, err := ReadInfo(dir)
		if err != nil {
			return false, err.Error()
		}
		st, err = NewControlClient(info.Control).Status(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return len(st) == 1 && st[0].Broker.Running && st[0].Agent.Running, fmt.Sprintf("%+v", st)
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	testkit.Eventually(t, 10*time.Second, "children gone after meshfed dev was killed", func() (bool, string) {
		return !alive(st[0].Broker.PID) && !alive(st[0].Agent.PID), fmt.Sprintf("broker %d alive %v, agent %d alive %v",
			st[0].Broker.PID, alive(st[0].Broker.PID), st[0].Agent.PID, alive(st[0].Agent.PID))
	})
}

// TestReplicationConfigured checks, through each broker's admin API as
// pulsar-admin would read it, that every broker knows the other clusters'
// current addresses, allows tenant public on all of them and replicates
// public/default to all of them, also after a restart on the same data
// dir with other ports.
func TestReplicationConfigured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	for run := 0; run < 2; run++ {
		f := startDev(ctx, t, dir, 3, func(c *Config) { c.NoExample = true })
		if !f.Info.Replication || f.Info.ReplicationError != "" {
			f.Stop()
			t.Fatalf("run %d: replication %v: %s", run, f.Info.Replication, f.Info.ReplicationError)
		}
		for _, self := range f.Info.Clusters {
			admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: self.AdminURL})
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range f.Info.Clusters {
				if other.Name == self.Name {
					continue
				}
				cd, err := admin.Clusters().Get(other.Name)
				if err != nil || cd.BrokerServiceURL != other.ServiceURL || cd.ServiceURL != other.AdminURL {
					t.Errorf("run %d: broker %s has cluster %s as %+v (%v), want %s and %s", run, self.Name, other.Name, cd, err, other.ServiceURL, other.AdminURL)
				}
			}
			tenant, err := admin.Tenants().Get("public")
			if err != nil || len(tenant.AllowedClusters) != 3 {
				t.Errorf("run %d: broker %s: tenant public %+v (%v), want allowed on a, b, c", run, self.Name, tenant, err)
			}
			repl, err := admin.Namespaces().GetNamespaceReplicationClusters(ReplicatedNamespace)
			if err != nil || strings.Join(repl, ",") != "a,b,c" {
				t.Errorf("run %d: broker %s replicates %s to %v (%v), want a,b,c", run, self.Name, ReplicatedNamespace, repl, err)
			}
		}
		f.Stop()
	}
}

func TestPickAddrsNeverRepeatsAFreePort(t *testing.T) {
	for range 20 {
		got, err := pickAddrs(3, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, g := range got {
			for _, a := range g {
				if seen[a] {
					t.Fatalf("address %s handed out twice: %v", a, got)
				}
				seen[a] = true
			}
		}
	}
	got, err := pickAddrs(2, 6650, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got[0][0] != "127.0.0.1:6650" || got[0][1] != "127.0.0.1:6651" || len(got[1]) != 2 {
		t.Fatalf("pickAddrs(2, 6650, 0) = %v", got)
	}
}
