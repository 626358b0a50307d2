package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/meshgraph"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newDescribeCmd) }

func newDescribeCmd() *cobra.Command {
	var (
		scope  scopeFlags
		output outputFlag
	)
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show one object in detail: metadata, spec and status",
		Long: `Show one object in detail: metadata, spec and status; for a mesh, its
conditions and where each instance runs. -o json and -o yaml print the
object; -o dot prints a mesh as a Graphviz graph (clusters, topics,
functions and their instances), e.g. | dot -Tsvg > mesh.svg.`,
		Example: `  meshfed describe mesh word-count
  meshfed describe cluster a
  meshfed describe mesh word-count -o dot | dot -Tsvg > word-count.svg`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeKindName(&scope, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			if err := output.check(); err != nil {
				return err
			}
			if output.format == formatDot && k.Name != objects.KindFunctionMesh {
				return usageError{fmt.Errorf("-o dot: only a mesh is drawn as a graph, not a %s", strings.ToLower(k.Name))}
			}
			t, ns, n, err := scope.objectName(k, args[1])
			if err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: k.Name, Tenant: t, Namespace: ns, Name: n})
				if err != nil {
					return rpcError("describe "+strings.ToLower(k.Name)+" "+args[1], err)
				}
				switch output.format {
				case formatJSON, formatYAML:
					return encodeObjects(cmd.OutOrStdout(), []*meshfedv1.Object{resp.GetObject()}, output.format, false)
				case formatDot:
					return writeMeshDot(cmd.OutOrStdout(), resp.GetObject())
				}
				return describe(cmd.OutOrStdout(), resp.GetObject())
			})
		},
	}
	cmd.Flags().StringVar(&scope.tenant, "tenant", "", "tenant of a namespaced object (default public)")
	cmd.Flags().StringVarP(&scope.namespace, "namespace", "n", "", "namespace of a namespaced object (default default)")
	output.register(cmd, formatText, formatJSON, formatYAML, formatDot)
	return cmd
}

