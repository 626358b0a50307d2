package execconn

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
)

// BenchmarkPythonSource reads batches from a Python source that returns
// max_records 100-byte records at once and commits after each batch, as
// the agent drives it: the cost of the protocol and the SDK per record.
func BenchmarkPythonSource(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			values := pythonEnv(b, writeScript(b, `import meshfed_connector as mc
n = [0]
def read(ctx, max_records):
    out = []
    for _ in range(max_records):
        n[0] += 1
        out.append(mc.Record(value=b"x" * 100, key="k", position=str(n[0])))
    return out
mc.run_source(read, lambda ctx, p: None)
`), nil)
			values["maxBatch"] = float64(batch)
			ctx := context.Background()
			src, err := connector.LookupSource("exec")
			if err != nil {
				b.Fatal(err)
			}
			s, err := src.Open(ctx, cfgOf("bench", values, false))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			records := 0
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				recs, err := s.Read(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Commit(ctx, recs[len(recs)-1].Position); err != nil {
					b.Fatal(err)
				}
				records += len(recs)
			}
			b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkPythonSink writes batches of 100-byte records to a Python sink
// that only counts them.
func BenchmarkPythonSink(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			values := pythonEnv(b, writeScript(b, `import meshfed_connector as mc
n = [0]
def write(ctx, records):
    n[0] += len(records)
mc.run_sink(write)
`), nil)
			ctx := context.Background()
			f, err := connector.LookupSink("exec")
			if err != nil {
				b.Fatal(err)
			}
			s, err := f.Open(ctx, cfgOf("bench", values, true))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([]connector.SinkRecord, size)
			for i := range batch {
				batch[i] = connector.SinkRecord{Record: connector.Record{Key: "k", Value: make([]byte, 100)},
					Topic: "persistent://public/default/in", Stream: "s", Sequence: uint64(i)}
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "records/s")
		})
	}
}
