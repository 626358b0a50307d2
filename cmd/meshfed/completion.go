package main

import (
	"context"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

// completionTimeout bounds the server read behind completing a name: a
// shell waits for it.
const completionTimeout = 3 * time.Second

// completeKindName completes KIND (every kind's name, plural and aliases;
// with users only, the kinds users write) and then NAME, read from the
// servers the global flags name (within --tenant/--namespace when set).
func completeKindName(scope *scopeFlags, userKindsOnly bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			var out []cobra.Completion
			for _, k := range objects.Kinds {
				if userKindsOnly && k.System {
					continue
				}
				for _, n := range append([]string{k.Plural}, k.Aliases...) {
					if strings.HasPrefix(n, toComplete) {
						out = append(out, n)
					}
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		case 1:
			k, err := objects.LookupKind(args[0])
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			c, err := newClient()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
			defer cancel()
			t, ns := scope.listScope(k)
			resp, err := c.List(ctx, &meshfedv1.ListRequest{Kind: k.Name, Tenant: t, Namespace: ns, Stale: true})
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			var out []cobra.Completion
			for _, o := range resp.GetObjects() {
				name := objects.DisplayName(o)
				if scope.tenant != "" || scope.namespace != "" {
					name = objects.Meta(o).GetName()
				}
				if strings.HasPrefix(name, toComplete) {
					out = append(out, name)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}
