package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/broker"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// TestRefusalWatch feeds the watch records as pulsar-client-go's slog
// wrapper writes them: refusals of background reconnects and handshakes
// set a slot, the next success clears it.
func TestRefusalWatch(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	r := newRefusals(quiet(), func() time.Time { return now })
	w := &refusalWatch{next: quiet().Handler(), min: slog.LevelWarn,
		onRefer: func(source, kind string, err error) {
			r.set("a", source, describeRefusal("token from file:///t", kind, "a", err))
		},
		onOK: func(source string) { r.clear("a", source) }}
	log := plog.NewLoggerWithSlog(slog.New(w))
	consumer := log.SubLogger(plog.Fields{"topic": "persistent://acme/etl/in", "subscription": "s"})
	consumer.WithError(errors.New("server error: AuthorizationError: role agent-a may not consume")).Error("Failed to create consumer at reconnect")
	want := "token from file:///t: authorization refused by cluster a: persistent://acme/etl/in: server error: AuthorizationError: role agent-a may not consume"
	if got := r.reason("a"); got != want {
		t.Fatalf("after a refused reconnect: %q, want %q", got, want)
	}
	// An unrelated failure is no refusal.
	log.SubLogger(plog.Fields{"topic": "persistent://acme/etl/other"}).WithError(errors.New("connection error")).Warn("Failed to reconnect to broker, will retry later.")
	if got := r.reason("a"); got != want {
		t.Fatalf("after an unrelated failure: %q", got)
	}
	consumer.Info("Reconnected consumer to broker")
	if got := r.reason("a"); got != "" {
		t.Fatalf("after the reconnect: %q, want none", got)
	}
	conn := log.SubLogger(plog.Fields{"remote_addr": "pulsar+ssl://b:6651"})
	conn.Warnf("Failed to establish connection with broker: '%s'", "token expired")
	if got := r.reason("a"); !strings.Contains(got, "authentication refused by cluster a: 'token expired'") {
		t.Fatalf("after a refused handshake: %q", got)
	}
	conn.Info("Connection is ready")
	if got := r.reason("a"); got != "" {
		t.Fatalf("after a handshake: %q, want none", got)
	}
	// A slot nothing refreshes expires (its consumer was closed).
	consumer.WithError(errors.New("server error: AuthorizationError: x")).Error("Failed to create consumer at reconnect")
	now = now.Add(clientRefusalTTL + time.Second)
	if got := r.reason("a"); got != "" {
		t.Fatalf("after the TTL: %q, want none", got)
	}
}

func TestRefusalsReasonOldestFirst(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	r := newRefusals(quiet(), func() time.Time { return now })
	r.set("a", sourceProbe, "first")
	now = now.Add(time.Second)
	r.set("a", sourceInstance+"x", "second")
	r.set("b", sourceInstance+"x", "on b")
	if got := r.reason("a"); got != "first (and 1 more refusals)" {
		t.Fatalf("reason = %q", got)
	}
	r.clearEverywhere(sourceInstance + "x")
	r.clear("a", sourceProbe)
	if r.reason("a") != "" || r.reason("b") != "" {
		t.Fatalf("after clearing: %q %q", r.reason("a"), r.reason("b"))
	}
}

// TestProbeNamesUnusableCredential: against a real broker, a token file
// that is missing on the agent's host is a refusal naming the file (the
// cluster goes Degraded), not an unreachable broker; once the file is
// there the refusal clears.
func TestProbeNamesUnusableCredential(t *testing.T) {
	b := broker.TestBroker(t, func(c *broker.Config) { c.ClusterName, c.Logger = "a", quiet() })
	tokenFile := filepath.Join(t.TempDir(), "a.token")
	a := probeAgent(t, b.ServiceURL(), b.AdminURL())
	a.clusters["a"].Spec.Auth = &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://" + tokenFile}
	if !a.probe.check(context.Background()) {
		t.Fatal("a refused credential made the broker unreachable")
	}
	want := "token from file://" + tokenFile + ": open: no such file or directory (credential unusable on the agent's host, for cluster a)"
	if got := a.refusals.reason("a"); got != want {
		t.Fatalf("refusal = %q, want %q", got, want)
	}
	// The broker (no authentication) accepts any token.
	if err := os.WriteFile(tokenFile, []byte("some-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !a.probe.check(context.Background()) {
		t.Fatal("probe failed with the token in place")
	}
	if got := a.refusals.reason("a"); got != "" {
		t.Fatalf("refusal after the fix = %q, want none", got)
	}
}
