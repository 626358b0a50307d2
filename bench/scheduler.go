package bench

import (
	"fmt"
	"io"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// SchedulerConfig shapes a federation for the scheduler benchmark.
type SchedulerConfig struct {
	// Agents across Clusters; the first cluster holds BigCluster of them
	// (the one the benchmark fails), the rest share the remainder.
	Agents, Clusters, BigCluster int
	// Meshes of Functions functions each (one replica per function).
	Meshes, Functions int
	// AgentSlots is each agent's instance capacity.
	AgentSlots int
}

// DefaultSchedulerConfig is the size issue 13 asks for: 1,000 agents in 20
// clusters (500 in the one that fails), 10,000 meshes of 3 functions.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{Agents: 1000, Clusters: 20, BigCluster: 500, Meshes: 10000, Functions: 3, AgentSlots: 100}
}

// SchedulerFederation builds the benchmark's agents, clusters and meshes.
// Every agent runs builtin and exec; three in four have python3; agents
// carry a "zone" label of two values; each offers 16 CPUs and 32Gi.
// Functions mix the cases placement decides on: builtin functions without
// requests, python3 exec functions requesting 250m and 256Mi, and builtin
// functions selecting zone=z0. Half of the meshes live in the big cluster,
// the others round-robin over the rest; every function fails over to
// another cluster than the big one (those of the big cluster's meshes
// round-robin over the others).
func SchedulerFederation(c SchedulerConfig) ([]federation.Agent, map[string]federation.ClusterView, []*meshfedv1.FunctionMesh) {
	clusterName := func(i int) string { return fmt.Sprintf("c%02d", i) }
	views := map[string]federation.ClusterView{}
	for i := range c.Clusters {
		views[clusterName(i)] = federation.ClusterView{Health: federation.Healthy}
	}
	agents := make([]federation.Agent, 0, c.Agents)
	for i := range c.Agents {
		cl := 0
		if i >= c.BigCluster && c.Clusters > 1 {
			cl = 1 + (i-c.BigCluster)%(c.Clusters-1)
		}
		a := federation.Agent{Name: fmt.Sprintf("agent-%04d", i), Cluster: clusterName(cl), Capacity: c.AgentSlots, Ready: true,
			Runtimes: []string{"builtin", "exec"}, CPUMillis: 16000, MemoryBytes: 32 << 30,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%2)}}
		if i%4 != 3 {
			a.Interpreters = []string{"python3"}
		}
		agents = append(agents, a)
	}
	meshes := make([]*meshfedv1.FunctionMesh, 0, c.Meshes)
	for m := range c.Meshes {
		home := 0
		if m%2 == 1 && c.Clusters > 1 {
			home = 1 + (m/2)%(c.Clusters-1)
		}
		fallback := clusterName(1 + (m/2)%max(c.Clusters-1, 1))
		if home != 0 {
			fallback = clusterName(1 + home%max(c.Clusters-1, 1))
		}
		var fns []*meshfedv1.FunctionSpec
		for f := range c.Functions {
			fn := &meshfedv1.FunctionSpec{
				Name:     fmt.Sprintf("f%d", f),
				Runtime:  &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "identity"}},
				Input:    &meshfedv1.FunctionInput{Cluster: clusterName(home), Topics: []string{fmt.Sprintf("persistent://t/ns/m%05d-in%d", m, f)}},
				Output:   &meshfedv1.FunctionOutput{Cluster: clusterName(home), Topic: fmt.Sprintf("persistent://t/ns/m%05d-out%d", m, f)},
				Failover: &meshfedv1.Failover{Clusters: []string{fallback}},
			}
			switch f % 3 {
			case 1:
				fn.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"python3", "f.py"}}}}
				fn.Resources = &meshfedv1.Resources{Cpu: "250m", Memory: "256Mi"}
			case 2:
				fn.Placement = &meshfedv1.Placement{NodeSelector: map[string]string{"zone": "z0"}}
			}
			fns = append(fns, fn)
		}
		meshes = append(meshes, &meshfedv1.FunctionMesh{
			ApiVersion: objects.APIVersion, Kind: objects.KindFunctionMesh,
			Metadata: &meshfedv1.ObjectMeta{Tenant: "t", Namespace: "ns", Name: fmt.Sprintf("m%05d", m), Generation: 1},
			Spec:     &meshfedv1.FunctionMeshSpec{Functions: fns},
		})
	}
	return agents, views, meshes
}

