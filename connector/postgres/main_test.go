package postgres

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/meshfed/meshfed/internal/pgtest"
)

// One server serves the package's tests, each in its own database; it is
// started by the first test that needs it.
var (
	serverOnce sync.Once
	server     *pgtest.Server
	serverErr  error
	serverDir  string
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runSinkHelper())
	}
	code := m.Run()
	if server != nil {
		_ = server.Stop()
	}
	if serverDir != "" {
		_ = os.RemoveAll(serverDir)
	}
	os.Exit(code)
}

// newDatabase returns the connection string of a fresh database.
func newDatabase(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		if !pgtest.Installed() {
			serverErr = pgtest.ErrNotInstalled
			return
		}
		serverDir, serverErr = os.MkdirTemp("", "meshfed-pg-")
		if serverErr == nil {
			server, serverErr = pgtest.Launch(serverDir)
		}
	})
	if errors.Is(serverErr, pgtest.ErrNotInstalled) {
		pgtest.Skip(t)
	}
	if serverErr != nil {
		t.Fatalf("start postgresql: %v", serverErr)
	}
	return server.NewDatabase(t)
}
