package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

func init() { register(newDeleteCmd) }

func newDeleteCmd() *cobra.Command {
	var (
		scope     scopeFlags
		files     []string
		recursive bool
		dryRun    bool
		rv        uint64
	)
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME | -f FILE|DIR [-f ...])",
		Short: "Delete an object, or every object of files",
		Long: `Delete an object, or every object of the files given with -f (a directory:
its .yaml, .yml and .json files; -R: its subdirectories' too), in reverse
dependency order: meshes and grants before the namespaces and tenants
holding them, clusters last. A tenant or namespace that still holds
objects, or a cluster a mesh uses, is not deleted.`,
		Example: `  meshfed delete mesh word-count
  meshfed delete -f examples/word-count.yaml`,
		Args:              rangeArgs(0, 2),
		ValidArgsFunction: completeKindName(&scope, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			var reqs []*meshfedv1.DeleteRequest
			switch {
			case len(files) > 0 && len(args) == 0:
				set, err := readDocSet(files, recursive, func(file string) ([]*meshfedv1.Object, error) { return readObjects(cmd, file, "") })
				if err != nil {
					return err
				}
				objs := set.objs
				for i := len(objs) - 1; i >= 0; i-- {
					md := objects.Meta(objs[i])
					reqs = append(reqs, &meshfedv1.DeleteRequest{Kind: objects.KindOf(objs[i]).Name, Tenant: md.GetTenant(),
						Namespace: md.GetNamespace(), Name: md.GetName(), DryRun: dryRun})
				}
			case len(files) == 0 && len(args) == 2:
				k, err := lookupKind(args[0])
				if err != nil {
					return err
				}
				t, ns, n, err := scope.objectName(k, args[1])
				if err != nil {
					return err
				}
				reqs = append(reqs, &meshfedv1.DeleteRequest{Kind: k.Name, Tenant: t, Namespace: ns, Name: n, ResourceVersion: rv, DryRun: dryRun})
			default:
				return usageError{fmt.Errorf("give either KIND NAME or -f FILE")}
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				suffix := ""
				if dryRun {
					suffix = " (dry run)"
				}
				for _, r := range reqs {
					resp, err := c.Delete(ctx, r)
					if err != nil {
						return rpcError("delete "+strings.ToLower(r.GetKind())+" "+r.GetName(), err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted%s\n", strings.ToLower(r.GetKind()), objects.DisplayName(resp.GetObject()), suffix)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&scope.tenant, "tenant", "", "tenant of a namespaced object (default public)")
	cmd.Flags().StringVarP(&scope.namespace, "namespace", "n", "", "namespace of a namespaced object (default default)")
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the objects of this file or directory, repeatable (- for standard input)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "with -f DIR, also read its subdirectories")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check that the delete would succeed without deleting")
	cmd.Flags().Uint64Var(&rv, "resource-version", 0, "delete only if the object is at this revision")
	return cmd
}
