package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Putter writes one value. Implementations must be safe for concurrent use;
// worker is the caller's index in [0, concurrency) and seq counts its writes.
type Putter interface {
	Put(ctx context.Context, worker, seq int) error
}

// Result of one load level.
type Result struct {
	System      string
	Concurrency int
	// Ops is the number of successful writes; Errors the failed ones.
	Ops, Errors int
	Elapsed     time.Duration
	// P50 and P99 are of the successful writes' latencies.
	P50, P99 time.Duration
	// FirstErr is the first failure, if any.
	FirstErr error
	// ServerCPU is the CPU time the servers used during the measured
	// writes (user + system); zero when unknown.
	ServerCPU time.Duration
}

// CPUPerOp returns the servers' CPU time per successful write, or 0.
func (r Result) CPUPerOp() time.Duration {
	if r.Ops == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.Ops)
}

// CPUMeter reports the CPU time a cluster's servers have used so far.
type CPUMeter interface {
	CPUTime() (time.Duration, error)
}

// Throughput returns successful writes per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Load runs concurrency workers that each write in a loop, back to back,
// for dur (measured from the first write; a warm-up of warm comes before
// and is not counted). With a non-nil cpu it also records the servers' CPU
// time over the measured writes.
func Load(ctx context.Context, system string, p Putter, concurrency int, warm, dur time.Duration, cpu CPUMeter) Result {
	if warm > 0 {
		run(ctx, p, concurrency, warm, 1<<30)
	}
	var cpu0 time.Duration
	if cpu != nil {
		c, err := cpu.CPUTime()
		if err != nil {
			cpu = nil
		}
		cpu0 = c
	}
	lat, errs, first, elapsed := run(ctx, p, concurrency, dur, 0)
	res := Result{System: system, Concurrency: concurrency, Ops: len(lat), Errors: errs, Elapsed: elapsed, FirstErr: first}
	if cpu != nil {
		if c, err := cpu.CPUTime(); err == nil {
			res.ServerCPU = c - cpu0
		}
	}
	res.P50, res.P99 = Percentile(lat, 0.50), Percentile(lat, 0.99)
	return res
}

// run drives the workers; seqBase offsets the sequence numbers so warm-up
// writes and measured writes do not repeat each other.
func run(ctx context.Context, p Putter, concurrency int, dur time.Duration, seqBase int) (lat []time.Duration, errs int, first error, elapsed time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		all = make([][]time.Duration, concurrency)
	)
	start := time.Now()
	end := start.Add(dur)
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1024)
			for seq := seqBase; ; seq++ {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					break
				}
				err := p.Put(ctx, w, seq)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					mu.Lock()
					errs++
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			all[w] = mine
		}()
	}
	wg.Wait()
	elapsed = time.Since(start)
	for _, l := range all {
		lat = append(lat, l...)
	}
	return lat, errs, first, elapsed
}

// Percentile returns the q-quantile (0 < q <= 1) of d by the nearest-rank
// method, or 0 for no samples. It sorts d.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	rank := int(q*float64(len(d)) + 0.999999)
	rank = min(max(rank, 1), len(d))
	return d[rank-1]
}

// errStopped is returned by waits cut short by their context.
var errStopped = errors.New("stopped")

// waitUntil polls cond every 20ms until it returns nil or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errStopped)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Merge combines rounds of the same system and concurrency: ops, errors,
// time and CPU add up; p50 and p99 are the medians of the rounds' values.
// Results keep the order in which each system and concurrency first appears.
func Merge(results []Result) []Result {
	type key struct {
		system string
		c      int
	}
	var order []key
	groups := map[key][]Result{}
	for _, r := range results {
		k := key{r.System, r.Concurrency}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		m := Result{System: k.system, Concurrency: k.c}
		var p50s, p99s []time.Duration
		for _, r := range groups[k] {
			m.Ops += r.Ops
			m.Errors += r.Errors
			m.Elapsed += r.Elapsed
			m.ServerCPU += r.ServerCPU
			if m.FirstErr == nil {
				m.FirstErr = r.FirstErr
			}
			p50s, p99s = append(p50s, r.P50), append(p99s, r.P99)
		}
		m.P50, m.P99 = Percentile(p50s, 0.5), Percentile(p99s, 0.5)
		out = append(out, m)
	}
	return out
}
