package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func init() { register(newStatusCmd) }

func newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "One screen: servers and leader, clusters and their health, agents, meshes and their conditions",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				var peers *meshfedv1.ListPeersResponse
				err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					peers, err = client.Operator(conn).ListPeers(ctx, &meshfedv1.ListPeersRequest{})
					return err
				})
				if err != nil {
					return rpcError("list peers", err)
				}
				fmt.Fprintln(w, "SERVERS\tGRPC\tROLE")
				for _, p := range peers.GetPeers() {
					role := "follower"
					if p.GetLeader() {
						role = "leader"
					}
					fmt.Fprintf(w, "  %s\t%s\t%s\n", p.GetId(), or(p.GetGrpcAddress(), "-"), role)
				}
				list := func(kind string) ([]*meshfedv1.Object, error) {
					resp, err := c.List(ctx, &meshfedv1.ListRequest{Kind: kind})
					if err != nil {
						return nil, rpcError("list "+kind, err)
					}
					return resp.GetObjects(), nil
				}
				clusters, err := list(objects.KindCluster)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, "\nCLUSTERS\tHEALTH\tAGENTS\tSINCE\tREASON")
				for _, o := range clusters {
					st := o.GetCluster().GetStatus()
					since := "-"
					if st.GetSince() != nil {
						since = time.Since(st.GetSince().AsTime()).Round(time.Second).String() + " ago"
					}
					fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\n", objects.DisplayName(o), or(st.GetHealth(), "-"), st.GetReadyAgents(), since, or(st.GetReason(), "-"))
				}
				agents, err := list(objects.KindAgent)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, "\nAGENTS\tCLUSTER\tSTATE\tCAPACITY")
				for _, o := range agents {
					a := o.GetAgent()
					fmt.Fprintf(w, "  %s\t%s\t%s\t%d\n", objects.DisplayName(o), a.GetSpec().GetCluster(), or(a.GetStatus().GetState(), "-"), a.GetSpec().GetCapacity())
				}
				meshes, err := list(objects.KindFunctionMesh)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, "\nMESHES\tCONDITIONS\tDETAILS")
				for _, o := range meshes {
					var conds, details []string
					for _, cd := range o.GetFunctionMesh().GetStatus().GetConditions() {
						if cd.GetStatus() == "True" {
							conds = append(conds, cd.GetType())
							if cd.GetMessage() != "" && cd.GetType() != "Ready" {
								details = append(details, cd.GetMessage())
							}
						}
					}
					fmt.Fprintf(w, "  %s\t%s\t%s\n", objects.DisplayName(o), or(strings.Join(conds, ","), "-"), or(strings.Join(details, "; "), "-"))
				}
				return w.Flush()
			})
		},
	}
}
