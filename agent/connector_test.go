package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/types/known/structpb"
)

// memSource serves a fixed list of records and remembers what was
// committed; memSink keeps what it was given, skipping records at or below
// the last Sequence of their Stream as an effectively-once sink does. Both
// stand in for outside systems to test the agent's loops; the real
// connectors are tested against real servers in their packages.
type memSource struct {
	mu        sync.Mutex
	records   []string
	committed int // records committed so far
	next      int // next record to read in the current session
}

func (s *memSource) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	s.mu.Lock()
	n := min(len(s.records)-s.next, 37)
	out := make([]connector.SourceRecord, n)
	for k := range out {
		out[k] = connector.SourceRecord{Record: connector.Record{Key: "k", Value: []byte(s.records[s.next+k])}, Position: strconv.Itoa(s.next + k + 1)}
	}
	s.next += n
	s.mu.Unlock()
	if n == 0 {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return out, nil
}

func (s *memSource) Commit(_ context.Context, pos string) error {
	n, err := strconv.Atoi(pos)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.committed = n
	s.mu.Unlock()
	return nil
}

func (s *memSource) Close() error {
	s.mu.Lock()
	s.next = s.committed // uncommitted records are read again
	s.mu.Unlock()
	return nil
}

type memSink struct {
	mu      sync.Mutex
	rows    []string
	last    map[string]uint64
	skipped int
	streams map[string]bool
}

func (s *memSink) Write(_ context.Context, batch []connector.SinkRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		if r.Stream != "" {
			if seq, ok := s.last[r.Stream]; ok && r.Sequence <= seq {
				s.skipped++
				continue
			}
			s.last[r.Stream] = r.Sequence
			s.streams[r.Stream] = true
		}
		s.rows = append(s.rows, string(r.Value))
	}
	return nil
}

func (s *memSink) Close() error { return nil }

var (
	memSources = map[string]*memSource{}
	memSinks   = map[string]*memSink{}
	memMu      sync.Mutex
)

// pipelinedSource is a memSource that lets the agent commit while it reads
// (its methods share only what mu guards).
type pipelinedSource struct{ *memSource }

func (pipelinedSource) CommitsConcurrently() bool { return true }

func init() {
	connector.RegisterSource("agent-test-mem", connector.SourceFactory{Open: func(_ context.Context, cfg connector.Config) (connector.Source, error) {
		memMu.Lock()
		defer memMu.Unlock()
		return memSources[cfg.Values["name"].(string)], nil
	}})
	connector.RegisterSource("agent-test-mem-pipelined", connector.SourceFactory{Open: func(_ context.Context, cfg connector.Config) (connector.Source, error) {
		memMu.Lock()
		defer memMu.Unlock()
		return pipelinedSource{memSources[cfg.Values["name"].(string)]}, nil
	}})
	connector.RegisterSink("agent-test-mem", connector.SinkFactory{Open: func(_ context.Context, cfg connector.Config) (connector.Sink, error) {
		memMu.Lock()
		defer memMu.Unlock()
		return memSinks[cfg.Values["name"].(string)], nil
	}})
}

func TestSourceAndSinkRunAsInstances(t *testing.T) {
	for _, typ := range []string{"agent-test-mem", "agent-test-mem-pipelined"} {
		t.Run(typ, func(t *testing.T) { testSourceAndSink(t, typ) })
	}
}

