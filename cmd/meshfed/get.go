package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newGetCmd) }

func newGetCmd() *cobra.Command {
	var (
		scope    scopeFlags
		output   outputFlag
		watch    bool
		selector string
		stale    bool
	)
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show one object or list the objects of a kind",
		Long: `Show one object or list the objects of a kind. KIND is a kind name, plural or
alias (clusters, tenants, namespaces, grants, meshes, agents, assignments),
or sources or sinks: the connectors of the meshes in scope with their
counters (NAME then filters by connector name).
NAME of a namespaced object is NAME (in --tenant/--namespace, default
public/default) or TENANT/NAMESPACE/NAME. With -w, keep printing changes.`,
		Example: `  meshfed get clusters
  meshfed get mesh public/default/word-count -o yaml
  meshfed get meshes -o wide
  meshfed get meshes -l team=ml -w
  meshfed get agents -o name
  meshfed get sources -n default --tenant public`,
		Args:              rangeArgs(1, 2),
		ValidArgsFunction: completeKindName(&scope, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ck := connectorKind(args[0]); ck != "" {
				return getConnectors(cmd, ck, args[1:], scope, output.format, stale)
			}
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			if err := output.check(); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			var objs []*meshfedv1.Object
			var rev uint64
			ctx, cancel := requestContext(cmd)
			defer cancel()
			if len(args) == 2 {
				t, ns, n, err := scope.objectName(k, args[1])
				if err != nil {
					return err
				}
				resp, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: k.Name, Tenant: t, Namespace: ns, Name: n, Stale: stale})
				if err != nil {
					return rpcError("get "+strings.ToLower(k.Name)+" "+args[1], err)
				}
				objs, rev = []*meshfedv1.Object{resp.GetObject()}, resp.GetRevision()
			} else {
				t, ns := scope.listScope(k)
				resp, err := c.List(ctx, &meshfedv1.ListRequest{Kind: k.Name, Tenant: t, Namespace: ns, LabelSelector: selector, Stale: stale})
				if err != nil {
					return rpcError("list "+k.Plural, err)
				}
				objs, rev = resp.GetObjects(), resp.GetRevision()
			}
			if err := printObjects(out, k, objs, output.format, "", len(args) == 1); err != nil {
				return err
			}
			if !watch {
				return nil
			}
			return watchObjects(cmd, c, k, scope, args, selector, output.format, rev)
		},
	}
	f := cmd.Flags()
	f.StringVar(&scope.tenant, "tenant", "", "tenant of namespaced objects (default public for a single object; all for a list)")
	f.StringVarP(&scope.namespace, "namespace", "n", "", "namespace of namespaced objects (default default for a single object; all for a list)")
	output.register(cmd, listingFormats...)
	f.BoolVarP(&watch, "watch", "w", false, "after printing, watch for changes and print them")
	f.StringVarP(&selector, "selector", "l", "", "label selector: key=value,key!=value,key")
	f.BoolVar(&stale, "stale", false, "allow a possibly stale read from any server (faster; no leader check)")
	return cmd
}

