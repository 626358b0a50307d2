package main

import (
	"encoding/json"
	"fmt"

	"github.com/meshfed/meshfed/bench"
	"github.com/spf13/cobra"
)

func init() { registerBench(newBenchSchedulerCmd) }

func newBenchSchedulerCmd() *cobra.Command {
	c := bench.DefaultSchedulerConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Measure placement at federation scale: place everything, a steady pass, a cluster failover",
		Long: `Build a federation in memory (--agents agents in --clusters clusters, --big-cluster
of them in cluster c00; --meshes meshes of --functions functions) and run the
scheduler's placement (federation.PlanAssignments: capabilities, resources,
node selectors, failover) on it, in this process, without Raft or a store:

  - place every instance from nothing (passes until one plans nothing),
  - one steady pass over the placed federation (best of 10),
  - Go heap per mesh (the mesh and its assignments),
  - fail c00 (its agents stop, it turns Down) and move all its instances to
    their failover clusters.

Wall and CPU times are printed, with assignments/s. Figures are of this
process on this machine: run it on a quiet one (docs/benchmarks/scheduler.md).`,
		Example: `  meshfed bench scheduler
  meshfed bench scheduler --meshes 1000 --agents 100 --big-cluster 50`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case c.Agents <= 0 || c.Clusters <= 0 || c.Meshes <= 0 || c.Functions <= 0 || c.AgentSlots <= 0:
				return usageError{fmt.Errorf("--agents, --clusters, --meshes, --functions and --slots must be positive")}
			case c.BigCluster <= 0 || c.BigCluster > c.Agents:
				return usageError{fmt.Errorf("--big-cluster must be between 1 and --agents (%d)", c.Agents)}
			case c.Clusters > 1 && c.Agents-c.BigCluster < c.Clusters-1:
				return usageError{fmt.Errorf("--agents minus --big-cluster must leave one agent for each of the other %d clusters", c.Clusters-1)}
			}
			r := bench.RunScheduler(c)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return bench.WriteSchedulerTable(cmd.OutOrStdout(), r)
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Agents, "agents", c.Agents, "agents in the federation")
	f.IntVar(&c.Clusters, "clusters", c.Clusters, "clusters the agents are in")
	f.IntVar(&c.BigCluster, "big-cluster", c.BigCluster, "agents of cluster c00, the one failed (the others share the rest)")
	f.IntVar(&c.Meshes, "meshes", c.Meshes, "meshes (half in c00, the rest round-robin over the other clusters)")
	f.IntVar(&c.Functions, "functions", c.Functions, "functions per mesh, one instance each: builtin, python3 exec requesting 250m/256Mi, builtin with a nodeSelector, in turn")
	f.IntVar(&c.AgentSlots, "slots", c.AgentSlots, "instance slots per agent")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
