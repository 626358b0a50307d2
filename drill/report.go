package drill

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/federation"
)

func seconds(d *time.Duration) string {
	if d == nil {
		return "—"
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

func verdict(r *federation.DrillReport) string {
	if r.Passed() {
		return "PASSED"
	}
	return "FAILED"
}

// WriteText prints a report for people.
func WriteText(w io.Writer, r *federation.DrillReport) error {
	t := r.Timeline.Times()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	crash := r.ModeOrDefault() == federation.DrillModeCrash
	failure, restore, seenOut := "cordon", "uncordon", "Cordoned or Down"
	if crash {
		fmt.Fprintf(tw, "drill %s: cluster %s crashed (broker and agent killed) for %s — %s\n", r.ID, r.Cluster, r.Duration, verdict(r))
		failure, restore, seenOut = "kill", "restart", "Down"
	} else {
		fmt.Fprintf(tw, "drill %s: cluster %s cordoned for %s — %s\n", r.ID, r.Cluster, r.Duration, verdict(r))
	}
	for _, a := range r.Affected {
		moved := "did not run elsewhere"
		if a.MovedTo != "" {
			moved = "→ " + a.MovedTo
		}
		g := a.Guarantee
		if g == "" {
			g = "atleast_once"
		}
		fmt.Fprintf(tw, "  affected\t%s/%s/%s (%s) %s\n", a.Tenant, a.Namespace, a.Assignment, g, moved)
	}
	fmt.Fprintf(tw, "  detection\t%s\t(%s → cluster %s seen %s)\n", seconds(t.Detection), failure, r.Cluster, seenOut)
	fmt.Fprintf(tw, "  failover\t%s\t(%s → every affected instance Running elsewhere)\n", seconds(t.Recovery), failure)
	if r.Messages != nil {
		switch {
		case t.FirstOutput != nil:
			fmt.Fprintf(tw, "  first output\t%s\t(%s → first output read that ran in %s)\n", seconds(t.FirstOutput), failure, r.FallbackOutputCluster)
		case r.OutputsCarryCluster:
			fmt.Fprintf(tw, "  first output\t—\t(no output that ran in another cluster than %s was read)\n", r.Cluster)
		default:
			fmt.Fprintf(tw, "  first output\t—\t(outputs carry no %s property)\n", ClusterProperty)
		}
	}
	fmt.Fprintf(tw, "  outage\t%s\t(%s → %s)\n", seconds(t.Outage), failure, restore)
	fb := seconds(t.Failback)
	if t.Failback == nil {
		fb = r.FailbackStatus
	}
	fmt.Fprintf(tw, "  failback\t%s\t(%s → every affected instance Running in %s; includes the hold-down)\n", fb, restore, r.Cluster)
	for _, in := range r.Inputs {
		how := "one copy"
		switch r.Replication {
		case federation.ReplicationGeo:
			how = fmt.Sprintf("written to %s, geo-replicated", in.Clusters[0])
			if r.StreamFallback != "" {
				how += fmt.Sprintf("; to %s while %s was down", r.StreamFallback, r.Cluster)
			}
		case federation.ReplicationSimulated:
			how = "identical stream written to each copy (replication simulated)"
		}
		fmt.Fprintf(tw, "  input\t%s\t%g msg/s, %s\n", in, r.Rate, how)
	}
	for _, w := range r.Watched {
		fmt.Fprintf(tw, "  watched\t%s\n", w)
	}
	if m := r.Messages; m != nil {
		what := "messages"
		if r.Stranded != nil {
			what = "replicated"
		}
		fmt.Fprintf(tw, "  %s\tproduced %d (%d output items), consumed %d items, lost %d, duplicated %d, unexpected %d\n",
			what, m.Produced, m.ExpectedOutputs, m.Consumed, m.Lost, m.Duplicated, m.Unexpected)
		if r.ProduceFailures > 0 {
			fmt.Fprintf(tw, "  \t%d input messages not acknowledged (left out)\n", r.ProduceFailures)
		}
		if r.Unreplicated != nil {
			fmt.Fprintf(tw, "  unreplicated\t%d\t(acknowledged by %s before the %s, not in the fallback's copy when %s returned)\n",
				*r.Unreplicated, r.Inputs[0].Clusters[0], failure, r.Cluster)
		}
		if st := r.Stranded; st != nil && st.Produced > 0 {
			fmt.Fprintf(tw, "  stranded tail\t%d inputs: %d processed exactly once, %d with an output lost, %d with an output duplicated (failback %s)\n",
				st.Produced, st.ExactlyOnce, st.LostMessages, st.DuplicatedMessages, r.FailbackStatus)
		}
		peak := "0"
		if m.PeakLag > 0 {
			peak = fmt.Sprintf("%d messages", m.PeakLag)
			if c := r.Timeline.Failed; !c.IsZero() {
				peak += fmt.Sprintf(" at %+.2fs from the failure", m.PeakLagAt.Sub(c).Seconds())
			}
		}
		fmt.Fprintf(tw, "  peak lag\t%s\t(slowest message %.3fs from send to last output)\n", peak, m.MaxDelay.Seconds())
	} else {
		fmt.Fprintf(tw, "  messages\tnot measured (no input stream: --rate 0)\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "  note\t%s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(tw, "  problem\t%s\n", p)
	}
	return tw.Flush()
}

// WriteList prints one line per report.
func WriteList(w io.Writer, reports []*federation.DrillReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLUSTER\tMODE\tSTARTED\tDETECTION\tFAILOVER\tFIRST OUTPUT\tFAILBACK\tPRODUCED\tLOST\tDUPLICATED\tUNREPLICATED\tRESULT")
	for _, r := range reports {
		t := r.Timeline.Times()
		fb := seconds(t.Failback)
		if t.Failback == nil && r.FailbackStatus != "" {
			fb = r.FailbackStatus
		}
		prod, lost, dup, unrepl := "—", "—", "—", "—"
		if m := r.Messages; m != nil {
			prod, lost, dup = fmt.Sprint(m.Produced), fmt.Sprint(m.Lost), fmt.Sprint(m.Duplicated)
		}
		if r.Unreplicated != nil {
			unrepl = fmt.Sprint(*r.Unreplicated)
		}
		started := "—"
		if b := began(r); !b.IsZero() {
			started = b.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Cluster, r.ModeOrDefault(), started,
			seconds(t.Detection), seconds(t.Recovery), seconds(t.FirstOutput), fb, prod, lost, dup, unrepl, verdict(r))
	}
	return tw.Flush()
}

// WriteSummary prints the percentiles and totals of several drills.
func WriteSummary(w io.Writer, s federation.DrillSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "drills\t%d (%d passed, %d not recovered)\n", s.Runs, s.Passed, s.NotRecovered)
	fmt.Fprintln(tw, "\tN\tP50\tP99\tMAX")
	for _, row := range []struct {
		name string
		st   federation.DurationStats
	}{{"detection", s.Detection}, {"failover", s.Recovery}, {"first output", s.FirstOutput}, {"failback", s.Failback}, {"slowest msg", s.SlowestMessage}} {
		if row.st.N == 0 {
			fmt.Fprintf(tw, "%s\t0\t—\t—\t—\n", row.name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3fs\t%.3fs\t%.3fs\n", row.name, row.st.N, row.st.P50.Seconds(), row.st.P99.Seconds(), row.st.Max.Seconds())
	}
	fmt.Fprintf(tw, "messages\tproduced %d, lost %d, duplicated %d, unexpected %d; largest peak lag %d\n", s.Produced, s.Lost, s.Duplicated, s.Unexpected, s.PeakLag)
	if s.UnreplicatedDrills > 0 {
		fmt.Fprintf(tw, "unreplicated\t%d inputs over %d drills; stranded tail: %d processed exactly once, %d with an output lost, %d with an output duplicated\n",
			s.Unreplicated, s.UnreplicatedDrills, s.StrandedOnce, s.StrandedLost, s.StrandedDuplicated)
	}
	return tw.Flush()
}
