package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	var (
		req          meshfedv1.ListAuditRequest
		since, until string
		output       outputFlag
	)
	cmd := &cobra.Command{
		Use:   "audit [--principal P] [--tenant T] [--since 1h|RFC3339] [--until ...] [--result ok|denied|error]",
		Short: "Show the audit log: who wrote what, and which requests were refused",
		Long: `Show audit records, oldest first: every write (with its outcome) and every
refused or failed request, kept in the replicated state by servers run with
--auth. At most --limit records are shown, the newest that match.

--since and --until take a time (RFC 3339, e.g. 2026-11-26T14:00:00Z) or a
duration before now (1h: an hour ago). A superuser and a viewer of every
tenant see every record; a tenant-admin those of its tenant.`,
		Example: `  meshfed audit --since 1h
  meshfed audit --principal alice --result denied
  meshfed audit --tenant acme --since 2026-11-26T00:00:00Z --until 24h -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			switch req.GetResult() {
			case "", "ok", "denied", "error":
			default:
				return usageError{fmt.Errorf("--result %q: use ok, denied or error", req.GetResult())}
			}
			if req.GetLimit() < 0 {
				return usageError{fmt.Errorf("--limit %d: use a positive number (0: the server's default, 1000)", req.GetLimit())}
			}
			now := time.Now()
			for _, tf := range []struct {
				name, value string
				dst         **timestamppb.Timestamp
			}{{"--since", since, &req.Since}, {"--until", until, &req.Until}} {
				if tf.value == "" {
					continue
				}
				t, err := parseTimeFlag(tf.value, now)
				if err != nil {
					return usageError{fmt.Errorf("%s: %w", tf.name, err)}
				}
				*tf.dst = timestamppb.New(t)
			}
			if req.Since != nil && req.Until != nil && !req.Since.AsTime().Before(req.Until.AsTime()) {
				return usageError{fmt.Errorf("--since %s is not before --until %s", since, until)}
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var resp *meshfedv1.ListAuditResponse
				err := c.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					resp, err = client.Audit(conn).ListAudit(ctx, &req)
					return err
				})
				if err != nil {
					return rpcError("list audit records", err)
				}
				recs := resp.GetRecords()
				if req.GetLimit() > 0 && len(recs) == int(req.GetLimit()) {
					fmt.Fprintf(cmd.ErrOrStderr(), "--limit %d reached: showing the newest records only; raise --limit or narrow with --since for more\n", len(recs))
				}
				switch output.format {
				case formatJSON, formatYAML:
					return printMessages(cmd.OutOrStdout(), output.format, recs)
				case formatName:
					// An audit record has no name of its own: its time and method.
					names := make([]string, len(recs))
					for i, r := range recs {
						names[i] = r.GetTime().AsTime().UTC().Format(time.RFC3339Nano) + "/" + shortMethod(r.GetMethod())
					}
					return printNames(cmd.OutOrStdout(), "audit", names)
				}
				if len(recs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "No audit records found.")
					return nil
				}
				return printAudit(cmd.OutOrStdout(), recs, output.format == formatWide)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Principal, "principal", "", "only records of this principal: a token subject, or a certificate name such as agent/a/agent-a1")
	f.StringVar(&req.Tenant, "tenant", "", "only records touching this tenant or made by a principal of it")
	f.StringVar(&since, "since", "", "only records at or after this time: RFC 3339, or a duration before now (1h)")
	f.StringVar(&until, "until", "", "only records before this time: RFC 3339, or a duration before now")
	f.StringVar(&req.Result, "result", "", "only records with this result: ok, denied or error")
	f.Int32Var(&req.Limit, "limit", 100, "at most this many records, the newest that match (0: the server's default, 1000)")
	output.register(cmd, listingFormats...)
	return cmd
}

// parseTimeFlag reads an RFC 3339 time, or a duration before now.
func parseTimeFlag(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-26T14:00:00Z) nor a duration before now (90m, 24h)", v)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("%q: a duration counts back from now; drop the minus sign", v)
	}
	return now.Add(-d), nil
}

// printAudit prints audit records as a table; wide adds the code, the
// server and the peer, and shows the whole message.
func printAudit(w io.Writer, recs []*meshfedv1.AuditRecord, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "TIME\tPRINCIPAL\tROLE\tMETHOD\tTARGETS\tRESULT\tMESSAGE"
	if wide {
		head += "\tCODE\tNODE\tPEER"
	}
	fmt.Fprintln(tw, head)
	for _, r := range recs {
		msg := clipText(r.GetMessage(), 80)
		if wide {
			msg = clipText(r.GetMessage(), 1<<20)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", r.GetTime().AsTime().UTC().Format(time.RFC3339),
			or(r.GetPrincipal(), "-"), or(r.GetRole(), "-"), shortMethod(r.GetMethod()), auditTargets(r.GetTargets()),
			or(r.GetResult(), "-"), or(msg, "-"))
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s", or(r.GetCode(), "-"), or(r.GetNode(), "-"), or(r.GetPeer(), "-"))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// shortMethod drops the package and service of a full gRPC method name:
// /meshfed.v1.ObjectService/Apply is Apply (method names are unique across
// the services; -o json has the full name).
func shortMethod(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 && i < len(m)-1 {
		return m[i+1:]
	}
	return or(m, "-")
}

// auditTargets shows what a request touched: kind/tenant/namespace/name
// with the empty parts left out, at most two, then how many more.
func auditTargets(ts []*meshfedv1.AuditTarget) string {
	const show = 2
	var out []string
	for i, t := range ts {
		if i == show {
			out = append(out, fmt.Sprintf("+%d more", len(ts)-show))
			break
		}
		parts := []string{strings.ToLower(or(t.GetKind(), "?"))}
		for _, p := range []string{t.GetTenant(), t.GetNamespace(), t.GetName()} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		out = append(out, strings.Join(parts, "/"))
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}
