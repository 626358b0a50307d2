// Package dev runs the whole federation on loopback for development, demos
// and drills: one control-plane server in this process, and N clusters,
// each an embedded broker (de-duplication on) and an agent run as child
// processes of the meshfed binary (`meshfed broker`, `meshfed agent`), with
// tenant public and namespace default geo-replicated between all clusters,
// and an example cross-cluster mesh. Each cluster's broker and agent can be
// killed with SIGKILL and started again on the same addresses and data
// dirs, through a Go API and a small HTTP control API on loopback. The
// addresses are written to <data-dir>/dev.json so other tools can attach.
package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Config configures a dev federation.
type Config struct {
	// DataDir keeps every component's state and the children's logs
	// (DataDir/logs); reusing it resumes them.
	DataDir string
	// Clusters is the number of clusters, named a, b, c, ... (1 to 26).
	Clusters int
	// Binary is the meshfed executable run as each cluster's broker and
	// agent. Empty: this process's executable (os.Executable), which is
	// right for the meshfed command and wrong for a test binary.
	Binary string
	// GRPCAddr is the control plane's gRPC address ("127.0.0.1:0" picks one).
	GRPCAddr string
	// ControlAddr is the control API's address. Empty: 127.0.0.1:0.
	ControlAddr string
	// BrokerPort and AdminPort are the first cluster's ports; cluster i
	// uses BrokerPort+i and AdminPort+i. Zero: free ports picked at start,
	// kept for this run (a restarted cluster comes back on them).
	BrokerPort, AdminPort int
	// TrafficRate, when positive, produces that many sentences per second
	// to the example mesh's input topic in cluster a.
	TrafficRate float64
	// NoExample skips applying the example mesh.
	NoExample bool
	// Runtimes the agents run, comma-separated (builtin, exec, wasm).
	// Empty: builtin.
	Runtimes string
	// FailbackHoldDown overrides the server's failback hold-down. Zero: 30s.
	FailbackHoldDown time.Duration
	// HeartbeatInterval, AgentLease and AgentTTL are the control plane's
	// (see controlplane.Config). Zero: DefaultHeartbeatInterval,
	// DefaultAgentLease, and DefaultAgentTTL or 1.5 × AgentLease, whichever
	// is longer: shorter than a production server's, so that a crashed
	// cluster is seen Down within 1.5 s.
	HeartbeatInterval, AgentLease, AgentTTL time.Duration
	// Secure runs the brokers with TLS listeners only, token
	// authentication and authorization, and registers the clusters with
	// spec.auth naming their agents' token files (see secure.go).
	// False: plaintext, no authentication.
	Secure bool
	// ChildLogLevel is the --log-level of the brokers and agents, whose
	// logs go to files. Empty: info.
	ChildLogLevel string
	// ChildLogFormat is the --log-format of the brokers and agents (json
	// or text). Empty: each one's default.
	ChildLogFormat string
	// HTTPAddr is the control plane's /metrics, /healthz and /readyz
	// address. Empty: 127.0.0.1:0.
	HTTPAddr string
	// Logger receives the control plane's and meshfed dev's own logs.
	Logger *slog.Logger
}

// ClusterInfo is one cluster's addresses, as written to dev.json.
type ClusterInfo struct {
	Name       string `json:"name"`
	ServiceURL string `json:"serviceURL"`
	AdminURL   string `json:"adminURL"`
	Agent      string `json:"agent"`
	// AgentHTTP is the base URL of the agent's /metrics, /healthz and /readyz.
	AgentHTTP string `json:"agentHTTP"`
	// BrokerLog and AgentLog are the files the processes log to.
	BrokerLog string `json:"brokerLog"`
	AgentLog  string `json:"agentLog"`
}

