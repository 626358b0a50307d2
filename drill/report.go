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
	fmt.Fprintf(tw, "drill %s: cluster %s out for %s — %s\n", r.ID, r.Cluster, r.Duration, verdict(r))
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
	fmt.Fprintf(tw, "  detection\t%s\t(cordon → cluster %s seen Cordoned or Down)\n", seconds(t.Detection), r.Cluster)
	fmt.Fprintf(tw, "  failover\t%s\t(cordon → every affected instance Running elsewhere)\n", seconds(t.Recovery))
	fmt.Fprintf(tw, "  outage\t%s\t(cordon → uncordon)\n", seconds(t.Outage))
	fb := seconds(t.Failback)
	if t.Failback == nil {
		fb = r.FailbackStatus
	}
	fmt.Fprintf(tw, "  failback\t%s\t(uncordon → every affected instance Running in %s; includes the hold-down)\n", fb, r.Cluster)
	for _, in := range r.Inputs {
		fmt.Fprintf(tw, "  input\t%s\t%g msg/s, identical stream on each cluster\n", in, r.Rate)
	}
	for _, w := range r.Watched {
		fmt.Fprintf(tw, "  watched\t%s\n", w)
	}
	if m := r.Messages; m != nil {
		fmt.Fprintf(tw, "  messages\tproduced %d (%d output items), consumed %d items, lost %d, duplicated %d, unexpected %d\n",
			m.Produced, m.ExpectedOutputs, m.Consumed, m.Lost, m.Duplicated, m.Unexpected)
		if r.ProduceFailures > 0 {
			fmt.Fprintf(tw, "  \t%d input messages not acknowledged by every copy (left out)\n", r.ProduceFailures)
		}
		peak := "0"
		if m.PeakLag > 0 {
			peak = fmt.Sprintf("%d messages", m.PeakLag)
			if c := r.Timeline.Failed; !c.IsZero() {
				peak += fmt.Sprintf(" at %+.2fs from the cordon", m.PeakLagAt.Sub(c).Seconds())
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
	fmt.Fprintln(tw, "ID\tCLUSTER\tSTARTED\tDETECTION\tFAILOVER\tFAILBACK\tPRODUCED\tLOST\tDUPLICATED\tRESULT")
	for _, r := range reports {
		t := r.Timeline.Times()
		fb := seconds(t.Failback)
		if t.Failback == nil && r.FailbackStatus != "" {
			fb = r.FailbackStatus
		}
		prod, lost, dup := "—", "—", "—"
		if m := r.Messages; m != nil {
			prod, lost, dup = fmt.Sprint(m.Produced), fmt.Sprint(m.Lost), fmt.Sprint(m.Duplicated)
		}
		started := "—"
		if b := began(r); !b.IsZero() {
			started = b.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Cluster, started, seconds(t.Detection), seconds(t.Recovery), fb, prod, lost, dup, verdict(r))
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
	}{{"detection", s.Detection}, {"failover", s.Recovery}, {"failback", s.Failback}, {"slowest msg", s.SlowestMessage}} {
		if row.st.N == 0 {
			fmt.Fprintf(tw, "%s\t0\t—\t—\t—\n", row.name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3fs\t%.3fs\t%.3fs\n", row.name, row.st.N, row.st.P50.Seconds(), row.st.P99.Seconds(), row.st.Max.Seconds())
	}
	fmt.Fprintf(tw, "messages\tproduced %d, lost %d, duplicated %d, unexpected %d; largest peak lag %d\n", s.Produced, s.Lost, s.Duplicated, s.Unexpected, s.PeakLag)
	return tw.Flush()
}
