package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newFailbackCmd) }

func newFailbackCmd() *cobra.Command {
	var scope scopeFlags
	cmd := &cobra.Command{
		Use:   "failback MESH",
		Short: "Return a mesh's failed-over functions to their home clusters (failback: manual)",
		Long: `Ask the scheduler to move a mesh's functions back to their home clusters.
Functions with failback: manual stay in their fallback cluster until asked;
they return once their home cluster is Healthy. (failback: auto returns
by itself after the hold-down.)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, _ := objects.LookupKind(objects.KindFunctionMesh)
			t, ns, n, err := scope.objectName(k, args[0])
			if err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				o, _, err := update(ctx, c, &meshfedv1.GetRequest{Kind: k.Name, Tenant: t, Namespace: ns, Name: n}, func(o *meshfedv1.Object) error {
					md := objects.Meta(o)
					if md.Labels == nil {
						md.Labels = map[string]string{}
					}
					md.Labels[federation.FailbackLabel] = strconv.FormatInt(time.Now().Unix(), 10)
					return nil
				})
				if err != nil {
					return rpcError("request failback of "+args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "failback of %s requested; functions return when their home clusters are Healthy\n", objects.DisplayName(o))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&scope.tenant, "tenant", "", "tenant of the mesh (default public)")
	cmd.Flags().StringVarP(&scope.namespace, "namespace", "n", "", "namespace of the mesh (default default)")
	return cmd
}
