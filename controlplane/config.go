package controlplane

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/security"
)

// Default addresses of a server (loopback: a single machine).
const (
	DefaultRaftAddr = "127.0.0.1:7000"
	DefaultGRPCAddr = "127.0.0.1:7100"
	DefaultHTTPAddr = "127.0.0.1:7200"
)

// Default bounds of /readyz on a follower.
const (
	DefaultReadyMaxContact = 5 * time.Second
	DefaultReadyMaxLag     = 1000
)

// Default bounds of self-healing and rebalancing (see Config).
const (
	DefaultMoveAfterRestarts = 5
	DefaultRebalanceMoves    = 0
)

// Config configures a server. Zero values take the documented defaults.
type Config struct {
	// NodeID is this server's Raft ID; unique in the group. Required.
	NodeID string
	// DataDir holds the Raft log, stable store and snapshots. Required.
	DataDir string
	// RaftAddr is the Raft TCP bind address ("127.0.0.1:0" picks a port).
	RaftAddr string
	// RaftAdvertiseAddr is the Raft address other servers dial, stored in
	// the Raft configuration as written: a DNS name stays a name and is
	// resolved at each dial. Empty: RaftAddr's host with the bound port,
	// which is an error when RaftAddr binds every interface (0.0.0.0, ::).
	RaftAdvertiseAddr string
	// GRPCAddr is the gRPC API bind address.
	GRPCAddr string
	// GRPCAdvertiseAddr is the gRPC address other servers forward to and
	// joining servers are told, kept as written. Empty: as for
	// RaftAdvertiseAddr, from GRPCAddr.
	GRPCAdvertiseAddr string
	// HTTPAddr serves /metrics, /healthz, /readyz and the Functions REST
	// API (/admin/v3/functions; TLS too when TLS is set). Empty: not served.
	HTTPAddr string
	// InitialCluster bootstraps a new group with these voters (id → Raft
	// address). Empty and no Join: a single-node group of this server.
	// Ignored when the data dir already holds Raft state.
	InitialCluster map[string]string
	// Join lists gRPC addresses of running servers to ask to add this one.
	// Ignored when the data dir already holds Raft state.
	Join []string
	// EventHistory bounds the change events kept for watch resumption.
	EventHistory int
	// ApplyTimeout bounds how long a write waits to be enqueued. Zero: 10s.
	ApplyTimeout time.Duration
	// ForwardHold is how long a request waits for a leader to be known
	// before failing with Unavailable. Zero: 5s.
	ForwardHold time.Duration
	// SnapshotThreshold is the number of log entries between snapshots. Zero: 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot. Zero: 30s.
	SnapshotInterval time.Duration
	// TrailingLogs kept after a snapshot. Zero: 10240.
	TrailingLogs uint64
	// HeartbeatInterval is how often agents heartbeat. Zero: 500ms.
	HeartbeatInterval time.Duration
	// AgentLease is how long an agent runs its instances without a
	// successful heartbeat before it stops them itself. Zero: 3s.
	AgentLease time.Duration
	// AgentTTL is how long the leader waits for a heartbeat before it marks
	// an agent Down and moves its instances. It must exceed AgentLease so an
	// instance never runs in two places. Zero: AgentLease + 1s.
	AgentTTL time.Duration
	// FailbackHoldDown is how long a recovered cluster must stay Healthy
	// before instances fail back to it automatically. Zero: 30s.
	FailbackHoldDown time.Duration
	// MoveAfterRestarts moves an instance to another agent of its cluster
	// once its agent has restarted it this many times after failures.
	// Zero: DefaultMoveAfterRestarts. Negative: never.
	MoveAfterRestarts int
	// RebalanceMoves bounds the instances one scheduler pass moves from
	// the fullest agents of a cluster to the emptiest (when agents join).
	// Zero or negative: no rebalancing (the default: a move restarts a
	// running instance and, being make-before-break, runs it in two
	// places for a moment, so it is asked for, as Nomad and Kubernetes
	// users ask for a descheduler).
	RebalanceMoves int
	// CounterWriteInterval bounds how often the leader writes one
	// instance's counters through Raft when nothing else in its reported
	// status changed; between writes it keeps the newest counters in memory
	// and lays them over the reads it serves. A change of state, since,
	// last error or agent is written at once. Zero: 10s. Negative: every
	// report that changes anything is written.
	CounterWriteInterval time.Duration
	// SchedulerInterval bounds how long the scheduler waits between passes
	// when nothing changes. Zero: 1s.
	SchedulerInterval time.Duration
	// TLS, when set, makes the gRPC API mutual TLS: every caller must
	// present a certificate the CA signed, and servers call each other with
	// their own certificate. Zero: plaintext (trusted networks only).
	TLS security.Files
	// Auth turns on authentication and authorization: users present bearer
	// tokens the control plane signed, agents and servers their
	// certificates, and every RPC is checked against the caller's role. It
	// needs TLS. The first leader creates the signing key and writes a
	// bootstrap superuser token to DataDir/bootstrap-token.
	Auth bool
	// AuditRetention bounds the audit records kept in the state. The
	// leader's value applies: it trims the log for every server. Zero: 100,000.
	AuditRetention int
	// legacyLogTypes makes the server behave as one from before the log
	// types UpdateStatus, ApplyPlan and RegisterAgent: it neither
	// advertises nor applies them. For mixed-version tests; false in use.
	legacyLogTypes bool
	// ReadyMaxContact is how long a follower may go without hearing from
	// the leader and still answer /readyz with 200. Zero: 5s.
	ReadyMaxContact time.Duration
	// ReadyMaxLag is how many committed Raft entries a follower may have
	// left to apply and still answer /readyz with 200. Zero: 1000.
	ReadyMaxLag uint64
	// RaftLogStore picks the Raft log store of a new data dir: RaftLogStoreAuto,
	// RaftLogStoreBolt or RaftLogStoreWAL. A data dir that holds a log keeps
	// its store. Empty: RaftLogStoreAuto.
	RaftLogStore string
	// RaftTweak, if set, adjusts the Raft configuration (tests use short timeouts).
	RaftTweak func(*raft.Config)
	// Logger receives structured logs. Nil: slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.NodeID == "" {
		return fmt.Errorf("node id is required (--node-id)")
	}
	if c.DataDir == "" {
		return fmt.Errorf("data dir is required (--data-dir)")
	}
	if c.RaftAddr == "" {
		c.RaftAddr = DefaultRaftAddr
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if err := c.CheckAddrs(); err != nil {
		return err
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.ForwardHold == 0 {
		c.ForwardHold = 5 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 500 * time.Millisecond
	}
	if c.AgentLease == 0 {
		c.AgentLease = 3 * time.Second
	}
	if c.AgentTTL == 0 {
		c.AgentTTL = c.AgentLease + time.Second
	}
	if c.AgentTTL <= c.AgentLease {
		return fmt.Errorf("agent TTL %s must exceed the agent lease %s, or an instance could run in two places", c.AgentTTL, c.AgentLease)
	}
	if c.FailbackHoldDown == 0 {
		c.FailbackHoldDown = 30 * time.Second
	}
	if c.MoveAfterRestarts == 0 {
		c.MoveAfterRestarts = DefaultMoveAfterRestarts
	}
	if c.CounterWriteInterval == 0 {
		c.CounterWriteInterval = 10 * time.Second
	}
	if c.SchedulerInterval == 0 {
		c.SchedulerInterval = time.Second
	}
	if c.Auth && !c.TLS.Enabled() {
		return fmt.Errorf("--auth needs mutual TLS (--tls-cert, --tls-key, --tls-ca): agents prove their cluster with certificates and tokens must not cross the network in clear")
	}
	if c.ReadyMaxContact == 0 {
		c.ReadyMaxContact = DefaultReadyMaxContact
	}
	if c.ReadyMaxLag == 0 {
		c.ReadyMaxLag = DefaultReadyMaxLag
	}
	if c.AuditRetention <= 0 {
		c.AuditRetention = state.DefaultAuditRetention
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.InitialCluster) > 0 {
		if _, ok := c.InitialCluster[c.NodeID]; !ok {
			return fmt.Errorf("--initial-cluster does not name this node %q", c.NodeID)
		}
		if len(c.Join) > 0 {
			return fmt.Errorf("--initial-cluster and --join are exclusive: bootstrap a new group or join a running one")
		}
	}
	return nil
}

// CheckAddrs checks the bind and advertise addresses before anything
// listens: an advertise address must be dialable host:port, and one must be
// set when its bind address listens on every interface.
func (c *Config) CheckAddrs() error {
	if err := checkAddrPair("--raft-addr", c.RaftAddr, "--raft-advertise-addr", c.RaftAdvertiseAddr); err != nil {
		return err
	}
	return checkAddrPair("--grpc-addr", c.GRPCAddr, "--grpc-advertise-addr", c.GRPCAdvertiseAddr)
}

// ParseInitialCluster parses "id=host:port,id2=host:port".
func ParseInitialCluster(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not id=raft-address", part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--initial-cluster: id %q appears twice", id)
		}
		out[id] = addr
	}
	return out, nil
}
