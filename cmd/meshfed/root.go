package main

import (
	"github.com/spf13/cobra"
)

// subcommands collects the constructors registered by each subcommand's file.
var subcommands []func() *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// usageError marks errors caused by how the command was invoked (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meshfed",
		Short:         "Federation control plane for serverless functions on Apache Pulsar",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}
