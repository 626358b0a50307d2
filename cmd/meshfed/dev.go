package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meshfed/meshfed/dev"
	"github.com/spf13/cobra"
)

func init() { register(newDevCmd) }

func newDevCmd() *cobra.Command {
	var (
		cfg      dev.Config
		runtimes string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole federation in one process: a server and N clusters (broker + agent each)",
		Long: `Run the whole federation on loopback in one process: a control-plane server,
N clusters named a, b, c, ... (each an embedded Pulsar-protocol broker with
de-duplication on, plus an agent), tenant public with namespace default, and
an example cross-cluster word-count mesh (sentences in a → words in b →
counts in b). The addresses are printed and written to <data-dir>/dev.json.
State in --data-dir survives restarts. Ctrl-C stops everything.

The dev federation runs WITHOUT TLS or authentication: loopback only.`,
		Example: `  meshfed dev
  meshfed dev --clusters 3 --traffic 50`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)}
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			cfg.Logger = logger
			rts, err := buildRuntimes(runtimes, logger)
			if err != nil {
				return err
			}
			cfg.Runtimes = rts
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
			fmt.Fprintf(out, "\n  addresses in %s/dev.json\n", cfg.DataDir)
			fmt.Fprintf(out, "  try: meshfed describe mesh word-count\n")
			fmt.Fprintf(out, "       meshfed produce %s --service-url %s -m \"hello federated world\"\n", dev.SentencesTopic, f.Info.Clusters[0].ServiceURL)
			fmt.Fprintf(out, "  Ctrl-C stops everything.\n")
			<-ctx.Done()
			fmt.Fprintln(out, "stopping...")
			f.Stop()
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.DataDir, "data-dir", "meshfed-dev-data", "directory for all state; reuse it to resume")
	fl.IntVar(&cfg.Clusters, "clusters", 2, "number of clusters (named a, b, c, ...)")
	fl.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:7100", "control-plane gRPC address")
	fl.IntVar(&cfg.BrokerPort, "broker-port", 6650, "Pulsar port of cluster a; cluster i uses this + i (0 picks free ports)")
	fl.IntVar(&cfg.AdminPort, "admin-port", 8080, "admin REST port of cluster a; cluster i uses this + i (0 picks free ports)")
	fl.Float64Var(&cfg.TrafficRate, "traffic", 0, "produce this many example sentences per second to cluster a (0: none)")
	fl.DurationVar(&cfg.FailbackHoldDown, "failback-hold-down", 30*time.Second, "how long a recovered cluster must stay Healthy before instances fail back")
	fl.BoolVar(&cfg.NoExample, "no-example", false, "do not apply the example word-count mesh")
	fl.StringVar(&runtimes, "runtimes", "builtin,exec,wasm", "runtimes the agents run")
	fl.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}
