package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/meshfed/meshfed/client"
	// Every connector type, for the server to validate configs at apply
	// and the agent to run them.
	_ "github.com/meshfed/meshfed/connector/all"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

// getConnectors is meshfed get sources|sinks [NAME].
func getConnectors(cmd *cobra.Command, kind string, args []string, scope scopeFlags, format string, stale bool) error {
	if format != "" && format != formatTable && format != formatWide {
		return usageError{errors.New("-o: sources and sinks print as a table; use meshfed get mesh NAME -o yaml for their specs")}
	}
	return withClient(cmd, func(ctx context.Context, c *client.Client) error {
		k, _ := objects.LookupKind(objects.KindFunctionMesh)
		t, ns := scope.listScope(k)
		resp, err := c.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindFunctionMesh, Tenant: t, Namespace: ns, Stale: stale})
		if err != nil {
			return rpcError("list "+kind+"s", err)
		}
		name := ""
		if len(args) > 0 {
			name = args[0]
		}
		return printConnectors(cmd.OutOrStdout(), kind, connectorRows(resp.GetObjects(), kind, name))
	})
}

// connectorKind returns "source" or "sink" for a get argument naming
// connectors (sources, source, src, sinks, sink), "" otherwise.
func connectorKind(arg string) string {
	switch strings.ToLower(arg) {
	case "sources", "source", "src":
		return objects.ConnectorSource
	case "sinks", "sink":
		return objects.ConnectorSink
	}
	return ""
}

// connectorRow is one source or sink of a mesh with its instances' counters
// summed.
type connectorRow struct {
	mesh, name, typ, cluster  string
	running, wanted           int
	received, written, failed uint64
	batches                   uint64
	lastError                 string
}

// connectorRows lists the sources or sinks (kind) of meshes, named name
// when name is not empty.
func connectorRows(meshes []*meshfedv1.Object, kind, name string) []connectorRow {
	var rows []connectorRow
	for _, o := range meshes {
		fm := o.GetFunctionMesh()
		statuses := map[string]*meshfedv1.FunctionStatus{}
		for _, fs := range fm.GetStatus().GetFunctions() {
			statuses[fs.GetName()] = fs
		}
		for _, f := range objects.MeshFunctions(fm.GetSpec()) {
			c := objects.ConnectorOf(f)
			if c.GetKind() != kind || name != "" && f.GetName() != name {
				continue
			}
			r := connectorRow{mesh: objects.DisplayName(o), name: f.GetName(), typ: c.GetType(), cluster: federation.PlacementCluster(f), wanted: federation.Replicas(f)}
			var errAt int64
			for _, in := range statuses[f.GetName()].GetInstances() {
				if in.GetState() == federation.StateRunning {
					r.running++
				}
				r.received += in.GetReceived()
				r.written += in.GetWritten()
				r.failed += in.GetFailed()
				r.batches += in.GetBatches()
				if in.GetLastError() != "" && in.GetLastErrorTime().AsTime().UnixNano() >= errAt {
					r.lastError, errAt = in.GetLastError(), in.GetLastErrorTime().AsTime().UnixNano()
				}
			}
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].mesh != rows[j].mesh {
			return rows[i].mesh < rows[j].mesh
		}
		return rows[i].name < rows[j].name
	})
	return rows
}

// printConnectors writes the rows as a table.
func printConnectors(w io.Writer, kind string, rows []connectorRow) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "No %ss found.\n", kind)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESH\tNAME\tTYPE\tCLUSTER\tRUNNING\tRECEIVED\tWRITTEN\tFAILED\tBATCHES\tLAST-ERROR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%d\t%s\n", r.mesh, r.name, r.typ, r.cluster, r.running, r.wanted,
			r.received, r.written, r.failed, r.batches, clipError(r.lastError))
	}
	return tw.Flush()
}

func clipError(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
