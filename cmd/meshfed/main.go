// Command meshfed is the single binary of the meshfed federation: control-plane
// server, agent, embedded broker and CLI. Each subcommand lives in its own file
// and registers itself with the root command in an init function.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the CLI and maps errors to exit codes: 0 ok, 1 error, 2 usage.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