// SchedulerResult holds the figures of one run.
type SchedulerResult struct {
	Config SchedulerConfig
	// PlaceAll is the time of the passes that placed every instance from
	// nothing; Passes counts them and Assignments the instances placed.
	PlaceAll    time.Duration
	Passes      int
	Assignments int
	// Pending counts instances left unplaced.
	Pending int
	// SteadyPass is one pass over the placed federation (no change), with
	// the memo of the passes before as the scheduler carries it, the
	// fastest of SteadyRuns; SteadyCPU is the CPU time (all threads,
	// garbage collection included) per pass, averaged over them.
	SteadyPass, SteadyCPU time.Duration
	SteadyRuns            int
	// ReplanPass is one pass over the same federation after a change
	// every mesh depends on (every cluster's view: here the time its
	// health last changed, which decides nothing here), so that no
	// settled mesh is skipped, the fastest of SteadyRuns.
	ReplanPass time.Duration
	// PlaceAllCPU and FailoverCPU are the CPU times of those phases.
	PlaceAllCPU, FailoverCPU time.Duration
	// BytesPerMesh is the Go heap the meshes and their assignments take,
	// divided by the meshes (objects only, as placement holds them).
	BytesPerMesh float64
	// Failover is the time of the passes that moved every instance of
	// the big cluster once it went Down; Moved counts them.
	Failover       time.Duration
	FailoverPasses int
	Moved          int
}

// AssignmentsPerSecond is the placement rate of PlaceAll.
func (r SchedulerResult) AssignmentsPerSecond() float64 {
	return float64(r.Assignments) / r.PlaceAll.Seconds()
}

// MovesPerSecond is the rate of Failover.
func (r SchedulerResult) MovesPerSecond() float64 {
	return float64(r.Moved) / r.Failover.Seconds()
}

