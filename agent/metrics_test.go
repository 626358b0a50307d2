package agent

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is a settable clock for the one-minute windows.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestFunctionLabels(t *testing.T) {
	got := functionLabels("acme", "orders", "checkout", "enrich", 2, "eu")
	want := []string{"acme", "acme/orders", "enrich", "2", "eu", "acme/orders/enrich", "checkout"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("labels %q, want %q (names %q)", got, want, functionLabelNames)
	}
}

const seriesLabels = `{cluster="eu",fqfn="acme/orders/enrich",instance_id="2",mesh="checkout",name="enrich",namespace="acme/orders",tenant="acme"}`

func TestFunctionMetricsPulsarNames(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := newFunctionMetrics(clock.Now)
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	s := m.acquire(functionLabels("acme", "orders", "checkout", "enrich", 2, "eu"))
	for range 5 {
		s.receivedInput(time.Now().Add(-2 * time.Second))
	}
	for range 3 {
		s.invoked(time.Now())
		s.processedOK()
	}
	s.userFailure()
	s.systemFailure()

	counters := func(when string, total, window [4]float64) {
		t.Helper()
		values := gatherValues(t, reg)
		for k, n := range []string{metricReceived, metricProcessed, metricSysExceptions, metricUserExceptions} {
			if values[n] != total[k] || values[n+suffix1min] != window[k] {
				t.Errorf("%s: %s = %v, %s = %v; want %v and %v", when, n, values[n], n+suffix1min, values[n+suffix1min], total[k], window[k])
			}
		}
	}
	counters("after the first calls", [4]float64{5, 3, 1, 1}, [4]float64{5, 3, 1, 1})

	// A minute later the windows start again; the totals go on.
	clock.advance(time.Minute)
	s.receivedInput(time.Time{})
	counters("in the next window", [4]float64{6, 3, 1, 1}, [4]float64{1, 0, 0, 0})

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	quantiles := map[float64]bool{}
	for _, f := range fams {
		switch f.GetName() {
		case metricLatency:
			sum := f.GetMetric()[0].GetSummary()
			if sum.GetSampleCount() != 3 {
				t.Errorf("latency count %d, want 3", sum.GetSampleCount())
			}
			for _, q := range sum.GetQuantile() {
				quantiles[q.GetQuantile()] = true
			}
		case metricLastInvocation:
			if v := f.GetMetric()[0].GetGauge().GetValue(); v < float64(time.Now().Add(-time.Minute).UnixMilli()) {
				t.Errorf("last invocation %v is not a recent Unix time in milliseconds", v)
			}
		case metricInputLag:
			if v := f.GetMetric()[0].GetGauge().GetValue(); v < 2 || v > 60 {
				t.Errorf("input lag %vs, want about 2s", v)
			}
		}
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if !quantiles[q] {
			t.Errorf("latency summary lacks quantile %v (has %v)", q, quantiles)
		}
	}
	if n := countSeries(m, metricLatency+suffix1min); n != 1 {
		t.Errorf("%d one-minute latency series, want 1", n)
	}
}

// TestFunctionMetricsShared checks that two instances with the same labels
// (an instance replaced by a new epoch) share one series, which goes when
// the last of them stops.
func TestFunctionMetricsShared(t *testing.T) {
	m := newFunctionMetrics(time.Now)
	labels := functionLabels("t", "n", "m", "f", 0, "a")
	a, b := m.acquire(labels), m.acquire(labels)
	if a != b {
		t.Fatal("two instances with the same labels got separate series")
	}
	other := m.acquire(functionLabels("t", "n", "m", "f", 1, "a"))
	a.processedOK()
	if n := countSeries(m, metricProcessed); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
	m.release(a)
	if n := countSeries(m, metricProcessed); n != 2 {
		t.Fatalf("after one of two releases: %d series, want 2", n)
	}
	m.release(b)
	m.release(other)
	if n := countSeries(m, metricProcessed); n != 0 {
		t.Fatalf("after every release: %d series, want 0", n)
	}
}

// gatherValues returns the value of every counter and gauge series in reg
// by name, checking each carries the instance's labels.
func gatherValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "quantile" {
					labels = append(labels, l.GetName()+"=\""+l.GetValue()+"\"")
				}
			}
			if got := "{" + strings.Join(labels, ",") + "}"; got != seriesLabels {
				t.Errorf("%s labels %s, want %s", f.GetName(), got, seriesLabels)
			}
			switch {
			case m.GetCounter() != nil:
				out[f.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[f.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// countSeries returns how many series named name c collects.
func countSeries(c prometheus.Collector, name string) int {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for m := range ch {
		if strings.Contains(m.Desc().String(), fmt.Sprintf("fqName: %q", name)) {
			n++
		}
	}
	return n
}
