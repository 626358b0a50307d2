// Command meshfed is the single binary of the meshfed federation: control-plane
// server, agent, embedded broker and CLI. Each subcommand lives in its own file
// and registers itself with the root command in an init function.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and maps errors to exit codes: 0 ok, 1 error, 2 usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	global = globalFlags{}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "Error:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
