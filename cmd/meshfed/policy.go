package main

import (
	"context"
	"fmt"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func init() { register(newPolicyCmd) }

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Explain policy decisions",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("policy needs a subcommand (check)")}
		},
	}
	var file string
	check := &cobra.Command{
		Use:   "check -f FILE",
		Short: "Say whether the objects of FILE would be admitted, and which rules they break, without applying them",
		Long: `Run the server's whole admission — validation, references, tenant and
namespace policies (allowed clusters and runtimes, quotas, flows, residency,
grants) — against the current state plus FILE, and print the decision.
Nothing is written. Exit code 1 when the file would be refused.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("-f FILE is required")}
			}
			objs, err := readCheckedObjects(cmd, file, "")
			if err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				_, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs, DryRun: true})
				switch status.Code(err) {
				case codes.OK:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: allowed (%d objects)\n", displayFile(file), len(objs))
					return nil
				case codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: refused (%s)\n", displayFile(file), status.Code(err))
					return fmt.Errorf("%s: %s", displayFile(file), status.Convert(err).Message())
				}
				return rpcError("policy check "+file, err)
			})
		},
	}
	check.Flags().StringVarP(&file, "filename", "f", "", "file of objects to check; - reads standard input")
	cmd.AddCommand(check)
	return cmd
}