// Info is what dev.json holds.
type Info struct {
	Server string `json:"server"`
	// ServerHTTP is the base URL of the control plane's /metrics,
	// /healthz and /readyz.
	ServerHTTP string `json:"serverHTTP"`
	// Control is the base URL of the control API (kill and start a
	// cluster's broker and agent).
	Control  string        `json:"control"`
	Clusters []ClusterInfo `json:"clusters"`
	// Replication is true when namespace public/default is geo-replicated
	// between every pair of clusters; false when configuring it failed
	// (ReplicationError says why).
	Replication      bool   `json:"replication"`
	ReplicationError string `json:"replicationError,omitempty"`
	// PID is the process id of meshfed dev.
	PID int `json:"pid"`
	// Open is true: the control plane runs without TLS or
	// authentication (always, in a dev federation).
	Open bool `json:"open"`
	// Secure is set when the brokers require TLS and tokens: where the CA
	// and the tokens are.
	Secure *SecureInfo `json:"secure,omitempty"`
}

// Defaults of Config fields left zero.
const (
	DefaultHeartbeatInterval = 250 * time.Millisecond
	DefaultAgentLease        = time.Second
	DefaultAgentTTL          = 1500 * time.Millisecond
)

// InfoFile is the name of the file Start writes in the data dir.
const InfoFile = "dev.json"

// Part names one process of a dev cluster.
type Part string

// The parts of a dev cluster.
const (
	PartBroker Part = "broker"
	PartAgent  Part = "agent"
)

// ParsePart parses "broker" or "agent".
func ParsePart(s string) (Part, error) {
	switch p := Part(s); p {
	case PartBroker, PartAgent:
		return p, nil
	}
	return "", fmt.Errorf("%q: %w", s, ErrUnknownPart)
}

// devCluster is one cluster: its addresses and its two processes.
type devCluster struct {
	info   ClusterInfo
	broker *child
	agent  *child
}

// Federation is a running dev federation.
type Federation struct {
	Info   Info
	cfg    Config
	server *controlplane.Server
	spawn  *spawner
	// clusters by name, and their names in order; fixed after Start.
	clusters map[string]*devCluster
	names    []string
	control  *http.Server

	// opMu serialises kills, starts and Stop.
	opMu sync.Mutex
	// stopped is set by Stop. Guarded by opMu.
	stopped bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	// readyTimeout bounds the wait for a started broker to serve.
	readyTimeout = 30 * time.Second
	// killTimeout bounds the wait for a killed process to be reaped.
	killTimeout = 10 * time.Second
	// stopGrace is how long a stopping process may take before it is killed.
	stopGrace = 10 * time.Second
)

var knownRuntimes = []string{"builtin", "exec", "wasm"}

