package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/streams"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func init() { register(newOperatorCmd) }

func newOperatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Manage the control plane's Raft group and snapshots",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("operator needs a subcommand (raft, snapshot)")}
		},
	}
	r := &cobra.Command{Use: "raft", Short: "Inspect and change the Raft configuration", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("raft needs a subcommand (list-peers, remove-peer)")}
		}}
	r.AddCommand(newListPeersCmd())
	r.AddCommand(&cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a server from the Raft group (for a server that is gone for good)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
					_, err := client.Operator(conn).RemovePeer(ctx, &meshfedv1.RemovePeerRequest{Id: args[0]})
					return err
				})
				if err != nil {
					return rpcError("remove peer "+args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed peer %s\n", args[0])
				return nil
			})
		},
	})
	s := &cobra.Command{Use: "snapshot", Short: "Save or restore a snapshot of the whole state", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("snapshot needs a subcommand (save, restore)")}
		}}
	s.AddCommand(&cobra.Command{
		Use:   "save FILE",
		Short: "Write a snapshot of the state, taken on the leader, to FILE",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				n, err := saveSnapshot(ctx, c, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "saved snapshot to %s (%d bytes)\n", args[0], n)
				return nil
			})
		},
	})
	s.AddCommand(&cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the whole state with the snapshot in FILE (disaster recovery)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read snapshot: %w", err)
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var resp *meshfedv1.RestoreSnapshotResponse
				err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
					up, err := client.Operator(conn).RestoreSnapshot(ctx)
					if err != nil {
						return err
					}
					const chunk = 256 << 10
					for off := 0; off < len(data); off += chunk {
						if err := up.Send(&meshfedv1.RestoreSnapshotRequest{Chunk: data[off:min(off+chunk, len(data))]}); err != nil {
							return err
						}
					}
					resp, err = up.CloseAndRecv()
					return err
				})
				if err != nil {
					return rpcError("restore snapshot", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "restored snapshot %s (state at revision %d)\n", args[0], resp.GetRevision())
				return nil
			})
		},
	})
	cmd.AddCommand(r, s)
	return cmd
}

func withClient(cmd *cobra.Command, fn func(context.Context, *client.Client) error) error {
	c, err := newClient()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := requestContext(cmd)
	defer cancel()
	return fn(ctx, c)
}

// saveSnapshot streams a snapshot into a temporary file next to path and
// renames it into place only when complete.
func saveSnapshot(ctx context.Context, c *client.Client, path string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*")
	if err != nil {
		return 0, fmt.Errorf("create snapshot file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var n int64
	err = c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tmp.Truncate(0); err != nil {
			return err
		}
		n = 0
		stream, err := client.Operator(conn).SaveSnapshot(ctx, &meshfedv1.SaveSnapshotRequest{})
		if err != nil {
			return err
		}
		return streams.Each(stream, func(msg *meshfedv1.SaveSnapshotResponse) error {
			m, err := tmp.Write(msg.GetChunk())
			n += int64(m)
			return err
		})
	})
	if err != nil {
		return 0, rpcError("save snapshot", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	return n, nil
}

func newListPeersCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list-peers",
		Short: "List the servers of the Raft group, with the leader marked",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var resp *meshfedv1.ListPeersResponse
				err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
					resp, err = client.Operator(conn).ListPeers(ctx, &meshfedv1.ListPeersRequest{})
					return err
				})
				if err != nil {
					return rpcError("list peers", err)
				}
				return printPeers(cmd.OutOrStdout(), output.format, resp.GetPeers())
			})
		},
	}
	output.register(cmd, listingFormats...)
	return cmd
}

// printPeers prints the Raft servers in an output format.
func printPeers(w io.Writer, format string, peers []*meshfedv1.Peer) error {
	switch format {
	case formatJSON, formatYAML:
		return printMessages(w, format, peers)
	case formatName:
		names := make([]string, len(peers))
		for i, p := range peers {
			names[i] = p.GetId()
		}
		return printNames(w, "peer", names)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tGRPC ADDRESS\tSTATE\tVOTER")
	for _, p := range peers {
		state := "follower"
		if p.GetLeader() {
			state = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", p.GetId(), p.GetRaftAddress(), or(p.GetGrpcAddress(), "-"), state, p.GetVoter())
	}
	return tw.Flush()
}