func testSourceAndSink(t *testing.T, sourceType string) {
	const n = 500
	src := &memSource{}
	for k := range n {
		src.records = append(src.records, fmt.Sprintf("r-%d", k))
	}
	sink := &memSink{last: map[string]uint64{}, streams: map[string]bool{}}
	memMu.Lock()
	memSources[t.Name()], memSinks[t.Name()] = src, sink
	memMu.Unlock()
	t.Setenv("MESHFED_TEST_SINK_NAME", t.Name())
	cfgSrc, _ := structpb.NewStruct(map[string]any{"name": t.Name()})
	cfgSink, _ := structpb.NewStruct(map[string]any{"name": map[string]any{"secret": map[string]any{"env": "MESHFED_TEST_SINK_NAME"}}})

	f := newFederation(t, "a")
	stop := f.startAgent(t, "agent-a", "a", t.TempDir())
	const topic = "persistent://public/default/readings"
	f.apply(t, objects.Wrap(&meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: "iot", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{
			Sources: []*meshfedv1.ConnectorSpec{{Name: "devices", Type: sourceType, Config: cfgSrc,
				Output: &meshfedv1.FunctionOutput{Cluster: "a", Topic: topic}}},
			Sinks: []*meshfedv1.ConnectorSpec{{Name: "rows", Type: "agent-test-mem", Config: cfgSink, ProcessingGuarantee: "effectively_once",
				Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{topic}, SubscriptionPosition: "earliest"}}},
		}}))
	rows := func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.rows)
	}
	controlplane.WaitFor(t, 30*time.Second, func() error {
		if got := rows(); got < n/2 {
			return fmt.Errorf("%d rows written", got)
		}
		return nil
	})
	// Both report their counters.
	controlplane.WaitFor(t, 10*time.Second, func() error {
		st := instanceStatus(f, "iot", "devices")
		sk := instanceStatus(f, "iot", "rows")
		if st.GetWritten() == 0 || st.GetBatches() == 0 || sk.GetWritten() == 0 || sk.GetReceived() == 0 {
			return fmt.Errorf("source %v, sink %v", st, sk)
		}
		return nil
	})
	// A restart mid-stream delivers inputs again; the sink's identities
	// let it skip every one it already wrote.
	stop()
	f.startAgent(t, "agent-a", "a", t.TempDir())
	controlplane.WaitFor(t, 30*time.Second, func() error {
		if got := rows(); got < n {
			return fmt.Errorf("%d rows written", got)
		}
		return nil
	})
	sink.mu.Lock()
	seen := map[string]int{}
	for _, r := range sink.rows {
		seen[r]++
	}
	// One stream per producer of the source: one, or two when the
	// restart caught the source still writing (its new producer has a
	// new name).
	if n := len(sink.streams); n < 1 || n > 2 {
		t.Errorf("streams %v: want one per run of the source's producer", sink.streams)
	}
	sink.mu.Unlock()
	for k := range n {
		if c := seen[fmt.Sprintf("r-%d", k)]; c != 1 {
			t.Fatalf("r-%d written %d times", k, c)
		}
	}
}

// flakySink fails its first writes, as an outside system that is down for
// a while.
type flakySink struct {
	memSink
	failures int
}

func (s *flakySink) Write(ctx context.Context, batch []connector.SinkRecord) error {
	s.mu.Lock()
	if s.failures > 0 {
		s.failures--
		s.mu.Unlock()
		return fmt.Errorf("target unavailable")
	}
	s.mu.Unlock()
	return s.memSink.Write(ctx, batch)
}

func init() {
	connector.RegisterSink("agent-test-flaky", connector.SinkFactory{Open: func(_ context.Context, cfg connector.Config) (connector.Sink, error) {
		memMu.Lock()
		defer memMu.Unlock()
		return flakySinks[cfg.Values["name"].(string)], nil
	}})
}

var flakySinks = map[string]*flakySink{}

// A failing write is retried until the target takes it: nothing is
// skipped, and the failures and the last error show in the status.
func TestSinkRetriesFailedWrites(t *testing.T) {
	sink := &flakySink{memSink: memSink{last: map[string]uint64{}, streams: map[string]bool{}}, failures: 3}
	memMu.Lock()
	flakySinks[t.Name()] = sink
	memMu.Unlock()
	cfg, _ := structpb.NewStruct(map[string]any{"name": t.Name()})
	f := newFederation(t, "a")
	f.startAgent(t, "agent-a", "a", t.TempDir())
	const topic = "persistent://public/default/flaky-in"
	f.apply(t, objects.Wrap(&meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: "out", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{Sinks: []*meshfedv1.ConnectorSpec{{Name: "rows", Type: "agent-test-flaky", Config: cfg,
			Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{topic}, SubscriptionPosition: "earliest"}}}}}))
	produce(t, pulsarClient(t, f.brokers["a"]), topic, 0, 50)
	controlplane.WaitFor(t, 30*time.Second, func() error {
		sink.mu.Lock()
		n := len(sink.rows)
		sink.mu.Unlock()
		st := instanceStatus(f, "out", "rows")
		if n < 50 || st.GetFailed() == 0 || st.GetLastError() == "" || st.GetLastErrorTime() == nil || st.GetWritten() < 50 {
			return fmt.Errorf("%d rows, status %v", n, st)
		}
		if !strings.Contains(st.GetLastError(), "target unavailable") {
			return fmt.Errorf("last error %q", st.GetLastError())
		}
		return nil
	})
}