// Start brings up the federation; Stop tears it down.
func Start(ctx context.Context, cfg Config) (*Federation, error) {
	if cfg.Clusters < 1 || cfg.Clusters > 26 {
		return nil, fmt.Errorf("--clusters %d: use 1 to 26", cfg.Clusters)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Runtimes == "" {
		cfg.Runtimes = "builtin"
	}
	for _, rt := range client.ParseAddrs(cfg.Runtimes) {
		if !slices.Contains(knownRuntimes, rt) {
			return nil, fmt.Errorf("--runtimes: unknown runtime %q (builtin, exec, wasm)", rt)
		}
	}
	if cfg.ChildLogLevel == "" {
		cfg.ChildLogLevel = "info"
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.AgentLease == 0 {
		cfg.AgentLease = DefaultAgentLease
	}
	if cfg.AgentTTL == 0 {
		cfg.AgentTTL = max(DefaultAgentTTL, cfg.AgentLease+cfg.AgentLease/2)
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.ControlAddr == "" {
		cfg.ControlAddr = "127.0.0.1:0"
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the meshfed binary to run brokers and agents: %w", err)
		}
		cfg.Binary = exe
	}
	if fi, err := os.Stat(cfg.Binary); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("meshfed binary %q: not an executable file", cfg.Binary)
	}
	logDir := filepath.Join(cfg.DataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create --data-dir: %w", err)
	}
	f := &Federation{cfg: cfg, Info: Info{Open: true, PID: os.Getpid()}, clusters: map[string]*devCluster{}, spawn: newSpawner()}
	ok := false
	defer func() {
		if !ok {
			f.Stop()
		}
	}()
	srv, err := controlplane.NewServer(controlplane.Config{
		NodeID: "dev", DataDir: filepath.Join(cfg.DataDir, "server"), RaftAddr: "127.0.0.1:0", GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr,
		FailbackHoldDown:  cfg.FailbackHoldDown,
		HeartbeatInterval: cfg.HeartbeatInterval, AgentLease: cfg.AgentLease, AgentTTL: cfg.AgentTTL,
		Logger: cfg.Logger.With("component", "server"),
	})
	if err != nil {
		return nil, err
	}
	f.server = srv
	f.Info.Server = srv.GRPCAddr()
	f.Info.ServerHTTP = "http://" + srv.HTTPAddr()

	if cfg.Secure {
		var names []string
		for i := 0; i < cfg.Clusters; i++ {
			names = append(names, string(rune('a'+i)))
		}
		if f.Info.Secure, err = secureMaterial(cfg.DataDir, names); err != nil {
			return nil, err
		}
	}
	addrs, err := pickAddrs(cfg.Clusters, cfg.BrokerPort, cfg.AdminPort, 0)
	if err != nil {
		return nil, fmt.Errorf("broker, admin and agent HTTP ports: %w", err)
	}
	brokerAddrs, adminAddrs, agentHTTPAddrs := addrs[0], addrs[1], addrs[2]
	for i := 0; i < cfg.Clusters; i++ {
		name := string(rune('a' + i))
		c := f.newCluster(name, brokerAddrs[i], adminAddrs[i], agentHTTPAddrs[i], logDir)
		f.clusters[name], f.names = c, append(f.names, name)
		f.Info.Clusters = append(f.Info.Clusters, c.info)
		if err := c.broker.start(f.spawn); err != nil {
			return nil, fmt.Errorf("broker of cluster %s: %w", name, err)
		}
	}
	for _, name := range f.names {
		if err := f.waitBroker(ctx, f.clusters[name]); err != nil {
			return nil, err
		}
	}
	if err := f.waitLeader(ctx); err != nil {
		return nil, err
	}
	if f.Info.Secure != nil {
		if err := grantAgents(ctx, f.Info.Secure, f.Info.Clusters); err != nil {
			return nil, err
		}
	}
	if err := configureReplication(ctx, f.Info.Secure, f.Info.Clusters); err != nil {
		f.Info.ReplicationError = err.Error()
		cfg.Logger.Warn("geo-replication not configured: a cluster's input does not reach the others", "err", err)
	} else {
		f.Info.Replication = true
	}
	if err := f.applyBase(ctx); err != nil {
		return nil, err
	}
	for _, name := range f.names {
		if err := f.clusters[name].agent.start(f.spawn); err != nil {
			return nil, fmt.Errorf("agent of cluster %s: %w", name, err)
		}
	}
	if err := f.serveControl(cfg.ControlAddr); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	if cfg.TrafficRate > 0 {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.traffic(runCtx) }()
	}
	data, _ := json.MarshalIndent(f.Info, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.DataDir, InfoFile), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", InfoFile, err)
	}
	ok = true
	return f, nil
}

