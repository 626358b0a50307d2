package broker

// A test broker for this package's tests and other packages' tests. The
// helper takes a testkit.TB, which *testing.T and *testing.B satisfy, so
// the package does not import testing and the binary does not link it.

import (
	"io"
	"log/slog"

	"github.com/meshfed/meshfed/internal/testkit"
)

// TestBroker starts a broker on 127.0.0.1 port 0 (binary protocol and
// admin HTTP) with its data in a temporary directory and a silent logger,
// letting mod adjust the configuration, and closes it when the test ends.
func TestBroker(t testkit.TB, mod func(*Config)) *Broker {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("new test broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start test broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
