package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newGetCmd) }

func newGetCmd() *cobra.Command {
	var (
		scope    scopeFlags
		output   string
		watch    bool
		selector string
		stale    bool
	)
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show one object or list the objects of a kind",
		Long: `Show one object or list the objects of a kind. KIND is a kind name, plural or
alias (clusters, tenants, namespaces, grants, meshes, agents, assignments).
NAME of a namespaced object is NAME (in --tenant/--namespace, default
public/default) or TENANT/NAMESPACE/NAME. With -w, keep printing changes.`,
		Example: `  meshfed get clusters
  meshfed get mesh public/default/word-count -o yaml
  meshfed get meshes -l team=ml -w`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			if output != "table" && output != "json" && output != "yaml" {
				return usageError{fmt.Errorf("-o %q: use table, json or yaml", output)}
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
			if err := printObjects(out, k, objs, output, ""); err != nil {
				return err
			}
			if !watch {
				return nil
			}
			return watchObjects(cmd, c, k, scope, args, selector, output, rev)
		},
	}
	f := cmd.Flags()
	f.StringVar(&scope.tenant, "tenant", "", "tenant of namespaced objects (default public for a single object; all for a list)")
	f.StringVarP(&scope.namespace, "namespace", "n", "", "namespace of namespaced objects (default default for a single object; all for a list)")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
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
			if err := printObjects(cmd.OutOrStdout(), k, []*meshfedv1.Object{o}, output, what); err != nil {
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
// is set) or as JSON/YAML documents.
func printObjects(w io.Writer, k *objects.Kind, objs []*meshfedv1.Object, format, event string) error {
	if format != "table" {
		for _, o := range objs {
			b, err := objects.Encode(o, format)
			if err != nil {
				return err
			}
			if format == "yaml" {
				fmt.Fprintln(w, "---")
			}
			fmt.Fprint(w, string(b))
			if format == "json" {
				fmt.Fprintln(w)
			}
		}
		return nil
	}
	if len(objs) == 0 && event == "" {
		fmt.Fprintf(w, "No %s found.\n", k.Plural)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := tableColumns(k)
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
	sort.SliceStable(objs, func(i, j int) bool { return objects.DisplayName(objs[i]) < objects.DisplayName(objs[j]) })
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
			{"CONDITIONS", func(o *meshfedv1.Object) string { return conditions(o.GetFunctionMesh().GetStatus().GetConditions()) }},
		}
	case objects.KindAgent:
		return []column{
			{"CLUSTER", func(o *meshfedv1.Object) string { return o.GetAgent().GetSpec().GetCluster() }},
			{"CAPACITY", func(o *meshfedv1.Object) string { return fmt.Sprint(o.GetAgent().GetSpec().GetCapacity()) }},
			{"STATE", func(o *meshfedv1.Object) string { return o.GetAgent().GetStatus().GetState() }},
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

func conditions(cs []*meshfedv1.Condition) string {
	var out []string
	for _, c := range cs {
		if c.GetStatus() == "True" {
			out = append(out, c.GetType())
		}
	}
	return strings.Join(out, ",")
}