// pickAddrs returns, for each first port, n loopback addresses: first+i
// when first is set, else ports free at the time of the call. All
// listeners stay open until every group is found, so no free port is
// handed out twice.
func pickAddrs(n int, firsts ...int) ([][]string, error) {
	var lis []net.Listener
	defer func() {
		for _, l := range lis {
			l.Close()
		}
	}()
	out := make([][]string, len(firsts))
	for g, first := range firsts {
		for i := 0; i < n; i++ {
			if first > 0 {
				out[g] = append(out[g], fmt.Sprintf("127.0.0.1:%d", first+i))
				continue
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			lis = append(lis, l)
			out[g] = append(out[g], l.Addr().String())
		}
	}
	return out, nil
}

func (f *Federation) newCluster(name, brokerAddr, adminAddr, agentHTTPAddr, logDir string) *devCluster {
	cfg := f.cfg
	info := ClusterInfo{Name: name, ServiceURL: "pulsar://" + brokerAddr, AdminURL: "http://" + adminAddr, Agent: "agent-" + name,
		AgentHTTP: "http://" + agentHTTPAddr,
		BrokerLog: filepath.Join(logDir, "broker-"+name+".log"), AgentLog: filepath.Join(logDir, "agent-"+name+".log")}
	brokerArgs := []string{"broker", "--data-dir", filepath.Join(cfg.DataDir, "broker-"+name), "--cluster-name", name,
		"--deduplication", "--log-level", cfg.ChildLogLevel}
	if s := f.Info.Secure; s != nil {
		// TLS listeners only, on the same ports. Certificates name
		// localhost: so do the URLs.
		port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
		info.ServiceURL = "pulsar+ssl://localhost:" + port(brokerAddr)
		info.AdminURL = "https://localhost:" + port(adminAddr)
		brokerArgs = append(brokerArgs, secureBrokerArgs(s, name, port(brokerAddr), port(adminAddr))...)
	} else {
		brokerArgs = append(brokerArgs, "--listen", brokerAddr, "--http-addr", adminAddr)
	}
	agentArgs := []string{"agent", "--server", f.Info.Server, "--cluster", name, "--name", info.Agent,
		"--data-dir", filepath.Join(cfg.DataDir, "agent-"+name), "--runtimes", cfg.Runtimes, "--log-level", cfg.ChildLogLevel,
		"--http-addr", agentHTTPAddr}
	if cfg.ChildLogFormat != "" {
		brokerArgs = append(brokerArgs, "--log-format", cfg.ChildLogFormat)
		agentArgs = append(agentArgs, "--log-format", cfg.ChildLogFormat)
	}
	env := childEnv()
	logger := cfg.Logger.With("cluster", name)
	return &devCluster{
		info: info,
		broker: &child{name: "broker of cluster " + name, bin: cfg.Binary, env: env, logPath: info.BrokerLog, logger: logger,
			args: brokerArgs},
		agent: &child{name: "agent of cluster " + name, bin: cfg.Binary, env: env, logPath: info.AgentLog, logger: logger,
			args: agentArgs},
	}
}

// waitBroker waits until the cluster's broker answers on its admin API
// and accepts connections on its Pulsar port.
func (f *Federation) waitBroker(ctx context.Context, c *devCluster) error {
	hc := &http.Client{Timeout: time.Second}
	if s := f.Info.Secure; s != nil {
		creds, err := s.AdminCredentials()
		if err != nil {
			return err
		}
		tc, err := creds.TLSConfig()
		if err != nil {
			return err
		}
		tok, err := os.ReadFile(s.AdminToken)
		if err != nil {
			return err
		}
		hc.Transport = bearer{token: strings.TrimSpace(string(tok)), next: &http.Transport{TLSClientConfig: tc}}
	}
	deadline := time.Now().Add(readyTimeout)
	exited := c.broker.exited()
	for {
		err := probeBroker(ctx, hc, c.info)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker of cluster %s not ready after %s: %v; its log %s ends:\n%s", c.info.Name, readyTimeout, err, c.info.BrokerLog, c.broker.logTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("broker of cluster %s exited (%s); its log %s ends:\n%s", c.info.Name, c.broker.status().LastExit, c.info.BrokerLog, c.broker.logTail(20))
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// bearer adds a bearer token to requests.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func probeBroker(ctx context.Context, hc *http.Client, c ClusterInfo) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.AdminURL+"/admin/v2/clusters", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API answered %s", resp.Status)
	}
	_, hostPort, _ := strings.Cut(c.ServiceURL, "://")
	conn, err := net.DialTimeout("tcp", hostPort, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

func (f *Federation) waitLeader(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for !f.server.IsLeader() {
		if time.Now().After(deadline) {
			return errors.New("control plane did not become ready in 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// applyBase applies the clusters (with this run's addresses), tenant
// public, namespace default and, unless disabled, the example mesh.
func (f *Federation) applyBase(ctx context.Context) error {
	var objs []*meshfedv1.Object
	for _, c := range f.Info.Clusters {
		spec := &meshfedv1.ClusterSpec{Region: "dev-" + c.Name, ServiceUrl: c.ServiceURL, AdminUrl: c.AdminURL}
		if s := f.Info.Secure; s != nil {
			spec.Auth = s.clusterAuth(c.Name)
		}
		objs = append(objs, objects.Wrap(&meshfedv1.Cluster{
			Metadata: &meshfedv1.ObjectMeta{Name: c.Name, Labels: map[string]string{"region": "dev-" + c.Name}},
			Spec:     spec,
		}))
	}
	objs = append(objs,
		objects.Wrap(&meshfedv1.Tenant{Metadata: &meshfedv1.ObjectMeta{Name: "public"}}),
		objects.Wrap(&meshfedv1.Namespace{Metadata: &meshfedv1.ObjectMeta{Name: "default", Tenant: "public"}}))
	if !f.cfg.NoExample {
		objs = append(objs, objects.Wrap(ExampleMesh(f.cfg.Clusters)))
	}
	c, err := client.New([]string{f.Info.Server})
	if err != nil {
		return err
	}
	defer c.Close()
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := c.Apply(actx, &meshfedv1.ApplyRequest{Objects: objs}); err != nil {
		return fmt.Errorf("apply dev objects: %w", err)
	}
	return nil
}

// Example topics of the example mesh.
const (
	SentencesTopic = "persistent://public/default/sentences"
	WordsTopic     = "persistent://public/default/words"
	CountsTopic    = "persistent://public/default/counts"
)

// ExampleMesh is the cross-cluster word count: split runs in a and writes to
// b (or to a when there is one cluster), failing over to c when there is
// one; count runs where the words are.
func ExampleMesh(clusters int) *meshfedv1.FunctionMesh {
	out := "a"
	if clusters > 1 {
		out = "b"
	}
	split := &meshfedv1.FunctionSpec{
		Name: "split", Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "word-split"}},
		ProcessingGuarantee: "effectively_once",
		Input:               &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{SentencesTopic}, SubscriptionPosition: "earliest"},
		Output:              &meshfedv1.FunctionOutput{Cluster: out, Topic: WordsTopic},
	}
	if clusters > 2 {
		split.Failover = &meshfedv1.Failover{Clusters: []string{"c"}, Failback: "auto"}
	}
	count := &meshfedv1.FunctionSpec{
		Name: "count", Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "word-count"}},
		Input:  &meshfedv1.FunctionInput{Cluster: out, Topics: []string{WordsTopic}, SubscriptionPosition: "earliest"},
		Output: &meshfedv1.FunctionOutput{Cluster: out, Topic: CountsTopic},
	}
	return &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: "word-count", Tenant: "public", Namespace: "default", Labels: map[string]string{"app": "word-count"}},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{split, count}},
	}
}

