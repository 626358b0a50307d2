package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

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

func newDrillRunCmd() *cobra.Command {
	var (
		cfg        drill.Config
		watch      []string
		produce    string
		asJSON     bool
		reportsDir string
		noSave     bool
	)
	cmd := &cobra.Command{
		Use:   "run --fail-cluster NAME",
		Short: "Take a cluster out on purpose, time failover and failback, and count lost and duplicated messages",
		Long: `Take a cluster out of service on purpose (cordon: its agents stop their
instances and the scheduler treats it as down), wait until every instance it
ran is Running elsewhere, keep it out for --duration (counted from the
cordon), bring it back (uncordon) and wait for failback. Meanwhile the drill
produces a numbered stream of input messages at --rate to the input topic of
the first affected function — on its input cluster and on each failover
cluster, identical streams, as Pulsar geo-replication would deliver them —
and reads the watched output topic from the start of the drill, matching
every output to its input by the tokens it carries. The report gives the
detection time, the failover time, the outage, the failback time,
messages produced/consumed/lost/duplicated and the peak lag.

Progress is printed live, one line per phase change (on stderr with --json).
The report is kept in --reports-dir; see meshfed drill list|show|summary.
If the drill is interrupted after the cordon, the cluster is uncordoned.
Exit code 1 when the drill fails (lost messages, duplicates under
effectively_once, no failover, failback not done in time).`,
		Example: `  meshfed drill run --fail-cluster a --duration 10s
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
			c, err := newClient()
			if err != nil {
				return err
			}
			defer c.Close()
			cfg.Client = c
			cfg.PulsarLogger = quietPulsarLogger()
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
	f.DurationVar(&cfg.Duration, "duration", drill.DefaultDuration, "how long the cluster stays out, from the cordon (longer if failover takes longer)")
	f.Float64Var(&cfg.Rate, "rate", 50, "input messages per second of the drill's stream (0: no stream, timings only)")
	f.StringArrayVar(&watch, "watch", nil, "output topic to account, CLUSTER[,CLUSTER]:TOPIC (repeatable; default: the first affected function's output)")
	f.StringVar(&produce, "produce", "", "input topic and its copies, CLUSTER[,CLUSTER...]:TOPIC, home copy first (default: the first affected function's input on its cluster and failover clusters)")
	f.IntVar(&cfg.Outputs, "outputs", drill.DefaultOutputs, "tokens (output items) per input message")
	f.DurationVar(&cfg.ReadyTimeout, "ready-timeout", drill.DefaultReadyTimeout, "wait this long for the cluster's instances to run and for the stream's first output")
	f.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", drill.DefaultRecoveryTimeout, "wait this long for failover")
	f.DurationVar(&cfg.FailbackTimeout, "failback-timeout", 2*time.Minute, "wait this long for failback after the uncordon, hold-down included (0: do not wait)")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", drill.DefaultDrainTimeout, "after the stream stops, wait this long for outputs still on their way")
	f.DurationVar(&cfg.PollInterval, "poll-interval", drill.DefaultPollInterval, "how often the control plane is read (the timings' resolution)")
	f.StringVar(&cfg.ID, "id", "", "drill id (default: the UTC time and a random suffix)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON (progress goes to stderr)")
	f.BoolVar(&noSave, "no-save", false, "do not keep the report")
	addReportsDir(cmd, &reportsDir)
	return cmd
}

func newDrillListCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List kept drill reports, oldest first",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			reports, err := drill.List(dir)
			if err != nil {
				return err
			}
			if asJSON {
				if reports == nil {
					reports = []*federation.DrillReport{}
				}
				return writeJSON(cmd.OutOrStdout(), reports)
			}
			if len(reports) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no drill reports in %s\n", dir)
				return nil
			}
			return drill.WriteList(cmd.OutOrStdout(), reports)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reports as a JSON array")
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
