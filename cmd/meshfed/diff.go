package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func init() { register(newDiffCmd) }

func newDiffCmd() *cobra.Command {
	var (
		files     []string
		recursive bool
		cluster   string
	)
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR [-f ...]",
		Short: "Show what apply would change, as a unified diff of the stored and the applied objects",
		Long: `Show what apply -f would change, without changing anything: the server
checks the files as apply would (a dry run, so refusals show here too), and
each object that would be created or changed is printed as a unified diff of
its YAML, stored (---) against as it would be stored (+++). Status and
server-written metadata (revisions, generation, times) are left out.

Exit status, as diff(1) and kubectl diff: 0 no differences, 1 differences,
2 an error.`,
		Example: `  meshfed diff -f examples/word-count.yaml
  meshfed diff -f deploy/meshes/ -R && echo up to date`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageError{fmt.Errorf("-f FILE is required (a file, a directory, or - for standard input)")}
			}
			var changed bool
			err := withClient(cmd, func(ctx context.Context, c *client.Client) error {
				set, err := readDocSet(files, recursive, func(file string) ([]*meshfedv1.Object, error) {
					// As a dry-run apply: Function Mesh resources' code is hashed, not uploaded.
					return readApplyObjects(ctx, cmd, c, file, cluster, true)
				})
				if err != nil {
					return err
				}
				resp, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: set.objs, DryRun: true})
				if code := status.Code(err); code == codes.InvalidArgument || code == codes.PermissionDenied || code == codes.FailedPrecondition {
					return fmt.Errorf("%s", set.locate(status.Convert(err).Message()))
				}
				if err != nil {
					return rpcError("diff "+strings.Join(files, ", "), err)
				}
				for i, after := range resp.GetObjects() {
					if resp.GetResults()[i] == "unchanged" {
						continue
					}
					before, err := storedObject(ctx, c, after)
					if err != nil {
						return err
					}
					d, err := objectDiff(before, after, set.from[i])
					if err != nil {
						return err
					}
					if d != "" {
						changed = true
						fmt.Fprint(cmd.OutOrStdout(), d)
					}
				}
				return nil
			})
			if err != nil {
				return exitCode{2, err}
			}
			if changed {
				return exitCode{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file or directory to compare, repeatable; - reads standard input")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "with -f DIR, also read its subdirectories")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster that Function Mesh CRD documents run in")
	return cmd
}

// storedObject reads the stored version of o; nil when there is none.
func storedObject(ctx context.Context, c *client.Client, o *meshfedv1.Object) (*meshfedv1.Object, error) {
	md := objects.Meta(o)
	k := objects.KindOf(o)
	resp, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: k.Name, Tenant: md.GetTenant(), Namespace: md.GetNamespace(), Name: md.GetName()})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, rpcError("get "+strings.ToLower(k.Name)+" "+objects.DisplayName(o), err)
	}
	return resp.GetObject(), nil
}

// objectDiff is the unified diff of one object's YAML, stored against
// applied, with status and server-written metadata left out; "" when equal.
func objectDiff(before, after *meshfedv1.Object, src docSource) (string, error) {
	name := strings.ToLower(objects.KindOf(after).Name) + "/" + objects.DisplayName(after)
	b, err := diffYAML(before)
	if err != nil {
		return "", err
	}
	a, err := diffYAML(after)
	if err != nil {
		return "", err
	}
	return unifiedDiff(b, a, name+" (stored)", fmt.Sprintf("%s (%s doc %d)", name, src.file, src.doc), 3), nil
}

// diffYAML is the object as YAML lines without what the server writes.
func diffYAML(o *meshfedv1.Object) ([]string, error) {
	if o == nil {
		return nil, nil
	}
	c := proto.Clone(o).(*meshfedv1.Object)
	md := objects.Meta(c)
	md.ResourceVersion, md.CreateRevision, md.Generation, md.CreateTime, md.UpdateTime = 0, 0, 0, nil, nil
	m := objects.Unwrap(c).ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("status"); fd != nil {
		m.Clear(fd)
	}
	y, err := objects.Encode(c, formatYAML)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(y), "\n"), "\n"), nil
}

// unifiedDiff renders the line diff of a and b with ctx lines of context
// around each change, as diff -u does; "" when they are equal.
func unifiedDiff(a, b []string, nameA, nameB string, ctx int) string {
	ops := lineDiff(a, b)
	var out strings.Builder
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk: from ctx lines before this change to ctx lines after
		// the last change closer than 2*ctx lines to the one before it.
		start := max(i-ctx, 0)
		end := i
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j
			} else if j-end > 2*ctx {
				break
			}
		}
		end = min(end+ctx+1, len(ops))
		if out.Len() == 0 {
			fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
		}
		aStart, bStart, aLen, bLen := ops[start].a, ops[start].b, 0, 0
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				aLen++
			}
			if op.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, op := range ops[start:end] {
			out.WriteByte(op.kind)
			out.WriteString(op.line)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

// hunkRange is diff -u's "start,len" (start counting from 1; 0 when empty).
func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// diffOp is one line of a diff: ' ' kept, '-' only in a, '+' only in b;
// a and b are the line's (or the next line's) index in each side.
type diffOp struct {
	kind byte
	line string
	a, b int
}

// lineDiff is a shortest edit script of a into b by longest common
// subsequence (objects are small: quadratic is fine).
func lineDiff(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i], i, j})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			// Deletions first, as diff -u prints them.
			ops = append(ops, diffOp{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j], i, j})
			j++
		}
	}
	return ops
}
