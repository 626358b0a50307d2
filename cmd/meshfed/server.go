package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/controlplane"
	"github.com/meshfed/meshfed/controlplane/state"
	"github.com/meshfed/meshfed/telemetry"
	"github.com/spf13/cobra"
)

func init() { register(newServerCmd) }

func newServerCmd() *cobra.Command {
	var (
		cfg            controlplane.Config
		initialCluster string
		join           string
		logLevel       string
		cpuProfile     string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control-plane server (one member of the Raft group)",
		Long: `Run a control-plane server. Three or five servers form a Raft group that holds
every global object. A new group is bootstrapped with --initial-cluster (or as a
single node when neither --initial-cluster nor --join is given); a new server is
added to a running group with --join. A restarted server needs neither: it
resumes from the Raft state in --data-dir.

With --tls-* the gRPC API is mutual TLS; with --auth as well, users need a
bearer token (meshfed token create), every RPC is authorized by role, and
writes and refusals are kept in the audit log (meshfed audit).

SIGTERM or SIGINT shuts the server down. SIGUSR1 makes a leader hand
leadership to another voter (a follower logs that it does not lead).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.NodeID == "" || cfg.DataDir == "" {
				return usageError{fmt.Errorf("--node-id and --data-dir are required")}
			}
			if err := cfg.CheckAddrs(); err != nil {
				return usageError{err}
			}
			logger, err := newLogger(telemetry.LogJSON, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			ic, err := controlplane.ParseInitialCluster(initialCluster)
			if err != nil {
				return usageError{err}
			}
			cfg.InitialCluster = ic
			cfg.Join = client.ParseAddrs(join)
			if cfg.Auth && !cfg.TLS.Enabled() {
				return usageError{fmt.Errorf("--auth needs mutual TLS: also pass --tls-cert, --tls-key and --tls-ca (meshfed tls cert create --server %s)", cfg.NodeID)}
			}
			if cfg.AuditRetention < 1 {
				return usageError{fmt.Errorf("--audit-retention %d: keep at least one record", cfg.AuditRetention)}
			}
			stopTracing, err := telemetry.SetupTracing(cmd.Context(), "meshfed-server", cfg.NodeID)
			if err != nil {
				return err
			}
			defer stopTracing(context.Background())
			if os.Getenv("GOGC") == "" {
				// The server keeps its state in memory and allocates per
				// write; a higher GC target cut CPU per write by 8–23% in
				// the apply benchmark (docs/benchmarks/controlplane.md).
				debug.SetGCPercent(400)
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			srv, err := controlplane.NewServer(cfg)
			if err != nil {
				return err
			}
			cfg.Logger.Info("meshfed server started", "node", cfg.NodeID, "grpc", srv.GRPCAddr(), "grpc_advertised", srv.GRPCAdvertiseAddr(), "raft", srv.RaftAddr(), "http", srv.HTTPAddr(), "tls", cfg.TLS.Enabled(), "auth", cfg.Auth)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
			for s := range sig {
				if s == syscall.SIGUSR1 {
					// A leader hands leadership to another voter (before
					// maintenance; the linearizability test uses it).
					go func() {
						if err := srv.TransferLeadership(); err != nil {
							cfg.Logger.Warn("SIGUSR1: leadership not transferred", "err", err)
						} else {
							cfg.Logger.Info("SIGUSR1: leadership transferred")
						}
					}()
					continue
				}
				cfg.Logger.Info("shutting down", "signal", s.String())
				break
			}
			return srv.Shutdown()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NodeID, "node-id", "", "this server's Raft ID, unique in the group (required)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, stable store and snapshots (required)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", controlplane.DefaultRaftAddr, "Raft TCP address to bind (0.0.0.0:PORT for every interface, with --raft-advertise-addr)")
	f.StringVar(&cfg.RaftAdvertiseAddr, "raft-advertise-addr", "",
		"Raft address other servers dial, host:port; a DNS name is stored as a name in the Raft configuration and resolved at each dial (in Kubernetes, the pod's stable DNS name). "+
			"Default: --raft-addr's host with its port; required when --raft-addr binds 0.0.0.0 or ::")
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", controlplane.DefaultGRPCAddr, "gRPC API address to bind, for clients, agents and other servers")
	f.StringVar(&cfg.GRPCAdvertiseAddr, "grpc-advertise-addr", "",
		"gRPC address other servers forward requests to and joining servers are told, host:port, kept as written (a DNS name stays a name). "+
			"Default: --grpc-addr's host with its port; required when --grpc-addr binds 0.0.0.0 or ::")
	f.StringVar(&cfg.HTTPAddr, "http-addr", controlplane.DefaultHTTPAddr, "address for /metrics, /healthz, /readyz, Pulsar's Functions admin REST /admin/v3/functions and the mesh page /ui (https with --tls-cert; plaintext on the same port too) (empty: off)")
	f.DurationVar(&cfg.ReadyMaxContact, "ready-max-contact", controlplane.DefaultReadyMaxContact, "/readyz of a follower answers 503 when it has not heard from the leader for longer than this")
	f.Uint64Var(&cfg.ReadyMaxLag, "ready-max-lag", controlplane.DefaultReadyMaxLag, "/readyz of a follower answers 503 when more committed Raft entries than this wait to be applied")
	f.StringVar(&initialCluster, "initial-cluster", "", "bootstrap a new group with these voters: id=raft-address,... with each server's advertised Raft address, names kept as names (ignored when --data-dir holds state)")
	f.StringVar(&join, "join", "", "comma-separated gRPC addresses of running servers to join through (ignored when --data-dir holds state)")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 8192, "Raft log entries between snapshots")
	f.StringVar(&cfg.RaftLogStore, "raft-log-store", controlplane.RaftLogStoreAuto,
		"Raft log store of a new data dir: wal (append-only segment files, one sync per append), bolt (raft-boltdb, as before), "+
			"or auto (wal for a new data dir). A data dir that already holds a log keeps its store; asking for the other is an error, never a migration")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this server to the file, from start until SIGTERM or SIGINT (for `go tool pprof`; meshfed bench apply --server-cpuprofile sets it)")
	f.IntVar(&cfg.EventHistory, "event-history", 50000, "change events kept in memory so watches can resume")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 500*time.Millisecond, "how often agents heartbeat")
	f.DurationVar(&cfg.AgentLease, "agent-lease", 3*time.Second, "how long an agent runs instances without a successful heartbeat before stopping them itself")
	f.DurationVar(&cfg.AgentTTL, "agent-ttl", 4*time.Second, "how long without a heartbeat before an agent is marked Down and its instances move (must exceed --agent-lease)")
	f.DurationVar(&cfg.CounterWriteInterval, "counter-write-interval", 10*time.Second, "how often the leader writes instance counters that changed alone through Raft; it serves the newest from memory meanwhile (negative: write every report)")
	f.DurationVar(&cfg.FailbackHoldDown, "failback-hold-down", 30*time.Second, "how long a recovered cluster must stay Healthy before instances fail back automatically")
	f.IntVar(&cfg.MoveAfterRestarts, "move-after-restarts", controlplane.DefaultMoveAfterRestarts,
		"move an instance to another agent of its cluster (one that can run it, never back to one it left this way) once its agent has restarted it this many times after failures (negative: never)")
	f.IntVar(&cfg.RebalanceMoves, "rebalance-moves", controlplane.DefaultRebalanceMoves,
		"most instances one scheduler pass moves from the fullest agents of a cluster to the emptiest when agents join, make-before-break (the replacement runs before the original stops); 0, the default: no rebalancing")
	f.StringVar(&cfg.TLS.Cert, "tls-cert", "", "server certificate (meshfed tls cert create --server): makes the gRPC API mutual TLS")
	f.StringVar(&cfg.TLS.Key, "tls-key", "", "key of --tls-cert")
	f.StringVar(&cfg.TLS.CA, "tls-ca", "", "CA certificate every caller's certificate must be signed by")
	f.BoolVar(&cfg.Auth, "auth", false, "authenticate users by bearer token (agents and servers by certificate) and authorize every RPC by role; needs --tls-*. "+
		"The first leader writes a superuser token to <data-dir>/"+controlplane.BootstrapTokenFile+" (see docs/security.md); pass it to every server of the group")
	f.IntVar(&cfg.AuditRetention, "audit-retention", state.DefaultAuditRetention, "how many audit records (a count, not a time) the control plane keeps, the oldest dropped first; "+
		"the leader's value applies to every server (the structured log has every record as msg=audit)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
