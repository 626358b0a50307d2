package telemetry

import (
	"regexp"
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`max(meshfed_raft_has_leader) < 1 or absent(meshfed_raft_has_leader)`, []string{"meshfed_raft_has_leader"}},
		{`sum by (fqfn, cluster) (rate(pulsar_function_received_total{fqfn=~"$fqfn", cluster=~"a|b"}[$__rate_interval]))`,
			[]string{"pulsar_function_received_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(meshfed_raft_apply_duration_seconds_bucket[5m])))`,
			[]string{"meshfed_raft_apply_duration_seconds_bucket"}},
		{`time() - max by (fqfn) (pulsar_function_last_invocation) / 1e3`, []string{"pulsar_function_last_invocation"}},
		{`a_total / on (cluster) group_left (home) b_info unless c offset 5m`, []string{"a_total", "b_info", "c"}},
		{`label_values(pulsar_function_received_total{cluster=~"$cluster"}, fqfn)`, []string{"pulsar_function_received_total"}},
		{`min_over_time(x_seconds[10m]) > 60 and deriv(x_seconds[10m]) > 0`, []string{"x_seconds"}},
		{`vector(1)`, nil},
	} {
		if got := MetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("MetricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// FuzzMetricNames: any input lexes without panicking, and every name
// returned is a valid metric name.
func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{`sum by (a) (rate(x_total{a="b"}[1m]))`, `label_values(m{c=~"$c"}, fqfn)`, `{`, `"unterminated`, `a[`, `by (`} {
		f.Add(s)
	}
	valid := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, n := range MetricNames(expr) {
			if !valid.MatchString(n) {
				t.Fatalf("MetricNames(%q) returned %q", expr, n)
			}
		}
	})
}
