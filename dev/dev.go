// Package dev runs the whole federation in one process for development and
// demos: one control-plane server, N clusters (each an embedded broker with
// de-duplication on, plus an agent), tenant public with namespace default,
// and an example cross-cluster mesh. It writes the addresses to
// <data-dir>/dev.json so other tools can attach.
package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/agent"
	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// Config configures a dev federation.
type Config struct {
	// DataDir keeps every component's state; reusing it resumes them.
	DataDir string
	// Clusters is the number of clusters, named a, b, c, ... (1 to 26).
	Clusters int
	// GRPCAddr is the control plane's gRPC address ("127.0.0.1:0" picks one).
	GRPCAddr string
	// BrokerPort and AdminPort are the first cluster's ports; cluster i
	// uses BrokerPort+i and AdminPort+i. Zero: pick free ports.
	BrokerPort, AdminPort int
	// TrafficRate, when positive, produces that many sentences per second
	// to the example mesh's input topic in cluster a.
	TrafficRate float64
	// NoExample skips applying the example mesh.
	NoExample bool
	// Runtimes for the agents. Nil: builtin only.
	Runtimes map[string]runtime.Runtime
	// FailbackHoldDown overrides the server's failback hold-down. Zero: 30s.
	FailbackHoldDown time.Duration
	// Logger receives every component's logs.
	Logger *slog.Logger
}

// ClusterInfo is one cluster's addresses, as written to dev.json.
type ClusterInfo struct {
	Name       string `json:"name"`
	ServiceURL string `json:"serviceURL"`
	AdminURL   string `json:"adminURL"`
	Agent      string `json:"agent"`
}

// Info is what dev.json holds.
type Info struct {
	Server   string        `json:"server"`
	Clusters []ClusterInfo `json:"clusters"`
	// Open is true: the dev federation runs without TLS or authentication.
	Open bool `json:"open"`
}

// Federation is a running dev federation.
type Federation struct {
	Info    Info
	cfg     Config
	server  *controlplane.Server
	brokers []*broker.Broker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start brings up the federation; Stop tears it down.
func Start(ctx context.Context, cfg Config) (*Federation, error) {
	if cfg.Clusters < 1 || cfg.Clusters > 26 {
		return nil, fmt.Errorf("--clusters %d: use 1 to 26", cfg.Clusters)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create --data-dir: %w", err)
	}
	f := &Federation{cfg: cfg, Info: Info{Open: true}}
	ok := false
	defer func() {
		if !ok {
			f.Stop()
		}
	}()
	srv, err := controlplane.NewServer(controlplane.Config{
		NodeID: "dev", DataDir: filepath.Join(cfg.DataDir, "server"), RaftAddr: "127.0.0.1:0", GRPCAddr: cfg.GRPCAddr,
		FailbackHoldDown: cfg.FailbackHoldDown,
		Logger:           cfg.Logger.With("component", "server"),
	})
	if err != nil {
		return nil, err
	}
	f.server = srv
	f.Info.Server = srv.GRPCAddr()
	for i := 0; i < cfg.Clusters; i++ {
		name := string(rune('a' + i))
		listen, admin := "127.0.0.1:0", "127.0.0.1:0"
		if cfg.BrokerPort > 0 {
			listen = fmt.Sprintf("127.0.0.1:%d", cfg.BrokerPort+i)
		}
		if cfg.AdminPort > 0 {
			admin = fmt.Sprintf("127.0.0.1:%d", cfg.AdminPort+i)
		}
		b, err := broker.New(broker.Config{DataDir: filepath.Join(cfg.DataDir, "broker-"+name), ListenAddr: listen, HTTPAddr: admin,
			ClusterName: name, DeduplicationDefault: true, Logger: cfg.Logger.With("component", "broker", "cluster", name)})
		if err != nil {
			return nil, fmt.Errorf("broker for cluster %s: %w", name, err)
		}
		if err := b.Start(); err != nil {
			return nil, fmt.Errorf("broker for cluster %s: %w", name, err)
		}
		f.brokers = append(f.brokers, b)
		f.Info.Clusters = append(f.Info.Clusters, ClusterInfo{Name: name, ServiceURL: b.ServiceURL(), AdminURL: b.AdminURL(), Agent: "agent-" + name})
	}
	if err := f.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := f.applyBase(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for _, c := range f.Info.Clusters {
		a, err := agent.New(agent.Config{Name: c.Agent, Cluster: c.Name, Servers: []string{f.Info.Server},
			DataDir: filepath.Join(cfg.DataDir, "agent-"+c.Name), Runtimes: cfg.Runtimes, Logger: cfg.Logger.With("component", "agent")})
		if err != nil {
			return nil, err
		}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); _ = a.Run(runCtx) }()
	}
	if cfg.TrafficRate > 0 {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.traffic(runCtx) }()
	}
	data, _ := json.MarshalIndent(f.Info, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "dev.json"), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write dev.json: %w", err)
	}
	ok = true
	return f, nil
}

func (f *Federation) waitReady(ctx context.Context) error {
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
		objs = append(objs, objects.Wrap(&meshfedv1.Cluster{
			Metadata: &meshfedv1.ObjectMeta{Name: c.Name, Labels: map[string]string{"region": "dev-" + c.Name}},
			Spec:     &meshfedv1.ClusterSpec{Region: "dev-" + c.Name, ServiceUrl: c.ServiceURL, AdminUrl: c.AdminURL},
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
// b (or to a when there is one cluster); count runs where the words are.
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

var sentences = []string{
	"the quick brown fox jumps over the lazy dog",
	"a mesh of functions spans many clusters",
	"one region fails and the functions move on",
	"nothing lost and nothing duplicated",
}

// traffic produces sentences to cluster a at the configured rate.
func (f *Federation) traffic(ctx context.Context) {
	log := f.cfg.Logger.With("component", "traffic")
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: f.Info.Clusters[0].ServiceURL, Logger: plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))})
	if err != nil {
		log.Error("traffic client", "err", err)
		return
	}
	defer c.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: SentencesTopic, Name: "meshfed-dev-traffic"})
	if err != nil {
		log.Error("traffic producer", "err", err)
		return
	}
	defer p.Close()
	t := time.NewTicker(time.Duration(float64(time.Second) / f.cfg.TrafficRate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(sentences[i%len(sentences)])}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil && ctx.Err() == nil {
				log.Warn("traffic send", "err", err)
			}
		})
	}
}

// Stop stops agents, brokers and the server, in that order.
func (f *Federation) Stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, b := range f.brokers {
		b.Close()
	}
	if f.server != nil {
		_ = f.server.Shutdown()
	}
}
