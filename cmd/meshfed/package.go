package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/streams"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func init() { register(newPackageCmd) }

func newPackageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "package",
		Short: "Upload function packages (WebAssembly modules, exec bundles)",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("package needs a subcommand (push)")}
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "push FILE",
		Short: "Upload a package and print its content address (sha256:...) for use in a mesh",
		Long: `Upload a package to the control plane. A WebAssembly module is referenced as
runtime: {wasm: {package: DIGEST}}; an exec bundle (a tar or tar.gz archive,
unpacked as the function's working directory) as
runtime: {exec: {package: DIGEST, command: [...]}}. Pushing the same content
twice stores it once.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read package: %w", err)
			}
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				digest, err := pushPackage(ctx, c, filepath.Base(args[0]), data)
				if err != nil {
					return rpcError("push package "+args[0], err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), digest)
				return nil
			})
		},
	})
	return cmd
}

// pushPackage uploads data as a package remembered by name and returns its
// content address.
func pushPackage(ctx context.Context, c *client.Client, name string, data []byte) (string, error) {
	var resp *meshfedv1.PushPackageResponse
	err := c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		up, err := meshfedv1.NewPackageServiceClient(conn).PushPackage(ctx)
		if err != nil {
			return err
		}
		const chunk = 256 << 10
		for off := 0; off < len(data) || off == 0; off += chunk {
			msg := &meshfedv1.PushPackageRequest{Chunk: data[off:min(off+chunk, len(data))]}
			if off == 0 {
				msg.Name = name
			}
			if err := up.Send(msg); err != nil {
				return err
			}
			if len(data) == 0 {
				break
			}
		}
		resp, err = up.CloseAndRecv()
		return err
	})
	return resp.GetDigest(), err
}

// getPackage downloads the package with content address digest.
func getPackage(ctx context.Context, c *client.Client, digest string) ([]byte, error) {
	var data []byte
	err := c.DoRead(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		data = data[:0]
		stream, err := meshfedv1.NewPackageServiceClient(conn).GetPackage(ctx, &meshfedv1.GetPackageRequest{Digest: digest})
		if err != nil {
			return err
		}
		return streams.Each(stream, func(msg *meshfedv1.GetPackageResponse) error {
			data = append(data, msg.GetChunk()...)
			return nil
		})
	})
	return data, err
}
