package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meshfed/meshfed/agent"
	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/agent/runtime/builtin"
	execrt "github.com/meshfed/meshfed/agent/runtime/exec"
	"github.com/meshfed/meshfed/agent/runtime/limits"
	wasmrt "github.com/meshfed/meshfed/agent/runtime/wasm"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/telemetry"
	"github.com/spf13/cobra"
)

func init() { register(newAgentCmd) }

func newAgentCmd() *cobra.Command {
	var (
		cfg      agent.Config
		labels   []string
		runtimes string
		httpAddr string
		logLevel string
		limitsOf string
		cgParent string
		cpu      string
		memory   string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an agent: the instances the control plane assigns to one Pulsar cluster",
		Long: `Run an agent for one Pulsar cluster. The agent registers with the control
plane (any server in --server), heartbeats to keep its lease, watches the
instances assigned to it and runs them: each consumes from its input cluster
and produces to its output cluster. If no server is reachable for longer than
the lease, the agent stops its instances itself.

The agent authenticates to each Pulsar cluster's brokers (binary protocol and
admin API) with what that Cluster object's spec.auth names: a token, OAuth2
client credentials, a TLS client certificate or basic credentials, and the
CAs it trusts. Secrets are references (file:///path, env:NAME) resolved on
this host: the files must be here, or the variables set in this process's
environment. A credential the broker refuses makes the cluster Degraded with
the reason; the agent keeps running and resumes when it is accepted again
(docs/security.md).`,
		Example: `  meshfed agent --cluster a --name agent-a1 --server 10.0.0.1:7100,10.0.0.2:7100 --data-dir /var/lib/meshfed-agent`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(telemetry.LogJSON, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.Servers = client.ParseAddrs(global.server)
			if cfg.Name == "" {
				host, _ := os.Hostname()
				cfg.Name = cfg.Cluster + "-" + host
			}
			cfg.Labels = map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--label %q: use key=value", l)}
				}
				cfg.Labels[k] = v
			}
			if cpu != "" {
				if cfg.CPUMillis, err = objects.ParseCPU(cpu); err != nil {
					return usageError{fmt.Errorf("--cpu: %w", err)}
				}
			}
			if memory != "" {
				if cfg.MemoryBytes, err = objects.ParseMemory(memory); err != nil {
					return usageError{fmt.Errorf("--memory: %w", err)}
				}
			}
			mech, err := limits.ParseMechanism(limitsOf)
			if err != nil {
				return usageError{fmt.Errorf("--limits: %w", err)}
			}
			enf, err := limits.Detect(mech, limits.Options{Parent: cgParent})
			if err != nil {
				return fmt.Errorf("--limits %s: %w", mech, err)
			}
			logger.Info("resource limits", "mechanism", enf.Mechanism(), "cgroup_parent", cgParent)
			rts, err := buildRuntimes(runtimes, logger, enf)
			if err != nil {
				return err
			}
			cfg.Runtimes = rts
			// Agents authenticate by their certificate, never by a token.
			if cfg.DialOptions, err = dialOptions(global.tls, ""); err != nil {
				return usageError{err}
			}
			stopTracing, err := telemetry.SetupTracing(cmd.Context(), "meshfed-agent", cfg.Name)
			if err != nil {
				return err
			}
			defer stopTracing(context.Background())
			a, err := agent.New(cfg)
			if err != nil {
				return usageError{err}
			}
			if httpAddr != "" {
				stop, err := serveAgentHTTP(cmd.Context(), httpAddr, cfg.Name, a.Metrics(), a.Ready, logger)
				if err != nil {
					return err
				}
				defer stop()
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer cancel()
			logger.Info("meshfed agent starting", "name", cfg.Name, "cluster", cfg.Cluster, "servers", cfg.Servers)
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Cluster, "cluster", "", "name of the Pulsar cluster (a Cluster object) this agent serves (required)")
	f.StringVar(&cfg.Name, "name", "", "agent name, unique in the federation (default: CLUSTER-HOSTNAME)")
	f.StringVar(&cfg.PulsarURL, "pulsar-url", "", "Pulsar service URL of this agent's cluster, overriding the Cluster object's serviceURL")
	f.StringVar(&cfg.PulsarAdminURL, "pulsar-admin-url", "", "Pulsar admin URL of this agent's cluster, overriding the Cluster object's adminURL")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the agent's fencing record and package cache (required)")
	f.IntVar(&cfg.Capacity, "capacity", 100, "instance slots this agent offers")
	f.StringSliceVar(&labels, "label", nil, "agent label key=value (repeatable); functions select agents by label with placement.nodeSelector")
	f.StringVar(&cpu, "cpu", "", "CPU this agent offers to instances, as a quantity such as 4 or 3500m; the sum of the functions' resources.cpu requests placed here stays within it (default: every CPU of the host)")
	f.StringVar(&memory, "memory", "", "memory this agent offers to instances, as a quantity such as 8Gi; the sum of the functions' resources.memory requests placed here stays within it (default: the host's total memory)")
	f.StringVar(&runtimes, "runtimes", "builtin,exec,wasm", "comma-separated runtimes this agent runs (builtin, exec, wasm)")
	f.DurationVar(&cfg.FallbackRewind, "fallback-rewind", agent.DefaultFallbackRewind,
		"how far before the home instance's last watermark an instance that failed over to another cluster starts the subscription it creates on the geo-replicated copy of its input (covers clock skew between the producers of a partition, which Apache Pulsar's time seek needs; inputs in the overlap are de-duplicated under effectively_once, processed again otherwise)")
	f.StringVar(&httpAddr, "http-addr", "", "address for /metrics, /healthz (the process is up) and /readyz (registered, heartbeats succeeding) (empty: off)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&limitsOf, "limits", string(limits.Auto),
		"how exec instances are held to their function's resources (CPU and memory): auto (the best this host offers), cgroup2, cgroup1, rlimit (memory only) or none; reported to the control plane (docs/limits.md)")
	f.StringVar(&cgParent, "cgroup-parent", limits.DefaultParent,
		"cgroup, relative to the cgroup hierarchy's root, under which the agent creates one group per exec process (give each agent on a host its own)")
	f.DurationVar(&cfg.RestartBackoffMin, "restart-backoff-min", agent.DefaultRestartBackoffMin, "wait before restarting an instance after its first failure in a row; it doubles with each further failure")
	f.DurationVar(&cfg.RestartBackoffMax, "restart-backoff-max", agent.DefaultRestartBackoffMax, "longest wait before restarting an instance that keeps failing")
	f.DurationVar(&cfg.RestartHealthyAfter, "restart-healthy-after", agent.DefaultRestartHealthyAfter, "how long an instance must run for its next failure to count as the first again (resetting the backoff)")
	return cmd
}

func buildRuntimes(list string, logger *slog.Logger, enf *limits.Enforcer) (map[string]runtime.Runtime, error) {
	out := map[string]runtime.Runtime{}
	for _, name := range client.ParseAddrs(list) {
		switch name {
		case "builtin":
			out[name] = builtin.Runtime{}
		case "exec":
			out[name] = execrt.New(logger.With("runtime", "exec"), execrt.Options{Limits: enf})
		case "wasm":
			rt, err := wasmrt.New(logger.With("runtime", "wasm"), wasmrt.Options{})
			if err != nil {
				return nil, fmt.Errorf("wasm runtime: %w", err)
			}
			out[name] = rt
		default:
			return nil, usageError{fmt.Errorf("--runtimes: unknown runtime %q (builtin, exec, wasm)", name)}
		}
	}
	return out, nil
}
