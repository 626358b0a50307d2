// Package devtest builds the meshfed binary that a dev federation runs as
// its brokers and agents, once per test process, for the tests of the
// packages that start one (dev, drill, cmd/meshfed). It is test support:
// no production code imports it, so it is never linked into meshfed.
package devtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The binary is built on first use into dir, which Main removes.
var (
	once sync.Once
	dir  string
	path string
	err  error
)

// Binary returns the meshfed binary: $MESHFED_TEST_BIN when set, else one
// built from this module the first time a test asks for it.
func Binary(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if bin := os.Getenv("MESHFED_TEST_BIN"); bin != "" {
			path, err = filepath.Abs(bin)
			return
		}
		if dir, err = os.MkdirTemp("", "meshfed-test-bin-"); err != nil {
			err = fmt.Errorf("create a directory for the meshfed binary: %w", err)
			return
		}
		goTool, lerr := exec.LookPath("go")
		if lerr != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out := filepath.Join(dir, "meshfed")
		build := exec.Command(goTool, "build", "-o", out, "github.com/meshfed/meshfed/cmd/meshfed")
		if msg, berr := build.CombinedOutput(); berr != nil {
			err = fmt.Errorf("build meshfed: %v\n%s", berr, msg)
			return
		}
		path = out
	})
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// Main runs the package's tests and removes the binary built for them:
//
//	func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}
