package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane"
)

// TestReady: an agent is ready once registered and while its heartbeats
// keep its lease; it stops being ready when the control plane goes away.
func TestReady(t *testing.T) {
	f := newFederationWith(t, func(c *controlplane.Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.AgentLease = 300 * time.Millisecond
		c.AgentTTL = time.Second
	}, "a")
	srv := f.srv
	a, err := New(Config{Name: "agent-a", Cluster: "a", Servers: []string{srv.GRPCAddr()}, DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ready(); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("Ready before Run: %v, want not registered", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	controlplane.WaitFor(t, 10*time.Second, func() error {
		_, err := a.Ready()
		return err
	})
	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	controlplane.WaitFor(t, 10*time.Second, func() error {
		if _, err := a.Ready(); err == nil || !strings.Contains(err.Error(), "no successful heartbeat") {
			return fmt.Errorf("Ready with the control plane gone: %v", err)
		}
		return nil
	})
}
