package agent

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	// The exec connector type, served by python3 processes.
	_ "github.com/meshfed/meshfed/connector/execconn"
	"github.com/meshfed/meshfed/controlplane"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/types/known/structpb"
)

// An exec source and an exec sink written in Python (the examples in
// examples/connectors) run as instances: the counter reaches the file
// through a topic, and an agent restart loses no value.
func TestExecConnectorsRunAsInstances(t *testing.T) {
	if _, err := osexec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	sdk, examples := abs("../sdk/python"), abs("../examples/connectors")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	cfg := func(script string, processConfig map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(map[string]any{
			"command": []any{"python3", filepath.Join(examples, script)},
			"env":     map[string]any{"PYTHONPATH": sdk},
			"config":  processConfig,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := newFederation(t, "a")
	stop := f.startAgent(t, "agent-a", "a", t.TempDir())
	const topic = "persistent://public/default/counts"
	f.apply(t, objects.Wrap(&meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: "counting", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{
			Sources: []*meshfedv1.ConnectorSpec{{Name: "counter", Type: "exec",
				Config: cfg("counter_source.py", map[string]any{"every": 0.002, "batch": 20.0, "state_file": filepath.Join(dir, "counter.state")}),
				Output: &meshfedv1.FunctionOutput{Cluster: "a", Topic: topic}}},
			Sinks: []*meshfedv1.ConnectorSpec{{Name: "lines", Type: "exec", ProcessingGuarantee: "effectively_once",
				Config: cfg("file_sink.py", map[string]any{"path": out}),
				Input:  &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{topic}, SubscriptionPosition: "earliest"}}},
		}}))
	// values returns the counter values in the file, in file order.
	values := func() []int {
		b, err := os.ReadFile(out)
		if err != nil {
			return nil
		}
		var vs []int
		for _, l := range strings.Fields(string(b)) {
			v, err := strconv.Atoi(l)
			if err != nil {
				t.Fatalf("line %q in the sink's file", l)
			}
			vs = append(vs, v)
		}
		return vs
	}
	atLeast := func(n int) func() error {
		return func() error {
			if got := len(values()); got < n {
				return fmt.Errorf("%d lines in the sink's file", got)
			}
			return nil
		}
	}
	controlplane.WaitFor(t, 60*time.Second, atLeast(200))
	controlplane.WaitFor(t, 10*time.Second, func() error {
		st, sk := instanceStatus(f, "counting", "counter"), instanceStatus(f, "counting", "lines")
		if st.GetWritten() == 0 || sk.GetWritten() == 0 {
			return fmt.Errorf("source %v, sink %v", st, sk)
		}
		return nil
	})
	stop()
	before := len(values())
	f.startAgent(t, "agent-a", "a", t.TempDir())
	controlplane.WaitFor(t, 60*time.Second, atLeast(before+200))

	// Every value from 1 to the highest is in the file. The source is
	// at-least-once: a value written to the topic but not committed when
	// the agent stopped is emitted again, so repeats are allowed, and only
	// across the restart.
	seen := map[int]int{}
	top := 0
	for _, v := range values() {
		seen[v]++
		top = max(top, v)
	}
	for v := 1; v <= top; v++ {
		if seen[v] == 0 {
			t.Fatalf("value %d of 1..%d missing from the sink's file", v, top)
		}
	}
	t.Logf("%d lines, values 1..%d, %d repeated across the restart", len(values()), top, len(values())-top)
}
