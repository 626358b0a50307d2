package main

import (
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meshfed/meshfed/dev"
	"github.com/meshfed/meshfed/telemetry"
	"github.com/spf13/cobra"
)

func init() { register(newDevCmd) }

func newDevCmd() *cobra.Command {
	var (
		cfg      dev.Config
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole federation on loopback: a server and N clusters (broker + agent processes each)",
		Long: `Run the whole federation on loopback: a control-plane server in this process,
and N clusters named a, b, c, ... each an embedded Pulsar-protocol broker
(de-duplication on) and an agent, run as child processes of this binary
(meshfed broker, meshfed agent) with their logs in <data-dir>/logs. Tenant
public and namespace default are geo-replicated between all clusters
(configured through each broker's admin REST API, as for Apache Pulsar), and
an example cross-cluster word-count mesh runs (sentences in a → words in b →
counts in b; split fails over to c when there are 3 clusters). --traffic
writes to cluster a only; replication carries it to the others.

Each cluster's broker and agent can be killed with SIGKILL and started again
on the same addresses and data dirs through the control API (its URL is
"control" in <data-dir>/dev.json):
  curl -X POST $CONTROL/v1/clusters/a/kill     # broker and agent of a, as kill -9
  curl -X POST $CONTROL/v1/clusters/a/start    # back on the same ports
  curl $CONTROL/v1/clusters                    # every cluster's processes
(?part=broker or ?part=agent for one of them); meshfed drill run --mode crash
uses it. State in --data-dir survives restarts. Ctrl-C stops everything; the
children die with this process even if it is killed.

The dev federation's control plane runs WITHOUT TLS or authentication:
loopback only. With --secure the brokers are secured as production Pulsar
clusters are: TLS listeners only (pulsar+ssl://localhost, https://localhost),
token authentication and authorization (superuser role admin); the CA,
certificates, signing key and tokens are made in <data-dir>/secure (kept for
later runs), each agent attaches with its own token (role agent-<cluster>,
granted produce and consume on public/default), and the Cluster objects name
those files in spec.auth.`,
		Example: `  meshfed dev
  meshfed dev --clusters 3 --traffic 10
  meshfed dev --secure --data-dir /tmp/mf-secure`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(telemetry.LogText, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.ChildLogLevel = "info"
			if logger.Enabled(cmd.Context(), slog.LevelDebug) {
				cfg.ChildLogLevel = logLevel
			}
			cfg.ChildLogFormat = global.logFormat
			ctx, cancel := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer cancel()
			f, err := dev.Start(ctx, cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "meshfed dev federation running\n")
			fmt.Fprintf(out, "  open: for development only — no TLS, no authentication; anyone who reaches %s can change everything\n\n", f.Info.Server)
			fmt.Fprintf(out, "  control plane   %s      export MESHFED_SERVER=%s\n", f.Info.Server, f.Info.Server)
			for _, c := range f.Info.Clusters {
				fmt.Fprintf(out, "  cluster %s       %s  admin %s  agent %s\n", c.Name, c.ServiceURL, c.AdminURL, c.Agent)
			}
			fmt.Fprintf(out, "  control API     %s   (kill and start a cluster's broker and agent)\n", f.Info.Control)
			agentMetrics := make([]string, 0, len(f.Info.Clusters))
			for _, c := range f.Info.Clusters {
				agentMetrics = append(agentMetrics, c.AgentHTTP+"/metrics")
			}
			fmt.Fprintf(out, "  metrics         %s/metrics (control plane), %s (agents)\n", f.Info.ServerHTTP, strings.Join(agentMetrics, ", "))
			fmt.Fprintf(out, "  mesh page       %s/ui   (the meshes as graphs, live rates, where instances run)\n", f.Info.ServerHTTP)
			switch {
			case len(f.Info.Clusters) < 2:
			case f.Info.Replication:
				fmt.Fprintf(out, "  geo-replication %s between all clusters\n", dev.ReplicatedNamespace)
			default:
				fmt.Fprintf(out, "  geo-replication NOT configured (%s): input written to one cluster does not reach the others\n", f.Info.ReplicationError)
			}
			fmt.Fprintf(out, "\n  addresses in %s/%s, logs in %s/logs\n", cfg.DataDir, dev.InfoFile, cfg.DataDir)
			fmt.Fprintf(out, "  try: meshfed describe mesh word-count\n")
			if s := f.Info.Secure; s != nil {
				fmt.Fprintf(out, "  brokers require TLS and tokens: CA %s, superuser token %s\n", s.CA, s.AdminToken)
				fmt.Fprintf(out, "       meshfed produce %s --service-url %s --tls-trust-cert-path %s --auth-token-file %s -m \"hello federated world\"\n",
					dev.SentencesTopic, f.Info.Clusters[0].ServiceURL, s.CA, s.AdminToken)
			} else {
				fmt.Fprintf(out, "       meshfed produce %s --service-url %s -m \"hello federated world\"\n", dev.SentencesTopic, f.Info.Clusters[0].ServiceURL)
			}
			fmt.Fprintf(out, "  Ctrl-C stops everything.\n")
			<-ctx.Done()
			fmt.Fprintln(out, "stopping...")
			f.Stop()
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.DataDir, "data-dir", "meshfed-dev-data", "directory for all state and logs; reuse it to resume")
	fl.IntVar(&cfg.Clusters, "clusters", 2, "number of clusters (named a, b, c, ...)")
	fl.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:7100", "control-plane gRPC address")
	fl.StringVar(&cfg.ControlAddr, "control-addr", "127.0.0.1:0", "address of the control API that kills and starts clusters' processes (recorded in dev.json)")
	fl.IntVar(&cfg.BrokerPort, "broker-port", 6650, "Pulsar port of cluster a; cluster i uses this + i (0 picks free ports, kept while meshfed dev runs)")
	fl.IntVar(&cfg.AdminPort, "admin-port", 8080, "admin REST port of cluster a; cluster i uses this + i (0 picks free ports, kept while meshfed dev runs)")
	fl.Float64Var(&cfg.TrafficRate, "traffic", 0, "produce this many example sentences per second to cluster a (0: none)")
	fl.DurationVar(&cfg.FailbackHoldDown, "failback-hold-down", 30*time.Second, "how long a recovered cluster must stay Healthy before instances fail back")
	fl.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", dev.DefaultHeartbeatInterval, "how often agents heartbeat")
	fl.DurationVar(&cfg.AgentLease, "agent-lease", dev.DefaultAgentLease, "how long an agent cut off from the control plane keeps its instances")
	fl.DurationVar(&cfg.AgentTTL, "agent-ttl", 0, fmt.Sprintf("how long without a heartbeat before an agent is Down and its instances move; must exceed --agent-lease (0: %s or 1.5 × --agent-lease, whichever is longer)", dev.DefaultAgentTTL))
	fl.BoolVar(&cfg.NoExample, "no-example", false, "do not apply the example word-count mesh")
	fl.BoolVar(&cfg.Secure, "secure", false, "run the brokers with TLS and token authentication and authorization; the CA, certificates and tokens are made in <data-dir>/secure, and the agents attach with their tokens")
	fl.StringVar(&cfg.Runtimes, "runtimes", "builtin,exec,wasm", "runtimes the agents run")
	fl.StringVar(&cfg.Binary, "binary", "", "meshfed binary run as brokers and agents (default: this executable)")
	fl.StringVar(&logLevel, "log-level", "warn", "log level of this process (the children log at info, or debug, to their files)")
	return cmd
}
