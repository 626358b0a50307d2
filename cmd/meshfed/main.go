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

// exitCode ends a command with a chosen exit code; with err nil nothing is
// printed (e.g. meshfed diff's 1: differences found).
type exitCode struct {
	code int
	err  error
}

func (e exitCode) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e exitCode) Unwrap() error { return e.err }

// run executes the CLI and maps errors to exit codes: 0 ok, 1 error, 2 usage,
// or the code of an exitCode.
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
	var ec exitCode
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintln(stderr, "Error:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
