package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of odd", ms(3, 1, 2), 0.5, 2 * time.Millisecond},
		{"median of even takes the lower", ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p100", ms(hundred...), 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.in, tt.q); got != tt.want {
				t.Fatalf("Percentile(%v) = %s, want %s", tt.q, got, tt.want)
			}
		})
	}
}

func TestEncodeEtcdPut(t *testing.T) {
	key, value := []byte("b-42"), bytes.Repeat([]byte("x"), 1024)
	b := encodeEtcdPut(key, value)
	got := map[protowire.Number][]byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			t.Fatalf("bad tag at %d: %v %v", n, num, typ)
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.Fatalf("bad bytes field %d", num)
		}
		got[num] = v
		b = b[n:]
	}
	if !bytes.Equal(got[1], key) || !bytes.Equal(got[2], value) || len(got) != 2 {
		t.Fatalf("decoded %d fields: key %q, value of %d bytes", len(got), got[1], len(got[2]))
	}
}

func TestBenchObjectsHaveTheRequestedSize(t *testing.T) {
	for _, size := range []int{256, 1024, 4096} {
		n := fillerFor(size)
		for _, name := range []string{"b-0", "b-9999"} {
			got := proto.Size(benchCluster(name, fill(n, 255, 123456)))
			if got < size-8 || got > size+8 {
				t.Errorf("size %d, name %s: object encodes to %d bytes", size, name, got)
			}
		}
	}
}

// countingPutter fails every failEvery-th write.
type countingPutter struct {
	n         atomic.Int64
	failEvery int64
}

func (p *countingPutter) Put(ctx context.Context, worker, seq int) error {
	n := p.n.Add(1)
	if p.failEvery > 0 && n%p.failEvery == 0 {
		return errors.New("injected")
	}
	time.Sleep(100 * time.Microsecond) // stands in for a round trip
	return nil
}

func TestLoadCountsOpsAndErrors(t *testing.T) {
	p := &countingPutter{failEvery: 10}
	r := Load(context.Background(), "fake", p, 4, 0, 200*time.Millisecond, nil)
	total := p.n.Load()
	if int64(r.Ops+r.Errors) != total || r.Ops == 0 || r.Errors == 0 {
		t.Fatalf("ops %d + errors %d, want %d writes with some of each", r.Ops, r.Errors, total)
	}
	if r.FirstErr == nil || r.P50 <= 0 || r.P99 < r.P50 || r.Throughput() <= 0 {
		t.Fatalf("result %+v", r)
	}
}

func TestMergeSumsRoundsAndTakesMedians(t *testing.T) {
	ms := time.Millisecond
	got := Merge([]Result{
		{System: "meshfed", Concurrency: 1, Ops: 100, Elapsed: time.Second, P50: 1 * ms, P99: 9 * ms, ServerCPU: 100 * ms},
		{System: "etcd", Concurrency: 1, Ops: 50, Elapsed: time.Second, P50: 2 * ms, P99: 4 * ms},
		{System: "meshfed", Concurrency: 1, Ops: 300, Elapsed: time.Second, P50: 3 * ms, P99: 5 * ms, ServerCPU: 300 * ms},
		{System: "meshfed", Concurrency: 1, Ops: 200, Elapsed: time.Second, P50: 2 * ms, P99: 7 * ms, ServerCPU: 200 * ms},
	})
	if len(got) != 2 || got[0].System != "meshfed" || got[1].System != "etcd" {
		t.Fatalf("merged %+v", got)
	}
	m := got[0]
	if m.Ops != 600 || m.Throughput() != 200 || m.P50 != 2*ms || m.P99 != 7*ms || m.CPUPerOp() != ms {
		t.Fatalf("merged meshfed: %d ops, %.0f ops/s, p50 %s, p99 %s, cpu/op %s", m.Ops, m.Throughput(), m.P50, m.P99, m.CPUPerOp())
	}
}

func TestWriteTableShowsRatios(t *testing.T) {
	var buf bytes.Buffer
	err := WriteTable(&buf, []Result{
		{System: "meshfed", Concurrency: 16, Ops: 2000, Elapsed: time.Second, P50: 2 * time.Millisecond, P99: 8 * time.Millisecond},
		{System: "etcd", Concurrency: 16, Ops: 1000, Elapsed: time.Second, P50: 4 * time.Millisecond, P99: 4 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"| meshfed | 16", "| 2000 ", "| 2.00 ms", "| 16      | 2.00               | 0.50             | 2.00             |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestInProcessLoadAndWatch runs the whole path briefly on an in-process
// cluster: writes succeed and a write reaches every watch stream.
func TestInProcessLoadAndWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster with production Raft timeouts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := StartInProcess(ctx, t.TempDir(), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := NewMeshfedPutter(cl.Addrs(), 4, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := Load(ctx, "meshfed", p, 8, 0, 300*time.Millisecond, nil)
	if r.Ops == 0 || r.Errors != 0 {
		t.Fatalf("%d writes, %d errors (first: %v)", r.Ops, r.Errors, r.FirstErr)
	}
	w, err := WatchFanout(ctx, cl.Addrs(), 30, 3, 3, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if w.Writes != 3 || w.P50 <= 0 || w.P99 < w.P50 {
		t.Fatalf("watch result %+v", w)
	}
}

// BenchmarkApply writes 1 KiB objects to an in-process 3-node cluster,
// servers and clients in one process, so -cpuprofile covers both:
//
//	go test ./bench -run '^$' -bench Apply/c=256 -benchtime 20000x -cpuprofile cpu.out
func BenchmarkApply(b *testing.B) {
	cl, err := StartInProcess(context.Background(), b.TempDir(), 3, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for _, c := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			p, err := NewMeshfedPutter(cl.Addrs(), min(c, 32), 1024)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			benchPuts(b, p, c)
		})
	}
}

// BenchmarkEtcdApply runs the same load against etcd when MESHFED_BENCH_ETCD
// names its binary.
func BenchmarkEtcdApply(b *testing.B) {
	bin := os.Getenv("MESHFED_BENCH_ETCD")
	if bin == "" {
		b.Skip("set MESHFED_BENCH_ETCD to an etcd binary")
	}
	e, err := StartEtcd(context.Background(), bin, b.TempDir(), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	for _, c := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			p, err := NewEtcdPutter(e.Addrs(), min(c, 32), 1024)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			benchPuts(b, p, c)
		})
	}
}

// benchPuts makes b.N writes with c workers and reports latency quantiles.
func benchPuts(b *testing.B, p Putter, c int) {
	var next atomic.Int64
	lat := make([][]time.Duration, c)
	errs := make(chan error, c)
	b.ResetTimer()
	done := make(chan struct{})
	for w := range c {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				seq := int(next.Add(1))
				if seq > b.N {
					return
				}
				t0 := time.Now()
				if err := p.Put(context.Background(), w, seq); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	for range c {
		<-done
	}
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(Percentile(all, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(Percentile(all, 0.99).Microseconds())/1000, "p99-ms")
}
