package bench

import (
	"os"
	"testing"

	"github.com/meshfed/meshfed/federation"
)

// TestSchedulerSmall runs the scheduler benchmark at a small size: every
// instance placed, none left in the failed cluster.
func TestSchedulerSmall(t *testing.T) {
	c := SchedulerConfig{Agents: 40, Clusters: 4, BigCluster: 20, Meshes: 200, Functions: 3, AgentSlots: 100}
	r := RunScheduler(c)
	if r.Pending != 0 || r.Assignments != 600 || r.Moved != 300 {
		t.Fatalf("placed %d (pending %d), moved %d: want 600 placed, none pending, 300 moved", r.Assignments, r.Pending, r.Moved)
	}
	if testing.Verbose() {
		_ = WriteSchedulerTable(os.Stdout, r)
	}
}

// BenchmarkSchedulerPlaceAll places 10,000 meshes of 3 functions on 1,000
// agents in 20 clusters from nothing, then fails the 500-agent cluster.
func BenchmarkSchedulerPlaceAll(b *testing.B) {
	for range b.N {
		r := RunScheduler(DefaultSchedulerConfig())
		if r.Pending != 0 {
			b.Fatalf("%d instances pending", r.Pending)
		}
		b.ReportMetric(r.AssignmentsPerSecond(), "assignments/s")
		b.ReportMetric(float64(r.SteadyPass.Microseconds())/1000, "steady-pass-ms")
		b.ReportMetric(float64(r.ReplanPass.Microseconds())/1000, "replan-pass-ms")
		b.ReportMetric(float64(r.Failover.Milliseconds()), "failover-ms")
		b.ReportMetric(r.BytesPerMesh, "B/mesh")
	}
}

// BenchmarkSchedulerSteadyPass is one pass over the placed federation of
// BenchmarkSchedulerPlaceAll (nothing to change).
func BenchmarkSchedulerSteadyPass(b *testing.B) {
	in := PlacedScheduler(DefaultSchedulerConfig())
	b.ResetTimer()
	for b.Loop() {
		if p := federation.PlanAssignments(in); !p.Empty() {
			b.Fatalf("steady pass planned %d puts", len(p.Puts))
		}
	}
}
