package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

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
		files       []string
		recursive   bool
		dryRun      bool
		cluster     string
		wait        bool
		waitTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR [-f ...]",
		Short: "Create or update objects from YAML or JSON files, atomically",
		Long: `Create or update every object of the files given with -f (a directory: its
.yaml, .yml and .json files; -R: its subdirectories' too; -: standard input)
in one atomic write: either all objects are written or none is. Objects are
written in dependency order (clusters, tenants, namespaces, grants, meshes),
so a document may refer to one listed after it. A document's
metadata.resourceVersion, when set, must match the stored object.
Function Mesh custom resources (compute.functionmesh.io/v1alpha1
FunctionMesh and Function, and lists of them) are accepted as they are;
--cluster names the cluster they run in (else each function's clusterName).
The code of their golang and python runtimes (a file next to FILE, an
http(s):// URL, or function://sha256:... for a package the control plane
holds) is uploaded as a package first (on --dry-run only hashed);
Kubernetes ConfigMap and Secret documents are skipped and listed. See
docs/migration.md for what converts and what is refused.

With --wait, apply then waits until every mesh it wrote is Ready at the
generation written, printing its progress; it fails when an instance fails
(naming it and its error) or at --wait-timeout.`,
		Example: `  meshfed apply -f examples/word-count.yaml
  meshfed apply -f deploy/meshes/ -R --wait
  meshfed apply -f examples/functionmesh/py-function.yaml --cluster a
  cat mesh.yaml | meshfed apply -f - --dry-run`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageError{fmt.Errorf("-f FILE is required (a file, a directory, or - for standard input)")}
			}
			if wait && dryRun {
				return usageError{fmt.Errorf("--wait and --dry-run: a dry run writes nothing to wait for")}
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				set, err := readDocSet(files, recursive, func(file string) ([]*meshfedv1.Object, error) {
					return readApplyObjects(ctx, cmd, c, file, cluster, dryRun)
				})
				if err != nil {
					return err
				}
				objs := set.objs
				resp, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs, DryRun: dryRun})
				if c := status.Code(err); c == codes.InvalidArgument || c == codes.PermissionDenied || c == codes.FailedPrecondition {
					// The server numbers documents as sent: name them as written.
					return errors.New(set.locate(status.Convert(err).Message()))
				}
				if err != nil {
					return rpcError("apply "+strings.Join(files, ", "), err)
				}
				suffix := ""
				if dryRun {
					suffix = " (dry run)"
				}
				for i, o := range resp.GetObjects() {
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s %s%s\n", strings.ToLower(objects.KindOf(o).Name), objects.DisplayName(o), resp.GetResults()[i], suffix)
				}
				if !wait {
					return nil
				}
				wctx, cancel := context.WithTimeout(cmd.Context(), waitTimeout)
				defer cancel()
				return waitMeshes(wctx, c, cmd.OutOrStdout(), resp.GetObjects())
			})
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file or directory to apply, repeatable; - reads standard input")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "with -f DIR, also read its subdirectories")
	cmd.Flags().BoolVar(&wait, "wait", false, "after writing, wait until every mesh written is Ready (or an instance fails)")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 5*time.Minute, "with --wait, give up after this long")
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

// readApplyObjects decodes and checks FILE for apply: Function Mesh
// resources' code is pushed through c (hashed only on a dry run) and their
// pulsar blocks checked against the Clusters c reads.
func readApplyObjects(ctx context.Context, cmd *cobra.Command, c *client.Client, file, cluster string, dryRun bool) ([]*meshfedv1.Object, error) {
	dir := "."
	if file != "-" {
		dir = filepath.Dir(file)
	}
	pk := &crdPackages{ctx: ctx, dir: dir, http: &http.Client{}, log: cmd.ErrOrStderr(),
		get: func(ctx context.Context, digest string) ([]byte, error) { return getPackage(ctx, c, digest) }}
	if !dryRun {
		pk.push = func(ctx context.Context, name string, data []byte) (string, error) {
			return pushPackage(ctx, c, name, data)
		}
	}
	skips := &skipReporter{w: cmd.ErrOrStderr(), file: displayFile(file)}
	objs, err := decodeFile(cmd, file, crdDecodeOptions(cluster, pk, clusterLookup(ctx, c), skips))
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
	return decodeFile(cmd, file, objects.DecodeOptions{Cluster: cluster})
}

// decodeFile decodes FILE ("-" for stdin) with opts.
func decodeFile(cmd *cobra.Command, file string, opts objects.DecodeOptions) ([]*meshfedv1.Object, error) {
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
	objs, err := opts.Decode(name, data)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no objects found", name)
	}
	return objs, nil
}
