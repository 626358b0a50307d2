package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/dev"
	"github.com/meshfed/meshfed/drill"
	"github.com/meshfed/meshfed/federation"
	"github.com/spf13/cobra"
)

func init() { register(newDrillCmd) }

func newDrillCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run failover drills and read their reports: run, list, show, summary",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("drill needs a subcommand (run, list, show, summary)")}
		},
	}
	cmd.AddCommand(newDrillRunCmd(), newDrillListCmd(), newDrillShowCmd(), newDrillSummaryCmd())
	return cmd
}

func addReportsDir(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "reports-dir", drill.DefaultDir(), "directory of drill reports (one JSON file per drill)")
}

func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// defaultCrashBurst is the burst of a crash drill whose stream stays on
// the home: without a backlog the fallback would have nothing to do.
const defaultCrashBurst = 1000

func newDrillRunCmd() *cobra.Command {
	var (
		cfg        drill.Config
		watch      []string
		produce    string
		asJSON     bool
		reportsDir string
		noSave     bool
		devDir     string
		burst      int
	)
	cmd := &cobra.Command{
		Use:   "run --fail-cluster NAME [--mode cordon|crash]",
		Short: "Take a cluster out on purpose (cordon, or crash in meshfed dev), time failover and failback, and count every message",
		Long: `Take a cluster out of service on purpose, wait until every instance it ran is
Running elsewhere, keep it out for --duration (counted from the failure),
bring it back and wait for failback.

--mode cordon (the default, and the mode for live environments) sets the
cluster's spec.cordoned: its agents stop their instances and the scheduler
treats it as down; uncordoning brings it back. --mode crash kills the
cluster's broker and agent with SIGKILL, as kill -9 would, and starts them
again on the same addresses and data afterwards: it needs a meshfed dev
federation (found through --dev-dir) and the control plane sees the failure
only by missed heartbeats.

Meanwhile the drill produces a numbered stream of input messages at --rate
to the input topic of the first affected function. When the home broker says
the topic's namespace is geo-replicated to the fallback clusters, the stream
is written to the home cluster only and reaches the fallback by replication,
also in crash mode, where sends wait for the home to return
(--producer-failover writes them to the first fallback meanwhile, as a
producer with cluster failover would). A crash drill first sends a --burst
of messages to the home and kills it once it writes their first outputs, so
the fallback has a replicated backlog to recover.
When the namespace is not replicated, the drill writes the identical stream
to every copy itself and the report says replication was simulated. The
watched output topic is read from the start of the drill, every output
matched to its input by the tokens it carries. The report gives the
detection time, the failover time, the time to the first output produced in
a fallback cluster (by the outputs' meshfed-cluster property), the outage,
the failback time, messages produced/consumed/lost/duplicated, the inputs
left unreplicated when the home failed (Pulsar's recovery point) and what
became of them after failback, and the peak lag.

Progress is printed live, one line per phase change (on stderr with --json).
The report is kept in --reports-dir; see meshfed drill list|show|summary.
If the drill is interrupted after the failure, the cluster is brought back.
Exit code 1 when the drill fails (lost messages, duplicates under
effectively_once, no failover, no output from the fallback, failback not
done in time).`,
		Example: `  meshfed drill run --fail-cluster a --duration 10s
  meshfed drill run --fail-cluster a --mode crash --dev-dir meshfed-dev-data
  meshfed drill run --fail-cluster a --watch b:persistent://public/default/words --rate 100 --json
  meshfed drill run --fail-cluster a --failback-timeout 0   # do not wait for failback`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Cluster == "" {
				return usageError{errors.New("--fail-cluster is required")}
			}
			if cfg.Rate < 0 {
				return usageError{fmt.Errorf("--rate %g: want 0 (no stream) or more", cfg.Rate)}
			}
			if cfg.Outputs < 1 || cfg.Outputs > 1000 {
				return usageError{fmt.Errorf("--outputs %d: want 1 to 1000 tokens per message", cfg.Outputs)}
			}
			for _, w := range watch {
				s, err := drill.ParseStream(w)
				if err != nil {
					return usageError{fmt.Errorf("--watch %w", err)}
				}
				cfg.Watch = append(cfg.Watch, s)
			}
			if produce != "" {
				s, err := drill.ParseStream(produce)
				if err != nil {
					return usageError{fmt.Errorf("--produce %w", err)}
				}
				cfg.Inputs = []federation.DrillStream{s}
			}
			switch cfg.Mode {
			case federation.DrillModeCordon:
			case federation.DrillModeCrash:
				crash, err := devCrasher(cmd, devDir, cfg.Cluster)
				if err != nil {
					return err
				}
				cfg.Crash = crash
			default:
				return usageError{fmt.Errorf("--mode %q: use cordon or crash", cfg.Mode)}
			}
			if cfg.ProducerFailover && cfg.Mode != federation.DrillModeCrash {
				return usageError{errors.New("--producer-failover applies to --mode crash")}
			}
			switch {
			case burst < -1:
				return usageError{fmt.Errorf("--burst %d: want 0 or more messages", burst)}
			case burst == -1 && cfg.Mode == federation.DrillModeCrash && !cfg.ProducerFailover && cfg.Rate > 0:
				cfg.Burst = defaultCrashBurst
			case burst > 0 && cfg.Rate <= 0:
				return usageError{errors.New("--burst needs an input stream (--rate above 0)")}
			case burst > 0:
				cfg.Burst = burst
			}
			if cfg.StrandFor != 0 && (cfg.Mode != federation.DrillModeCrash || cfg.StrandFor < 0) {
				return usageError{fmt.Errorf("--strand %s: a positive duration, with --mode crash", cfg.StrandFor)}
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			defer c.Close()
			cfg.Client = c
			cfg.PulsarLogger = quietPulsarLogger()
			if cfg.Mode == federation.DrillModeCrash {
				// The crash makes the drill's own clients warn about every
				// reconnect attempt to the killed broker: expected, not news.
				cfg.PulsarLogger = plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelError})))
			}
			progress := cmd.OutOrStdout()
			if asJSON {
				progress = cmd.ErrOrStderr()
			}
			cfg.Progress = func(e drill.Event) { fmt.Fprintln(progress, e.String()) }
			ctx, cancel := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer cancel()
			rep, runErr := drill.Run(ctx, cfg)
			if rep == nil {
				return runErr
			}
			saved := ""
			if !noSave && !rep.Timeline.Failed.IsZero() {
				path, err := drill.Save(reportsDir, rep)
				if err != nil {
					return err
				}
				saved = path
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout())
				if err := drill.WriteText(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
				if saved != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "\nreport saved to %s (meshfed drill show %s)\n", saved, rep.ID)
				}
			}
			if runErr != nil {
				return runErr
			}
			if !rep.Passed() {
				return fmt.Errorf("drill %s failed: %s", rep.ID, strings.Join(rep.Problems, "; "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Cluster, "fail-cluster", "", "the cluster to take out (required)")
	f.StringVar(&cfg.Mode, "mode", federation.DrillModeCordon, "how to take it out: cordon (live environments) or crash (SIGKILL its broker and agent; meshfed dev only)")
	f.StringVar(&devDir, "dev-dir", "meshfed-dev-data", "--mode crash: the data dir of the meshfed dev federation (its dev.json names the control API)")
	f.DurationVar(&cfg.StrandFor, "strand", 0, "--mode crash: kill the fallback's broker this long before the crash (started again right after it), so that what the home acknowledges meanwhile is stranded there: exercises the unreplicated tail (0: no)")
	f.BoolVar(&cfg.ProducerFailover, "producer-failover", false, "--mode crash: write the stream to the first fallback while the home is down, as a producer with cluster failover would (default: to the home only; its sends wait for it)")
	f.IntVar(&burst, "burst", -1, fmt.Sprintf("send this many messages to the home at once before the failure, and fail it once it writes their first outputs, so it dies with a backlog (-1: %d in crash mode without --producer-failover, else 0)", defaultCrashBurst))
	f.DurationVar(&cfg.Duration, "duration", drill.DefaultDuration, "how long the cluster stays out, from the failure (longer if failover takes longer)")
	f.Float64Var(&cfg.Rate, "rate", 50, "input messages per second of the drill's stream (0: no stream, timings only)")
	f.StringArrayVar(&watch, "watch", nil, "output topic to account, CLUSTER[,CLUSTER]:TOPIC (repeatable; default: the first affected function's output)")
	f.StringVar(&produce, "produce", "", "input topic and its copies, CLUSTER[,CLUSTER...]:TOPIC, home copy first (default: the first affected function's input on its cluster and failover clusters); written to the home only when it replicates to the others")
	f.IntVar(&cfg.Outputs, "outputs", drill.DefaultOutputs, "tokens (output items) per input message")
	f.DurationVar(&cfg.ReadyTimeout, "ready-timeout", drill.DefaultReadyTimeout, "wait this long for the cluster's instances to run and for the stream's first output")
	f.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", drill.DefaultRecoveryTimeout, "wait this long for failover")
	f.DurationVar(&cfg.FailbackTimeout, "failback-timeout", 2*time.Minute, "wait this long for failback after the uncordon or restart, hold-down included (0: do not wait)")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", drill.DefaultDrainTimeout, "after the stream stops, wait this long for outputs still on their way")
	f.DurationVar(&cfg.PollInterval, "poll-interval", drill.DefaultPollInterval, "how often the control plane is read (the timings' resolution)")
	f.StringVar(&cfg.ID, "id", "", "drill id (default: the UTC time and a random suffix)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON (progress goes to stderr)")
	f.BoolVar(&noSave, "no-save", false, "do not keep the report")
	addReportsDir(cmd, &reportsDir)
	return cmd
}

// devCrasher returns the control API of the meshfed dev federation in
// devDir, after checking that it runs, that it has the cluster, and that
// --server (when given) is its control plane; without --server, the drill
// talks to the dev federation's.
func devCrasher(cmd *cobra.Command, devDir, cluster string) (drill.Crasher, error) {
	info, err := dev.ReadInfo(devDir)
	if err != nil {
		return nil, fmt.Errorf("--mode crash needs a meshfed dev federation (or use --mode cordon): %w", err)
	}
	if info.Control == "" {
		return nil, fmt.Errorf("--mode crash: %s/%s has no control API: it was written by an older meshfed dev; restart meshfed dev", devDir, dev.InfoFile)
	}
	ctl := dev.NewControlClient(info.Control)
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	st, err := ctl.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("--mode crash needs a running meshfed dev federation (data dir %s): %w", devDir, err)
	}
	var names []string
	for _, c := range st {
		names = append(names, c.Name)
	}
	if !slices.Contains(names, cluster) {
		return nil, usageError{fmt.Errorf("--fail-cluster %s: the meshfed dev federation in %s has clusters %s", cluster, devDir, strings.Join(names, ", "))}
	}
	explicit := cmd.Flags().Changed("server") || os.Getenv("MESHFED_SERVER") != ""
	switch {
	case !explicit:
		global.server = info.Server
	case !slices.Contains(client.ParseAddrs(global.server), info.Server):
		return nil, usageError{fmt.Errorf("--server %s is not the control plane of the meshfed dev federation in %s (%s): crash mode kills that federation's processes", global.server, devDir, info.Server)}
	}
	return ctl, nil
}

func newDrillListCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
		output outputFlag
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List kept drill reports, oldest first",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				output.format = formatJSON
			}
			if err := output.check(); err != nil {
				return err
			}
			reports, err := drill.List(dir)
			if err != nil {
				return err
			}
			switch output.format {
			case formatJSON, formatYAML:
				if reports == nil {
					reports = []*federation.DrillReport{}
				}
				return printValue(cmd.OutOrStdout(), output.format, reports)
			case formatName:
				ids := make([]string, len(reports))
				for i, r := range reports {
					ids[i] = r.ID
				}
				return printNames(cmd.OutOrStdout(), "drill", ids)
			}
			if len(reports) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no drill reports in %s\n", dir)
				return nil
			}
			return drill.WriteList(cmd.OutOrStdout(), reports)
		},
	}
	output.register(cmd, listingFormats...)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reports as a JSON array (same as -o json)")
	addReportsDir(cmd, &dir)
	return cmd
}

func newDrillShowCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print one drill report",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := drill.Load(dir, args[0])
			if err != nil {
				if errors.Is(err, drill.ErrNotFound) {
					return fmt.Errorf("%w (see meshfed drill list --reports-dir %s)", err, dir)
				}
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			return drill.WriteText(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	addReportsDir(cmd, &dir)
	return cmd
}

func newDrillSummaryCmd() *cobra.Command {
	var (
		dir    string
		last   int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "summary [ID...]",
		Short: "Percentiles of detection, failover and failback times, and message totals, over kept drills",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var reports []*federation.DrillReport
			if len(args) > 0 {
				for _, id := range args {
					r, err := drill.Load(dir, id)
					if err != nil {
						return err
					}
					reports = append(reports, r)
				}
			} else {
				all, err := drill.List(dir)
				if err != nil {
					return err
				}
				reports = all
			}
			if last > 0 && len(reports) > last {
				reports = reports[len(reports)-last:]
			}
			if len(reports) == 0 {
				return fmt.Errorf("no drill reports in %s", dir)
			}
			s := federation.SummarizeDrills(reports)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			return drill.WriteSummary(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().IntVar(&last, "last", 0, "only the last N reports (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	addReportsDir(cmd, &dir)
	return cmd
}
