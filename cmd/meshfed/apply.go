package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func init() { register(newApplyCmd) }

func newApplyCmd() *cobra.Command {
	var (
		file    string
		dryRun  bool
		cluster string
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update objects from a multi-document YAML or JSON file, atomically",
		Long: `Create or update every object of FILE (or standard input with -f -) in one
atomic write: either all objects are written or none is. A document's
metadata.resourceVersion, when set, must match the stored object.
Function Mesh CRD documents (compute.functionmesh.io/v1alpha1) are accepted
too; --cluster names the Pulsar cluster they run in.`,
		Example: `  meshfed apply -f examples/word-count.yaml
  cat mesh.yaml | meshfed apply -f - --dry-run`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("-f FILE is required (use -f - for standard input)")}
			}
			objs, err := readCheckedObjects(cmd, file, cluster)
			if err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs, DryRun: dryRun})
				if c := status.Code(err); c == codes.InvalidArgument || c == codes.PermissionDenied || c == codes.FailedPrecondition {
					// The server numbers documents as the file does.
					return fmt.Errorf("%s: %s", displayFile(file), status.Convert(err).Message())
				}
				if err != nil {
					return rpcError("apply "+file, err)
				}
				suffix := ""
				if dryRun {
					suffix = " (dry run)"
				}
				for i, o := range resp.GetObjects() {
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s %s%s\n", strings.ToLower(objects.KindOf(o).Name), objects.DisplayName(o), resp.GetResults()[i], suffix)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file to apply; - reads standard input")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and check against the current state without writing")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster that Function Mesh CRD documents run in")
	return cmd
}

func displayFile(file string) string {
	if file == "-" {
		return "<stdin>"
	}
	return file
}

// readCheckedObjects decodes FILE ("-" for stdin) into objects and runs
// the static checks here, so errors name the file; the server repeats them
// and checks references.
func readCheckedObjects(cmd *cobra.Command, file, cluster string) ([]*meshfedv1.Object, error) {
	objs, err := readObjects(cmd, file, cluster)
	if err != nil {
		return nil, err
	}
	if err := objects.Check(displayFile(file), objs, nil); err != nil {
		return nil, err
	}
	return objs, nil
}

// readObjects decodes FILE ("-" for stdin) into objects.
func readObjects(cmd *cobra.Command, file, cluster string) ([]*meshfedv1.Object, error) {
	var (
		data []byte
		err  error
		name = file
	)
	if file == "-" {
		name = "<stdin>"
		data, err = io.ReadAll(cmd.InOrStdin())
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	objs, err := objects.DecodeOptions{Cluster: cluster}.Decode(name, data)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no objects found", name)
	}
	return objs, nil
}
