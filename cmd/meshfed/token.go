package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

func init() { register(newTokenCmd) }

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, revoke and list the bearer tokens users present to servers run with --auth",
		Long: `Create, revoke and list bearer tokens. A token carries a subject (who it is
for, shown in audit records), a role and the role's scope:

  superuser            everything
  tenant-admin         one tenant (--tenant): its namespaces, grants, meshes,
                       tokens and audit records
  namespace-developer  one namespace (--tenant, --namespace): writes its meshes
  viewer               reads: everything, one tenant, or one namespace

A superuser issues any token; a tenant-admin issues tenant-admin,
namespace-developer and viewer tokens of its own tenant. Present a token with
--token-file, --token, MESHFED_TOKEN_FILE or MESHFED_TOKEN (over mutual TLS).
See docs/security.md.`,
		Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("token needs a subcommand (create, revoke, list)")}
		},
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenRevokeCmd(), newTokenListCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var (
		req    meshfedv1.CreateTokenRequest
		ttl    time.Duration
		output string
	)
	cmd := &cobra.Command{
		Use:   "create --subject NAME --role ROLE [--tenant T] [--namespace N]",
		Short: "Issue a token and print its secret (shown only this once)",
		Long: `Issue a token and print its secret. The control plane keeps only the token's
record: the secret is shown this once. With -o secret only the secret is
printed, for scripts; with -o json the record and the secret.`,
		Example: `  meshfed token create --subject alice --role tenant-admin --tenant acme --ttl 720h
  (umask 077; meshfed token create --subject ci-etl --role namespace-developer --tenant acme --namespace etl -o secret > etl.token)
  meshfed token create --subject auditor --role viewer --description "quarterly audit" --ttl 168h`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.GetSubject() == "" || req.GetRole() == "" {
				return usageError{fmt.Errorf("--subject and --role are required (roles: superuser, tenant-admin, namespace-developer, viewer)")}
			}
			if output != "table" && output != "json" && output != "secret" {
				return usageError{fmt.Errorf("-o %q: use table, json or secret", output)}
			}
			if ttl < 0 {
				return usageError{fmt.Errorf("--ttl %s: use a positive duration, or 0 for a token that never expires", ttl)}
			}
			if ttl > 0 {
				req.Ttl = durationpb.New(ttl)
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var resp *meshfedv1.CreateTokenResponse
				err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					resp, err = client.Tokens(conn).CreateToken(ctx, &req)
					return err
				})
				if err != nil {
					return rpcError("create token for "+req.GetSubject(), err)
				}
				return printCreatedToken(cmd.OutOrStdout(), cmd.ErrOrStderr(), resp, output)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Subject, "subject", "", "who the token is for (a person or tool); shown in audit records (required)")
	f.StringVar(&req.Role, "role", "", "superuser, tenant-admin, namespace-developer or viewer (required)")
	f.StringVar(&req.Tenant, "tenant", "", "the tenant the role applies to (tenant-admin, namespace-developer; optional for viewer)")
	f.StringVarP(&req.Namespace, "namespace", "n", "", "the namespace the role applies to (namespace-developer; optional for viewer)")
	f.DurationVar(&ttl, "ttl", 0, "how long the token is valid, e.g. 24h or 720h (0: it never expires, until revoked)")
	f.StringVar(&req.Description, "description", "", "a note kept with the token record")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json (record and secret) or secret (only the secret)")
	return cmd
}

