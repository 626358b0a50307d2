package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/meshfed/meshfed/agent/runtime"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func TestRestartBackoff(t *testing.T) {
	const ms = time.Millisecond
	b := newRestartBackoff(200*ms, 2*time.Second, 30*time.Second)
	for _, step := range []struct {
		ranFor time.Duration
		want   time.Duration
	}{
		{0, 200 * ms},                       // first failure
		{50 * ms, 400 * ms},                 // doubling
		{time.Second, 800 * ms},             //
		{0, 1600 * ms},                      //
		{0, 2 * time.Second},                // capped
		{0, 2 * time.Second},                // stays capped
		{29 * time.Second, 2 * time.Second}, // not healthy long enough
		{30 * time.Second, 200 * ms},        // healthy: first failure again
		{0, 400 * ms},
	} {
		if got := b.failed(step.ranFor); got != step.want {
			t.Fatalf("failure %d after %v: wait %v, want %v", b.failures, step.ranFor, got, step.want)
		}
	}
}

// TestNoteOutcomeReportsOOMKilled: a kill for exceeding the memory limit
// makes the instance OOMKilled and counts it as an OOM kill and a restart;
// a plain crash counts a restart only; the first success after an OOM kill
// makes it Running again.
func TestNoteOutcomeReportsOOMKilled(t *testing.T) {
	a := &Agent{cfg: Config{Name: "a1", Cluster: "a", Now: time.Now}}
	a.refusals = newRefusals(slog.New(slog.DiscardHandler), time.Now)
	i := &instance{a: a, asg: &meshfedv1.Assignment{Spec: &meshfedv1.AssignmentSpec{FunctionSpec: &meshfedv1.FunctionSpec{}}},
		logger: slog.New(slog.DiscardHandler)}
	mech := "cgroup1"
	i.limits.Store(&mech)
	i.setState(federation.StateRunning, "")

	i.noteOutcome(fmt.Errorf("exec: killed: %w: %w", runtime.ErrOutOfMemory, runtime.ErrFunctionCrashed))
	st := i.status()
	if st.GetState() != federation.StateOOMKilled || st.GetOomKills() != 1 || st.GetRestarts() != 1 || st.GetLimits() != "cgroup1" {
		t.Fatalf("after an OOM kill: %v", st)
	}
	i.noteOutcome(fmt.Errorf("exec: exited with status 3: %w", runtime.ErrFunctionCrashed))
	if st := i.status(); st.GetState() != federation.StateOOMKilled || st.GetOomKills() != 1 || st.GetRestarts() != 2 {
		t.Fatalf("after a crash: %v", st)
	}
	i.noteOutcome(errors.New("the function refused the message"))
	if st := i.status(); st.GetState() != federation.StateOOMKilled || st.GetRestarts() != 2 {
		t.Fatalf("after a refused message: %v", st)
	}
	i.noteOutcome(nil)
	if st := i.status(); st.GetState() != federation.StateRunning || st.GetOomKills() != 1 || st.GetRestarts() != 2 {
		t.Fatalf("after a success: %v", st)
	}
}
