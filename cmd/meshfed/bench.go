package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newBenchCmd) }

// benchSubcommands collects the constructors of `meshfed bench` subcommands
// (bench_apply.go, bench_broker.go, ...): each file adds its own with
// registerBench from an init function, as top-level commands do with register.
var benchSubcommands []func() *cobra.Command

// registerBench adds a `meshfed bench` subcommand constructor.
func registerBench(f func() *cobra.Command) { benchSubcommands = append(benchSubcommands, f) }

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run benchmarks against clusters this command starts on loopback",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown benchmark %q (see meshfed bench --help)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	for _, f := range benchSubcommands {
		cmd.AddCommand(f())
	}
	return cmd
}
