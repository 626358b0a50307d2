package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

func init() { register(newStatusCmd) }

func newStatusCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen: servers and leader, clusters and their health, agents, meshes and their conditions",
		Long: `One screen: servers and leader, clusters and their health, agents, meshes
and their conditions. -o json and -o yaml print one document with the
lists servers, clusters, agents and meshes; -o name one KIND/NAME per line.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := readStatus(ctx, c)
				if err != nil {
					return err
				}
				return st.print(cmd.OutOrStdout(), output.format)
			})
		},
	}
	output.register(cmd, listingFormats...)
	return cmd
}

// federationStatus is what `meshfed status` shows.
type federationStatus struct {
	peers                    []*meshfedv1.Peer
	clusters, agents, meshes []*meshfedv1.Object
}

func readStatus(ctx context.Context, c *client.Client) (*federationStatus, error) {
	st := &federationStatus{}
	err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := client.Operator(conn).ListPeers(ctx, &meshfedv1.ListPeersRequest{})
		st.peers = resp.GetPeers()
		return err
	})
	if err != nil {
		return nil, rpcError("list peers", err)
	}
	for _, l := range []struct {
		kind string
		dst  *[]*meshfedv1.Object
	}{{objects.KindCluster, &st.clusters}, {objects.KindAgent, &st.agents}, {objects.KindFunctionMesh, &st.meshes}} {
		resp, err := c.List(ctx, &meshfedv1.ListRequest{Kind: l.kind})
		if err != nil {
			return nil, rpcError("list "+l.kind, err)
		}
		*l.dst = resp.GetObjects()
	}
	return st, nil
}

func (st *federationStatus) print(w io.Writer, format string) error {
	switch format {
	case formatJSON, formatYAML:
		return st.encode(w, format)
	case formatName:
		for _, p := range st.peers {
			fmt.Fprintf(w, "peer/%s\n", p.GetId())
		}
		for _, l := range [][]*meshfedv1.Object{st.clusters, st.agents, st.meshes} {
			for _, o := range l {
				fmt.Fprintf(w, "%s/%s\n", strings.ToLower(objects.KindOf(o).Name), objects.DisplayName(o))
			}
		}
		return nil
	}
	wide := format == formatWide
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVERS\tGRPC\tROLE")
	for _, p := range st.peers {
		role := "follower"
		if p.GetLeader() {
			role = "leader"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.GetId(), or(p.GetGrpcAddress(), "-"), role)
	}
	fmt.Fprintln(tw, "\nCLUSTERS\tHEALTH\tAGENTS\tSINCE\tREASON")
	for _, o := range st.clusters {
		cs := o.GetCluster().GetStatus()
		since := "-"
		if cs.GetSince() != nil {
			since = time.Since(cs.GetSince().AsTime()).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", objects.DisplayName(o), or(cs.GetHealth(), "-"), cs.GetReadyAgents(), since, or(cs.GetReason(), "-"))
	}
	fmt.Fprint(tw, "\nAGENTS\tCLUSTER\tSTATE\tCAPACITY")
	if wide {
		fmt.Fprint(tw, "\tVERSION\tBROKER")
	}
	fmt.Fprintln(tw)
	for _, o := range st.agents {
		a := o.GetAgent()
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d", objects.DisplayName(o), a.GetSpec().GetCluster(), or(a.GetStatus().GetState(), "-"), a.GetSpec().GetCapacity())
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s", or(a.GetSpec().GetVersion(), "-"), or(a.GetStatus().GetBroker(), "-"))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "\nMESHES\tCONDITIONS\tDETAILS")
	if wide {
		fmt.Fprint(tw, "\tCLUSTERS\tRUNNING")
	}
	fmt.Fprintln(tw)
	for _, o := range st.meshes {
		var conds, details []string
		for _, cd := range o.GetFunctionMesh().GetStatus().GetConditions() {
			if cd.GetStatus() == "True" {
				conds = append(conds, cd.GetType())
				if cd.GetMessage() != "" && cd.GetType() != "Ready" {
					details = append(details, cd.GetMessage())
				}
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s", objects.DisplayName(o), or(strings.Join(conds, ","), "-"), or(strings.Join(details, "; "), "-"))
		if wide {
			fm := o.GetFunctionMesh()
			fmt.Fprintf(tw, "\t%s\t%s", or(strings.Join(meshClusters(fm), ","), "-"), meshRunning(fm))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// encode prints the status as one JSON or YAML document.
func (st *federationStatus) encode(w io.Writer, format string) error {
	var buf bytes.Buffer
	buf.WriteString(`{"servers":[`)
	for i, p := range st.peers {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode %s: %w", format, err)
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	for _, l := range []struct {
		name string
		objs []*meshfedv1.Object
	}{{"clusters", st.clusters}, {"agents", st.agents}, {"meshes", st.meshes}} {
		fmt.Fprintf(&buf, `,%q:[`, l.name)
		for i, o := range l.objs {
			if i > 0 {
				buf.WriteByte(',')
			}
			b, err := objects.Encode(o, formatJSON)
			if err != nil {
				return err
			}
			if err := json.Compact(&buf, b); err != nil {
				return fmt.Errorf("encode %s: %w", objects.DisplayName(o), err)
			}
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return printEncoded(w, format, buf.Bytes())
}
