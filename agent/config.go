package agent

import (
	"errors"
	"log/slog"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	"google.golang.org/grpc"
)

// Defaults of Config's durations.
const (
	DefaultFallbackRewind      = time.Second
	DefaultProducerIdleTimeout = time.Minute
	DefaultRestartBackoffMin   = 200 * time.Millisecond
	DefaultRestartBackoffMax   = 10 * time.Second
	DefaultRestartHealthyAfter = 30 * time.Second
)

// Config configures an agent.
type Config struct {
	// Name is the agent's unique name. Required.
	Name string
	// Cluster is the Pulsar cluster the agent serves. Required.
	Cluster string
	// Servers are control-plane gRPC addresses. Required.
	Servers []string
	// PulsarURL overrides the service URL of the agent's own cluster (from
	// its Cluster object) — for agents that reach their broker by another name.
	PulsarURL string
	// PulsarAdminURL overrides the admin URL of the agent's own cluster.
	PulsarAdminURL string
	// DataDir keeps the agent's fencing record (the highest epoch seen per
	// assignment) and package cache. Required.
	DataDir string
	// Capacity is the number of instance slots offered. Zero: 100.
	Capacity int
	// Labels describe the agent; placement.nodeSelector matches them.
	Labels map[string]string
	// CPUMillis is the CPU offered to instances, in millicores. Zero: every
	// CPU of the host.
	CPUMillis int64
	// MemoryBytes is the memory offered to instances. Zero: the host's
	// total memory (/proc/meminfo).
	MemoryBytes int64
	// DialOptions secure the connections to the servers (mutual TLS with an
	// agent certificate). Nil: plaintext.
	DialOptions []grpc.DialOption
	// Runtimes by name ("builtin", "exec", "wasm"). Nil: builtin only.
	Runtimes map[string]runtime.Runtime
	// ReportInterval is how often instance status is reported. Zero: 1s.
	ReportInterval time.Duration
	// ResyncInterval forces a full reconcile pass at least this often. Zero: 10s.
	ResyncInterval time.Duration
	// FallbackRewind is how far before the home instance's watermark a
	// fallback instance starts a subscription it has to create on the
	// geo-replicated copy of its input. Zero: DefaultFallbackRewind.
	FallbackRewind time.Duration
	// ProducerIdleTimeout closes an effectively-once producer (one per
	// input partition, original producer and output topic) after this long
	// without a send. Zero: DefaultProducerIdleTimeout.
	ProducerIdleTimeout time.Duration
	// BacklogInterval is how often each instance reads its input
	// subscription's backlog. Zero: DefaultBacklogInterval.
	BacklogInterval time.Duration
	// RestartBackoffMin and RestartBackoffMax bound the wait before an
	// instance whose run failed starts again: the minimum after its first
	// failure, doubling with each failure in a row up to the maximum.
	// Zero: DefaultRestartBackoffMin and DefaultRestartBackoffMax.
	RestartBackoffMin time.Duration
	RestartBackoffMax time.Duration
	// RestartHealthyAfter is how long a run must last for its failure to
	// count as the first one again. Zero: DefaultRestartHealthyAfter.
	RestartHealthyAfter time.Duration
	// Logger receives structured logs. Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests inject one). Nil: time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	switch {
	case c.Name == "":
		return errors.New("agent name is required (--name)")
	case c.Cluster == "":
		return errors.New("cluster is required (--cluster)")
	case len(c.Servers) == 0:
		return errors.New("at least one control-plane server is required (--server)")
	case c.DataDir == "":
		return errors.New("data dir is required (--data-dir)")
	}
	if c.CPUMillis < 0 {
		return errors.New("cpu must not be negative (--cpu)")
	}
	if c.MemoryBytes < 0 {
		return errors.New("memory must not be negative (--memory)")
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = time.Second
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 10 * time.Second
	}
	if c.FallbackRewind < 0 {
		return errors.New("fallback rewind must not be negative (--fallback-rewind)")
	}
	if c.FallbackRewind == 0 {
		c.FallbackRewind = DefaultFallbackRewind
	}
	if c.ProducerIdleTimeout <= 0 {
		c.ProducerIdleTimeout = DefaultProducerIdleTimeout
	}
	if c.BacklogInterval <= 0 {
		c.BacklogInterval = DefaultBacklogInterval
	}
	if c.RestartBackoffMin <= 0 {
		c.RestartBackoffMin = DefaultRestartBackoffMin
	}
	if c.RestartBackoffMax <= 0 {
		c.RestartBackoffMax = DefaultRestartBackoffMax
	}
	if c.RestartBackoffMax < c.RestartBackoffMin {
		return errors.New("the maximum restart backoff must not be below the minimum (--restart-backoff-max)")
	}
	if c.RestartHealthyAfter <= 0 {
		c.RestartHealthyAfter = DefaultRestartHealthyAfter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