// printCreatedToken prints a new token in format table, json or secret.
func printCreatedToken(w, errw io.Writer, resp *meshfedv1.CreateTokenResponse, format string) error {
	const once = "The secret is shown only this once: store it now (present it with --token-file or MESHFED_TOKEN)."
	switch format {
	case "secret":
		fmt.Fprintln(w, resp.GetSecret())
		return nil
	case "json":
		fmt.Fprintln(errw, once)
		return printJSON(w, resp)
	}
	if err := printTokens(w, []*meshfedv1.Token{resp.GetToken()}, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nsecret: %s\n\n%s\n", resp.GetSecret(), once)
	return nil
}

func newTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: calls presenting it are refused, and its open watches end within a second",
		Example: `  meshfed token list
  meshfed token revoke 3f9c2a7d61e04b8a9d0c5e2f7a1b3c4d`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var resp *meshfedv1.RevokeTokenResponse
				err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					resp, err = client.Tokens(conn).RevokeToken(ctx, &meshfedv1.RevokeTokenRequest{Id: args[0]})
					return err
				})
				if err != nil {
					return rpcError("revoke token "+args[0], err)
				}
				t := resp.GetToken()
				fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s (%s %q, scope %s)\n", t.GetId(), t.GetRole(), t.GetSubject(), tokenScope(t))
				return nil
			})
		},
	}
}

func newTokenListCmd() *cobra.Command {
	var (
		req    meshfedv1.ListTokensRequest
		output outputFlag
	)
	cmd := &cobra.Command{
		Use:   "list [--tenant T] [--all]",
		Short: "List token records (never secrets) within your scope",
		Long: `List token records within your scope: every token for a superuser, the
tenant's tokens for a tenant-admin. Revoked and expired tokens are left out
unless --all is given.`,
		Example: `  meshfed token list
  meshfed token list --tenant acme --all -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var resp *meshfedv1.ListTokensResponse
				err := c.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					resp, err = client.Tokens(conn).ListTokens(ctx, &req)
					return err
				})
				if err != nil {
					return rpcError("list tokens", err)
				}
				toks := resp.GetTokens()
				sort.SliceStable(toks, func(i, j int) bool {
					a, b := toks[i].GetCreated().AsTime(), toks[j].GetCreated().AsTime()
					if !a.Equal(b) {
						return a.Before(b)
					}
					return toks[i].GetId() < toks[j].GetId()
				})
				switch output.format {
				case formatJSON, formatYAML:
					return printMessages(cmd.OutOrStdout(), output.format, toks)
				case formatName:
					ids := make([]string, len(toks))
					for i, t := range toks {
						ids[i] = t.GetId()
					}
					return printNames(cmd.OutOrStdout(), "token", ids)
				}
				if len(toks) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "No tokens found.")
					return nil
				}
				return printTokens(cmd.OutOrStdout(), toks, time.Now())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "only the tokens of this tenant (default: all in your scope)")
	f.BoolVar(&req.All, "all", false, "include revoked and expired tokens")
	output.register(cmd, listingFormats...)
	return cmd
}

// printTokens prints token records as a table; now decides which expired.
func printTokens(w io.Writer, toks []*meshfedv1.Token, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUBJECT\tROLE\tSCOPE\tEXPIRES\tSTATE\tCREATED-BY\tDESCRIPTION")
	for _, t := range toks {
		expires := "never"
		if t.GetExpires() != nil {
			expires = t.GetExpires().AsTime().UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.GetId(), t.GetSubject(), t.GetRole(), tokenScope(t),
			expires, tokenState(t, now), or(t.GetCreatedBy(), "-"), or(clipText(t.GetDescription(), 40), "-"))
	}
	return tw.Flush()
}

// tokenScope shows where a token's role applies: TENANT, TENANT/NAMESPACE,
// or * for everywhere.
func tokenScope(t *meshfedv1.Token) string {
	switch {
	case t.GetTenant() == "":
		return "*"
	case t.GetNamespace() == "":
		return t.GetTenant()
	}
	return objects.NamespaceRef(t.GetTenant(), t.GetNamespace()).String()
}

// tokenState is active, revoked or expired (at now).
func tokenState(t *meshfedv1.Token, now time.Time) string {
	switch {
	case t.GetRevoked():
		return "revoked"
	case t.GetExpires() != nil && !now.Before(t.GetExpires().AsTime()):
		return "expired"
	}
	return "active"
}

// printJSON prints a message as indented JSON with every field present, so
// scripts see stable keys (protojson's own spacing is deliberately unstable).
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// clipText shortens s to at most n runes on one line, marking a cut with "…".
func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