func describe(w io.Writer, o *meshfedv1.Object) error {
	k, md := objects.KindOf(o), objects.Meta(o)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Kind:\t%s\n", k.Name)
	fmt.Fprintf(tw, "Name:\t%s\n", objects.DisplayName(o))
	if len(md.GetLabels()) > 0 {
		var ls []string
		for key, v := range md.GetLabels() {
			ls = append(ls, key+"="+v)
		}
		fmt.Fprintf(tw, "Labels:\t%s\n", strings.Join(ls, ","))
	}
	fmt.Fprintf(tw, "Revision:\t%d (created at %d, generation %d)\n", md.GetResourceVersion(), md.GetCreateRevision(), md.GetGeneration())
	if t := md.GetCreateTime(); t != nil {
		fmt.Fprintf(tw, "Created:\t%s\n", t.AsTime().Format("2006-01-02T15:04:05Z07:00"))
	}
	if t := md.GetUpdateTime(); t != nil {
		fmt.Fprintf(tw, "Updated:\t%s\n", t.AsTime().Format("2006-01-02T15:04:05Z07:00"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if fm := o.GetFunctionMesh(); fm != nil {
		describeMesh(w, fm)
		describeScaling(w, fm)
	}
	b, err := objects.Encode(o, "yaml")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nObject:")
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintln(w, "  "+line)
	}
	return nil
}

// describeMesh prints the mesh's conditions and each function's instances.
func describeMesh(w io.Writer, fm *meshfedv1.FunctionMesh) {
	st := fm.GetStatus()
	fmt.Fprintln(w, "\nConditions:")
	if len(st.GetConditions()) == 0 {
		fmt.Fprintln(w, "  (none reported yet)")
	}
	for _, c := range st.GetConditions() {
		fmt.Fprintf(w, "  %s=%s  %s  %s\n", c.GetType(), c.GetStatus(), c.GetReason(), c.GetMessage())
	}
	fmt.Fprintln(w, "\nFunctions:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FUNCTION\tINSTANCE\tAGENT\tCLUSTER\tSTATE\tSINCE\tRECEIVED\tPROCESSED\tFAILED\tDEDUPLICATED\tUNPROVEN\tWRITTEN\tRESTARTS\tOOMKILLS\tLIMITS\tLAST ERROR")
	statuses := map[string]*meshfedv1.FunctionStatus{}
	for _, f := range st.GetFunctions() {
		statuses[f.GetName()] = f
	}
	for _, f := range objects.MeshFunctions(fm.GetSpec()) {
		fs := statuses[f.GetName()]
		label := f.GetName()
		if c := objects.ConnectorOf(f); c != nil {
			// Sources and sinks are listed with the functions, named
			// with their kind and type: "devices (mqtt source)".
			label = fmt.Sprintf("%s (%s %s)", f.GetName(), c.GetType(), c.GetKind())
		}
		if len(fs.GetInstances()) == 0 {
			fmt.Fprintf(tw, "  %s\t-\t-\t-\tPending\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", label)
			continue
		}
		for _, in := range fs.GetInstances() {
			since := "-"
			if in.GetSince() != nil {
				since = in.GetSince().AsTime().Format("15:04:05")
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", label, in.GetIndex(), in.GetAgent(), in.GetCluster(),
				in.GetState(), since, in.GetReceived(), in.GetProcessed(), in.GetFailed(), in.GetDeduplicated(), in.GetUnproven(),
				in.GetWritten(), in.GetRestarts(), in.GetOomKills(), or(in.GetLimits(), "-"), or(in.GetLastError(), "-"))
		}
	}
	_ = tw.Flush()
	writePlacementNotes(w, fm.GetSpec().GetFunctions(), statuses)
}

// writePlacementNotes lists, under the instance table, why instances are
// Pending, how often they restarted and why they moved.
func writePlacementNotes(w io.Writer, fns []*meshfedv1.FunctionSpec, statuses map[string]*meshfedv1.FunctionStatus) {
	var notes []string
	for _, f := range fns {
		for _, in := range statuses[f.GetName()].GetInstances() {
			var parts []string
			if in.GetAgent() == "" && in.GetPendingReason() != "" {
				parts = append(parts, "pending: "+in.GetPendingReason())
			}
			if in.GetRestarts() > 0 {
				parts = append(parts, fmt.Sprintf("restarts: %d", in.GetRestarts()))
			}
			if in.GetMovedReason() != "" {
				parts = append(parts, "moved: "+in.GetMovedReason())
			}
			if len(parts) > 0 {
				notes = append(notes, fmt.Sprintf("  %s#%d  %s", f.GetName(), in.GetIndex(), strings.Join(parts, "; ")))
			}
		}
	}
	if len(notes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nPlacement:")
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

// describeScaling prints each autoscaled function's replicas, target and
// the CPU its instances report, then the scale events: when, from, to and
// why (the measured backlog and CPU).
func describeScaling(w io.Writer, fm *meshfedv1.FunctionMesh) {
	st := fm.GetStatus()
	var scaled []*meshfedv1.FunctionSpec
	for _, f := range fm.GetSpec().GetFunctions() {
		if f.GetAutoscaling() != nil {
			scaled = append(scaled, f)
		}
	}
	if len(scaled) == 0 && len(st.GetScaleEvents()) == 0 {
		return
	}
	fmt.Fprintln(w, "\nAutoscaling:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FUNCTION\tREPLICAS\tMIN\tMAX\tBACKLOG/REPLICA\tCPU TARGET\tCPU NOW")
	for _, f := range scaled {
		as := f.GetAutoscaling()
		var cpu int64
		running := 0
		for _, fs := range st.GetFunctions() {
			if fs.GetName() != f.GetName() {
				continue
			}
			for _, in := range fs.GetInstances() {
				if in.GetState() == federation.StateRunning {
					cpu += in.GetCpuMillis()
					running++
				}
			}
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%s\t%dm over %d running\n", f.GetName(), federation.DesiredReplicas(fm, f),
			f.GetMinReplicas(), f.GetMaxReplicas(), orZero(as.GetBacklogPerReplica(), "-"), orZero(int64(as.GetCpuUtilization()), "-")+pct(as.GetCpuUtilization()), cpu, running)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nScale events:")
	if len(st.GetScaleEvents()) == 0 {
		fmt.Fprintln(w, "  (none yet)")
	}
	for _, ev := range st.GetScaleEvents() {
		fmt.Fprintf(w, "  %s  %s  %d -> %d  %s\n", ev.GetTime().AsTime().Format("2006-01-02T15:04:05Z07:00"), ev.GetFunction(), ev.GetFrom(), ev.GetTo(), ev.GetReason())
	}
}

func orZero(n int64, zero string) string {
	if n == 0 {
		return zero
	}
	return strconv.FormatInt(n, 10)
}

func pct(n int32) string {
	if n == 0 {
		return ""
	}
	return "%"
}

// writeMeshDot draws a mesh as a Graphviz graph.
func writeMeshDot(w io.Writer, o *meshfedv1.Object) error {
	g, err := meshgraph.Build(o)
	if err != nil {
		return err
	}
	return meshgraph.WriteDot(w, g)
}