// cluster returns a cluster by name.
func (f *Federation) cluster(name string) (*devCluster, error) {
	c, ok := f.clusters[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q (have %v): %w", name, f.names, ErrUnknownCluster)
	}
	return c, nil
}

// onParts runs op on the named cluster and its named parts (both when
// none is named, in start order), one operation at a time, unless the
// federation was stopped.
func (f *Federation) onParts(cluster string, ps []Part, op func(c *devCluster, want []Part) error) error {
	c, err := f.cluster(cluster)
	if err != nil {
		return err
	}
	want, err := parts(ps)
	if err != nil {
		return err
	}
	f.opMu.Lock()
	defer f.opMu.Unlock()
	if f.stopped {
		return ErrStopped
	}
	return op(c, want)
}

// parts returns the named parts in start order (broker first), or both.
func parts(ps []Part) ([]Part, error) {
	if len(ps) == 0 {
		return []Part{PartBroker, PartAgent}, nil
	}
	var out []Part
	for _, want := range []Part{PartBroker, PartAgent} {
		if slices.Contains(ps, want) {
			out = append(out, want)
		}
	}
	for _, p := range ps {
		if p != PartBroker && p != PartAgent {
			return nil, fmt.Errorf("%q: %w", p, ErrUnknownPart)
		}
	}
	return out, nil
}