func watchObjects(cmd *cobra.Command, c *client.Client, k *objects.Kind, scope scopeFlags, args []string, selector, output string, rev uint64) error {
	var match func(*meshfedv1.Object) bool
	if selector != "" {
		sel, err := objects.ParseSelector(selector)
		if err != nil {
			return usageError{fmt.Errorf("-l: %w", err)}
		}
		match = func(o *meshfedv1.Object) bool { return sel.Matches(objects.Meta(o).GetLabels()) }
	}
	t, ns := scope.listScope(k)
	var name string
	if len(args) == 2 {
		var err error
		if t, ns, name, err = scope.objectName(k, args[1]); err != nil {
			return err
		}
	}
	err := c.Watch(cmd.Context(), &meshfedv1.WatchRequest{Kind: k.Name, Tenant: t, Namespace: ns, StartRevision: rev}, func(resp *meshfedv1.WatchResponse) error {
		for _, ev := range resp.GetEvents() {
			o := ev.GetObject()
			if name != "" && objects.Meta(o).GetName() != name || match != nil && !match(o) {
				continue
			}
			what := "PUT"
			if ev.GetType() == meshfedv1.EventType_EVENT_TYPE_DELETE {
				what = "DELETED"
			}
			if err := printObjects(cmd.OutOrStdout(), k, []*meshfedv1.Object{o}, output, what, false); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, client.ErrResync) {
		return fmt.Errorf("watch fell too far behind the server's history; run the command again")
	}
	if cmd.Context().Err() != nil || err == nil {
		return nil
	}
	// A revoked or expired token ends the watch with Unauthenticated.
	return rpcError("watch "+k.Plural, err)
}

// printObjects renders objects as a table (with an EVENT column when event
// is set; -o wide adds columns), as JSON or YAML, or as KIND/NAME lines. A
// list in JSON is one array; in YAML, one document per object, so the
// output can be applied again.
func printObjects(w io.Writer, k *objects.Kind, objs []*meshfedv1.Object, format, event string, list bool) error {
	sort.SliceStable(objs, func(i, j int) bool { return objects.DisplayName(objs[i]) < objects.DisplayName(objs[j]) })
	switch format {
	case formatJSON, formatYAML:
		return encodeObjects(w, objs, format, list)
	case formatName:
		names := make([]string, len(objs))
		for i, o := range objs {
			names[i] = objects.DisplayName(o)
		}
		return printNames(w, k.Name, names)
	}
	if len(objs) == 0 && event == "" {
		fmt.Fprintf(w, "No %s found.\n", k.Plural)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := tableColumns(k)
	if format == formatWide {
		cols = append(cols, wideColumns(k)...)
	}
	head := []string{}
	if event != "" {
		head = append(head, "EVENT")
	}
	head = append(head, "NAME")
	for _, c := range cols {
		head = append(head, c.name)
	}
	head = append(head, "REVISION", "AGE")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, o := range objs {
		row := []string{}
		if event != "" {
			row = append(row, event)
		}
		row = append(row, objects.DisplayName(o))
		for _, c := range cols {
			row = append(row, or(c.value(o), "-"))
		}
		md := objects.Meta(o)
		row = append(row, fmt.Sprint(md.GetResourceVersion()), age(md))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// encodeObjects prints objects as JSON (a list as one array) or YAML.
func encodeObjects(w io.Writer, objs []*meshfedv1.Object, format string, list bool) error {
	if format == formatJSON && list {
		var arr bytes.Buffer
		arr.WriteByte('[')
		for i, o := range objs {
			b, err := objects.Encode(o, formatJSON)
			if err != nil {
				return err
			}
			if i > 0 {
				arr.WriteByte(',')
			}
			if err := json.Compact(&arr, b); err != nil {
				return fmt.Errorf("encode %s: %w", objects.DisplayName(o), err)
			}
		}
		arr.WriteByte(']')
		return printEncoded(w, formatJSON, arr.Bytes())
	}
	for _, o := range objs {
		b, err := objects.Encode(o, format)
		if err != nil {
			return err
		}
		if format == formatYAML {
			fmt.Fprintln(w, "---")
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func age(md *meshfedv1.ObjectMeta) string {
	if md.GetCreateTime() == nil {
		return "-"
	}
	d := time.Since(md.GetCreateTime().AsTime()).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

type column struct {
	name  string
	value func(*meshfedv1.Object) string
}

func tableColumns(k *objects.Kind) []column {
	switch k.Name {
	case objects.KindCluster:
		return []column{
			{"REGION", func(o *meshfedv1.Object) string { return o.GetCluster().GetSpec().GetRegion() }},
			{"SERVICE-URL", func(o *meshfedv1.Object) string { return o.GetCluster().GetSpec().GetServiceUrl() }},
			{"HEALTH", func(o *meshfedv1.Object) string { return o.GetCluster().GetStatus().GetHealth() }},
		}
	case objects.KindTenant:
		return []column{
			{"ADMINS", func(o *meshfedv1.Object) string { return strings.Join(o.GetTenant().GetSpec().GetAdmins(), ",") }},
			{"ALLOWED-CLUSTERS", func(o *meshfedv1.Object) string {
				return strings.Join(o.GetTenant().GetSpec().GetAllowedClusters(), ",")
			}},
		}
	case objects.KindGrant:
		return []column{
			{"GRANTEE", func(o *meshfedv1.Object) string {
				g := o.GetGrant().GetSpec().GetGrantee()
				return objects.NamespaceRef(g.GetTenant(), g.GetNamespace()).String()
			}},
			{"ACTIONS", func(o *meshfedv1.Object) string { return strings.Join(o.GetGrant().GetSpec().GetActions(), ",") }},
		}
	case objects.KindFunctionMesh:
		return []column{
			{"FUNCTIONS", func(o *meshfedv1.Object) string { return fmt.Sprint(len(o.GetFunctionMesh().GetSpec().GetFunctions())) }},
			{"CONNECTORS", func(o *meshfedv1.Object) string {
				s := o.GetFunctionMesh().GetSpec()
				return fmt.Sprint(len(s.GetSources()) + len(s.GetSinks()))
			}},
			{"CONDITIONS", func(o *meshfedv1.Object) string { return conditions(o.GetFunctionMesh().GetStatus().GetConditions()) }},
		}
	case objects.KindAgent:
		return []column{
			{"CLUSTER", func(o *meshfedv1.Object) string { return o.GetAgent().GetSpec().GetCluster() }},
			{"CAPACITY", func(o *meshfedv1.Object) string { return fmt.Sprint(o.GetAgent().GetSpec().GetCapacity()) }},
			{"CPU", func(o *meshfedv1.Object) string {
				return orDash(o.GetAgent().GetSpec().GetCpuMillis(), federation.FormatCPU)
			}},
			{"MEMORY", func(o *meshfedv1.Object) string {
				return orDash(o.GetAgent().GetSpec().GetMemoryBytes(), federation.FormatMemory)
			}},
			{"RUNTIMES", func(o *meshfedv1.Object) string {
				sp := o.GetAgent().GetSpec()
				return or(strings.Join(append(slices.Clone(sp.GetRuntimes()), sp.GetInterpreters()...), ","), "-")
			}},
			{"STATE", func(o *meshfedv1.Object) string { return o.GetAgent().GetStatus().GetState() }},
			{"LIMITS", func(o *meshfedv1.Object) string { return or(o.GetAgent().GetSpec().GetLimits(), "-") }},
		}
	case objects.KindAssignment:
		return []column{
			{"FUNCTION", func(o *meshfedv1.Object) string {
				s := o.GetAssignment().GetSpec()
				return fmt.Sprintf("%s/%s#%d", s.GetMesh(), s.GetFunction(), s.GetIndex())
			}},
			{"AGENT", func(o *meshfedv1.Object) string { return o.GetAssignment().GetSpec().GetAgent() }},
			{"EPOCH", func(o *meshfedv1.Object) string { return fmt.Sprint(o.GetAssignment().GetSpec().GetEpoch()) }},
			{"STATE", func(o *meshfedv1.Object) string { return o.GetAssignment().GetStatus().GetState() }},
		}
	}
	return nil
}

// wideColumns are the columns -o wide adds to a kind's table.
func wideColumns(k *objects.Kind) []column {
	var cols []column
	switch k.Name {
	case objects.KindCluster:
		cols = []column{
			{"ADMIN-URL", func(o *meshfedv1.Object) string { return o.GetCluster().GetSpec().GetAdminUrl() }},
			{"CORDONED", func(o *meshfedv1.Object) string { return fmt.Sprint(o.GetCluster().GetSpec().GetCordoned()) }},
			{"READY-AGENTS", func(o *meshfedv1.Object) string { return fmt.Sprint(o.GetCluster().GetStatus().GetReadyAgents()) }},
		}
	case objects.KindFunctionMesh:
		cols = []column{
			{"CLUSTERS", func(o *meshfedv1.Object) string { return strings.Join(meshClusters(o.GetFunctionMesh()), ",") }},
			{"RUNNING", func(o *meshfedv1.Object) string { return meshRunning(o.GetFunctionMesh()) }},
		}
	case objects.KindAgent:
		cols = []column{
			{"VERSION", func(o *meshfedv1.Object) string { return o.GetAgent().GetSpec().GetVersion() }},
			{"BROKER", func(o *meshfedv1.Object) string { return o.GetAgent().GetStatus().GetBroker() }},
			{"LAST-HEARTBEAT", func(o *meshfedv1.Object) string {
				if t := o.GetAgent().GetStatus().GetLastHeartbeat(); t != nil {
					return t.AsTime().UTC().Format(time.RFC3339)
				}
				return ""
			}},
		}
	case objects.KindAssignment:
		cols = []column{{"CLUSTER", func(o *meshfedv1.Object) string { return o.GetAssignment().GetSpec().GetCluster() }}}
	}
	return append(cols,
		column{"GENERATION", func(o *meshfedv1.Object) string { return fmt.Sprint(objects.Meta(o).GetGeneration()) }},
		column{"LABELS", func(o *meshfedv1.Object) string { return labelList(objects.Meta(o).GetLabels()) }})
}

// meshClusters are the clusters a mesh's functions read from, write to or
// run in, sorted.
func meshClusters(fm *meshfedv1.FunctionMesh) []string {
	seen := map[string]bool{}
	for _, f := range objects.MeshFunctions(fm.GetSpec()) {
		for _, c := range []string{f.GetInput().GetCluster(), f.GetOutput().GetCluster(), f.GetPlacement().GetCluster()} {
			if c != "" {
				seen[c] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// meshRunning is "running/wanted" over a mesh's instances.
func meshRunning(fm *meshfedv1.FunctionMesh) string {
	var running, wanted int
	for _, f := range objects.MeshFunctions(fm.GetSpec()) {
		wanted += federation.DesiredReplicas(fm, f)
	}
	for _, fs := range fm.GetStatus().GetFunctions() {
		for _, in := range fs.GetInstances() {
			if in.GetState() == federation.StateRunning {
				running++
			}
		}
	}
	return fmt.Sprintf("%d/%d", running, wanted)
}

// labelList shows labels as k=v,k=v, sorted.
func labelList(ls map[string]string) string {
	out := make([]string, 0, len(ls))
	for k, v := range ls {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func conditions(cs []*meshfedv1.Condition) string {
	var out []string
	for _, c := range cs {
		if c.GetStatus() == "True" {
			out = append(out, c.GetType())
		}
	}
	return strings.Join(out, ",")
}

// orDash formats a quantity, or "-" for zero (not advertised).
func orDash(v int64, format func(int64) string) string {
	if v == 0 {
		return "-"
	}
	return format(v)
}
