package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable prints results as a Markdown table, pairing each meshfed
// level with the etcd level of the same concurrency when there is one.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| system\t| clients\t| ops\t| errors\t| ops/s\t| p50\t| p99\t| server CPU/op\t|")
	fmt.Fprintln(tw, "|---\t|---:\t|---:\t|---:\t|---:\t|---:\t|---:\t|---:\t|")
	for _, r := range results {
		cpu := "n/a"
		if r.ServerCPU > 0 {
			cpu = fmt.Sprintf("%d µs", r.CPUPerOp().Microseconds())
		}
		fmt.Fprintf(tw, "| %s\t| %d\t| %d\t| %d\t| %.0f\t| %s\t| %s\t| %s\t|\n",
			r.System, r.Concurrency, r.Ops, r.Errors, r.Throughput(), ms(r.P50), ms(r.P99), cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var ratios []string
	for _, m := range results {
		if m.System != "meshfed" {
			continue
		}
		for _, e := range results {
			if e.System == "etcd" && e.Concurrency == m.Concurrency && e.Throughput() > 0 && e.P99 > 0 {
				ratios = append(ratios, fmt.Sprintf("| %d\t| %.2f\t| %.2f\t| %.2f\t|",
					m.Concurrency, m.Throughput()/e.Throughput(), float64(m.P50)/float64(e.P50), float64(m.P99)/float64(e.P99)))
			}
		}
	}
	if len(ratios) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| clients\t| meshfed/etcd ops/s\t| meshfed/etcd p50\t| meshfed/etcd p99\t|")
	fmt.Fprintln(tw, "|---:\t|---:\t|---:\t|---:\t|")
	for _, r := range ratios {
		fmt.Fprintln(tw, r)
	}
	return tw.Flush()
}

// ms formats a latency in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
