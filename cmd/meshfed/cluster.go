package main

import (
	"context"
	"fmt"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newClusterCmd) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Operate on clusters: cordon, uncordon, drain",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("cluster needs a subcommand (cordon, uncordon, drain)")}
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "cordon NAME",
		Short: "Take a cluster out of service: its instances move to their fallback clusters",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return setCordoned(cmd, args[0], true)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "uncordon NAME",
		Short: "Return a cluster to service (instances fail back per their failback policy)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return setCordoned(cmd, args[0], false)
		},
	})
	var wait time.Duration
	drain := &cobra.Command{
		Use:   "drain NAME",
		Short: "Cordon a cluster and wait until no instance is assigned to it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := setCordoned(cmd, args[0], true); err != nil {
				return err
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			defer c.Close()
			deadline := time.Now().Add(wait)
			for {
				n, err := assignedIn(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if n == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "cluster %s drained\n", args[0])
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("cluster %s still has %d instances after %s: check `meshfed get assignments` and the meshes' failover clusters", args[0], n, wait)
				}
				time.Sleep(250 * time.Millisecond)
			}
		},
	}
	drain.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the cluster to empty")
	cmd.AddCommand(drain)
	return cmd
}

// setCordoned flips spec.cordoned with a compare-and-swap.
func setCordoned(cmd *cobra.Command, name string, cordoned bool) error {
	return withClient(cmd, func(ctx context.Context, c *client.Client) error {
		_, wrote, err := update(ctx, c, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: name}, func(o *meshfedv1.Object) error {
			cl := o.GetCluster()
			if cl.GetSpec().GetCordoned() == cordoned {
				return errUnchanged
			}
			if cl.Spec == nil {
				cl.Spec = &meshfedv1.ClusterSpec{}
			}
			cl.Spec.Cordoned = cordoned
			return nil
		})
		if err != nil {
			return rpcError("update cluster "+name, err)
		}
		if !wrote {
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s already %s\n", name, cordonWord(cordoned))
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "cluster %s %s\n", name, cordonWord(cordoned))
		return nil
	})
}

func cordonWord(c bool) string {
	if c {
		return "cordoned"
	}
	return "uncordoned"
}

func assignedIn(ctx context.Context, c *client.Client, cluster string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, global.timeout)
	defer cancel()
	resp, err := c.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindAssignment})
	if err != nil {
		return 0, rpcError("list assignments", err)
	}
	n := 0
	for _, o := range resp.GetObjects() {
		if s := o.GetAssignment().GetSpec(); s.GetCluster() == cluster && s.GetAgent() != "" {
			n++
		}
	}
	return n, nil
}
