package drill

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// The meshfed binary that dev federations run as brokers and agents is
// built once per test run, on first use, into binDir; MESHFED_TEST_BIN
// names one built elsewhere instead.
var (
	binDir  string
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshfed-drill-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create bin dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// meshfedBinary returns the path of the meshfed binary, building it the
// first time.
func meshfedBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if bin := os.Getenv("MESHFED_TEST_BIN"); bin != "" {
			binPath, binErr = filepath.Abs(bin)
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out := filepath.Join(binDir, "meshfed")
		build := exec.Command(goTool, "build", "-o", out, "github.com/meshfed/meshfed/cmd/meshfed")
		if msg, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build meshfed: %v\n%s", err, msg)
			return
		}
		binPath = out
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}