// RunScheduler measures pure placement (federation.PlanAssignments, no
// Raft, no store) at the configured size: placing everything, one steady
// pass, memory, and failing over the big cluster. Each pass's plan is
// applied to the input as the scheduler's write would, with placed
// instances then reported Running.
func RunScheduler(c SchedulerConfig) SchedulerResult {
	r := SchedulerResult{Config: c}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	agents, views, meshes := SchedulerFederation(c)
	in := federation.Input{Meshes: meshes, Agents: agents, Clusters: views, Now: time.Unix(1_800_000_000, 0), HoldDown: time.Minute,
		Memo: federation.NewMemo()}

	start, cpu := time.Now(), cpuTime()
	var placed int
	in.Assignments, r.Passes, placed = settlePlans(in)
	r.PlaceAll, r.PlaceAllCPU = time.Since(start), cpuTime()-cpu
	r.Assignments = placed
	for _, a := range in.Assignments {
		if a.GetSpec().GetAgent() == "" {
			r.Pending++
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	r.BytesPerMesh = float64(after.HeapAlloc-before.HeapAlloc) / float64(c.Meshes)

	r.SteadyRuns = 10
	cpu = cpuTime()
	for range r.SteadyRuns {
		start = time.Now()
		if p := federation.PlanAssignments(in); !p.Empty() {
			panic(fmt.Sprintf("steady pass planned %d puts and %d deletes", len(p.Puts), len(p.Deletes)))
		}
		if d := time.Since(start); r.SteadyPass == 0 || d < r.SteadyPass {
			r.SteadyPass = d
		}
	}
	r.SteadyCPU = (cpuTime() - cpu) / time.Duration(r.SteadyRuns)
	for range r.SteadyRuns {
		for name, v := range in.Clusters {
			v.Since = v.Since.Add(-time.Second)
			in.Clusters[name] = v
		}
		start = time.Now()
		if p := federation.PlanAssignments(in); !p.Empty() {
			panic(fmt.Sprintf("replanning pass planned %d puts and %d deletes", len(p.Puts), len(p.Deletes)))
		}
		if d := time.Since(start); r.ReplanPass == 0 || d < r.ReplanPass {
			r.ReplanPass = d
		}
	}

	big := agents[0].Cluster
	in.Clusters[big] = federation.ClusterView{Health: federation.Down, Since: in.Now, LastDown: in.Now}
	for i := range in.Agents {
		if in.Agents[i].Cluster == big {
			in.Agents[i].Ready = false
		}
	}
	start, cpu = time.Now(), cpuTime()
	in.Assignments, r.FailoverPasses, r.Moved = settlePlans(in)
	r.Failover, r.FailoverCPU = time.Since(start), cpuTime()-cpu
	for _, a := range in.Assignments {
		if a.GetSpec().GetCluster() == big && a.GetSpec().GetAgent() != "" {
			panic("an instance stayed in the failed cluster")
		}
	}
	runtime.KeepAlive(meshes)
	return r
}

// PlacedScheduler returns the benchmark's federation with every instance
// placed, as the input of a steady pass.
func PlacedScheduler(c SchedulerConfig) federation.Input {
	agents, views, meshes := SchedulerFederation(c)
	in := federation.Input{Meshes: meshes, Agents: agents, Clusters: views, Now: time.Unix(1_800_000_000, 0), HoldDown: time.Minute,
		Memo: federation.NewMemo()}
	in.Assignments, _, _ = settlePlans(in)
	return in
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settlePlans runs passes until one plans nothing, applying each plan (and
// marking placed instances Running) in between; it returns the
// assignments, the passes and the instances placed on an agent.
func settlePlans(in federation.Input) ([]*meshfedv1.Assignment, int, int) {
	idx := make(map[string]int, len(in.Assignments))
	as := append([]*meshfedv1.Assignment(nil), in.Assignments...)
	for i, a := range as {
		idx[objects.KeyOf(objects.Wrap(a))] = i
	}
	placed := 0
	for passes := 1; ; passes++ {
		in.Assignments = as
		p := federation.PlanAssignments(in)
		if p.Empty() {
			return as, passes, placed
		}
		for _, a := range p.Puts {
			if a.GetSpec().GetAgent() != "" {
				a.Status.State = federation.StateRunning
				placed++
			}
			k := objects.KeyOf(objects.Wrap(a))
			if i, ok := idx[k]; ok {
				as[i] = a
			} else {
				idx[k] = len(as)
				as = append(as, a)
			}
		}
		if len(p.Deletes) > 0 {
			panic("the benchmark deletes nothing")
		}
	}
}

// WriteSchedulerTable prints a result as a Markdown table.
func WriteSchedulerTable(w io.Writer, r SchedulerResult) error {
	c := r.Config
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "Pure placement (federation.PlanAssignments, in-process, no Raft): %d agents in %d clusters (%d in c00), %d meshes x %d functions, %d slots per agent\n\n",
		c.Agents, c.Clusters, c.BigCluster, c.Meshes, c.Functions, c.AgentSlots)
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	fmt.Fprintln(tw, "| measure\t| wall\t| CPU\t| goal\t|")
	fmt.Fprintln(tw, "|---\t|---:\t|---:\t|---:\t|")
	fmt.Fprintf(tw, "| place everything (%d instances, %d passes, %d pending)\t| %s\t| %s\t| \t|\n", r.Assignments, r.Passes, r.Pending, ms(r.PlaceAll), ms(r.PlaceAllCPU))
	fmt.Fprintf(tw, "| assignments/s\t| %.0f\t| %.0f per CPU-s\t| ≥ 10,000\t|\n", r.AssignmentsPerSecond(), float64(r.Assignments)/r.PlaceAllCPU.Seconds())
	fmt.Fprintf(tw, "| one steady pass (best of %d; CPU averaged)\t| %s\t| %s\t| < 100 ms\t|\n", r.SteadyRuns, ms(r.SteadyPass), ms(r.SteadyCPU))
	fmt.Fprintf(tw, "| one pass planning every mesh again (best of %d)\t| %s\t| \t| < 100 ms\t|\n", r.SteadyRuns, ms(r.ReplanPass))
	fmt.Fprintf(tw, "| heap per mesh (mesh + %d assignments)\t| %.1f KiB\t| \t| \t|\n", c.Functions, r.BytesPerMesh/1024)
	fmt.Fprintf(tw, "| fail c00 (%d agents): move %d instances (%d passes)\t| %s\t| %s\t| \t|\n", c.BigCluster, r.Moved, r.FailoverPasses, ms(r.Failover), ms(r.FailoverCPU))
	fmt.Fprintf(tw, "| moves/s\t| %.0f\t| \t| \t|\n", r.MovesPerSecond())
	return tw.Flush()
}