func (c *devCluster) child(p Part) *child {
	if p == PartBroker {
		return c.broker
	}
	return c.agent
}

// Kill kills the named parts of a cluster (both when none is named) with
// SIGKILL, as `kill -9` would: the agent's instances die with it, and
// whatever the broker had not written to disk is lost. It returns once the
// processes are gone. Killing a part that is not running does nothing.
func (f *Federation) Kill(ctx context.Context, cluster string, ps ...Part) error {
	return f.onParts(cluster, ps, func(c *devCluster, want []Part) error {
		// The agent first: killed together, neither sees the other go.
		var errs []error
		for _, p := range slices.Backward(want) {
			if err := c.child(p).kill(killTimeout); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// Restart starts the named parts of a cluster (both when none is named)
// that are not running, with the same command lines as before: the same
// addresses and data dirs. It returns once a started broker serves again;
// an agent is only started (it registers on its own).
func (f *Federation) Restart(ctx context.Context, cluster string, ps ...Part) error {
	return f.onParts(cluster, ps, func(c *devCluster, want []Part) error {
		for _, p := range want {
			ch := c.child(p)
			if ch.running() {
				continue
			}
			if err := ch.start(f.spawn); err != nil {
				return err
			}
			if p == PartBroker {
				if err := f.waitBroker(ctx, c); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// KillCluster kills a cluster's broker and agent (see Kill).
func (f *Federation) KillCluster(ctx context.Context, cluster string) error {
	return f.Kill(ctx, cluster)
}

// StartCluster starts a cluster's broker and agent again (see Restart).
func (f *Federation) StartCluster(ctx context.Context, cluster string) error {
	return f.Restart(ctx, cluster)
}

// KillBroker kills a cluster's broker alone (see Kill).
func (f *Federation) KillBroker(ctx context.Context, cluster string) error {
	return f.Kill(ctx, cluster, PartBroker)
}

// StartBroker starts a cluster's broker again (see Restart).
func (f *Federation) StartBroker(ctx context.Context, cluster string) error {
	return f.Restart(ctx, cluster, PartBroker)
}

// ClusterStatus is the state of one cluster's processes.
type ClusterStatus struct {
	Name   string        `json:"name"`
	Broker ProcessStatus `json:"broker"`
	Agent  ProcessStatus `json:"agent"`
}

// Status returns the state of every cluster's processes, in name order.
func (f *Federation) Status() []ClusterStatus {
	var out []ClusterStatus
	for _, n := range f.names {
		c := f.clusters[n]
		out = append(out, ClusterStatus{Name: n, Broker: c.broker.status(), Agent: c.agent.status()})
	}
	return out
}

// Stop stops the traffic, the control API, the agents, the brokers and
// the server, in that order. It may be called more than once.
func (f *Federation) Stop() {
	f.opMu.Lock()
	already := f.stopped
	f.stopped = true
	f.opMu.Unlock()
	if already {
		return
	}
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	if f.control != nil {
		_ = f.control.Close()
	}
	for _, group := range []Part{PartAgent, PartBroker} {
		var wg sync.WaitGroup
		for _, c := range f.clusters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.child(group).stop(stopGrace, killTimeout); err != nil {
					f.cfg.Logger.Error("stop", "err", err)
				}
			}()
		}
		wg.Wait()
	}
	f.spawn.close()
	if f.server != nil {
		_ = f.server.Shutdown()
	}
}
