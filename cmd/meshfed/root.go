package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/security"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// subcommands collects the constructors registered by each subcommand's file.
var subcommands []func() *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// usageError marks errors caused by how the command was invoked (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// globalFlags are the flags every client command shares.
type globalFlags struct {
	server  string
	timeout time.Duration
	tls     security.Files
}

var global globalFlags

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meshfed",
		Short:         "Federation control plane for serverless functions on Apache Pulsar",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for meshfed (see meshfed --help)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := os.Getenv("MESHFED_SERVER")
	if def == "" {
		def = "127.0.0.1:7100"
	}
	root.PersistentFlags().StringVar(&global.server, "server", def,
		"comma-separated gRPC addresses of control-plane servers, tried in order when one is down (env MESHFED_SERVER)")
	root.PersistentFlags().DurationVar(&global.timeout, "timeout", 30*time.Second, "deadline for each request to the control plane")
	root.PersistentFlags().StringVar(&global.tls.Cert, "tls-cert", os.Getenv("MESHFED_TLS_CERT"), "certificate for mutual TLS with the servers (env MESHFED_TLS_CERT)")
	root.PersistentFlags().StringVar(&global.tls.Key, "tls-key", os.Getenv("MESHFED_TLS_KEY"), "key of --tls-cert (env MESHFED_TLS_KEY)")
	root.PersistentFlags().StringVar(&global.tls.CA, "tls-ca", os.Getenv("MESHFED_TLS_CA"), "CA certificate that signed the servers' certificates (env MESHFED_TLS_CA)")
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

// newClient connects to the servers named by --server (with mutual TLS
// when the --tls flags are set).
func newClient() (*client.Client, error) {
	opts, err := dialOptions(global.tls)
	if err != nil {
		return nil, usageError{err}
	}
	return client.New(client.ParseAddrs(global.server), opts...)
}

// dialOptions returns the transport credentials for f (none: plaintext).
func dialOptions(f security.Files) ([]grpc.DialOption, error) {
	if !f.Enabled() {
		return nil, nil
	}
	creds, err := f.ClientCredentials()
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}, nil
}

// requestContext returns a context bounded by --timeout.
func requestContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), global.timeout)
}

// exactArgs and rangeArgs are cobra argument checks whose errors exit with 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageError{fmt.Errorf("%s takes %d to %d arguments, got %d (see --help)", cmd.CommandPath(), lo, hi, len(args))}
		}
		return nil
	}
}
