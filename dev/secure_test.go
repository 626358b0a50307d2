package dev

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/internal/testkit"
)

// TestSecureDev: with Secure, the brokers serve TLS only and require
// tokens, the agents attach with their own tokens (clusters Healthy), the
// example mesh runs a → b, and a client without a token is refused.
func TestSecureDev(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	f := startDev(ctx, t, dir, 2, func(c *Config) { c.Secure = true })
	defer f.Stop()
	info, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Secure == nil || info.Secure.AgentTokens["b"] == "" || !strings.HasPrefix(info.Clusters[0].ServiceURL, "pulsar+ssl://localhost:") {
		t.Fatalf("dev.json %+v", info)
	}
	for _, p := range []string{info.Secure.CA, info.Secure.AdminToken, info.Secure.AgentTokens["a"]} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	cc, err := client.New([]string{f.Info.Server})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, name := range []string{"a", "b"} {
		testkit.Eventually(t, 30*time.Second, "cluster "+name+" Healthy", func() (bool, string) {
			h := clusterHealth(ctx, cc, name)
			return h == "Healthy", h
		})
	}
	creds, err := info.Secure.AdminCredentials()
	if err != nil {
		t.Fatal(err)
	}
	client := func(url string) pulsar.Client {
		opts, err := creds.ClientOptions(url)
		if err != nil {
			t.Fatal(err)
		}
		opts.OperationTimeout, opts.Logger = 10*time.Second, plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))
		c, err := pulsar.NewClient(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	a, b := client(info.Clusters[0].ServiceURL), client(info.Clusters[1].ServiceURL)
	p, err := a.CreateProducer(pulsar.ProducerOptions{Topic: SentencesTopic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("secure dev works")}); err != nil {
		t.Fatal(err)
	}
	r, err := b.CreateReader(pulsar.ReaderOptions{Topic: WordsTopic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if m, err := r.Next(rctx); err != nil || string(m.Payload()) != "secure" {
		t.Fatalf("first word in b: %v %v", m, err)
	}
	// Without a token the broker refuses the handshake.
	anon, err := pulsar.NewClient(pulsar.ClientOptions{URL: info.Clusters[0].ServiceURL, TLSTrustCertsFilePath: info.Secure.CA,
		OperationTimeout: 2 * time.Second, Logger: plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.TopicPartitions(SentencesTopic); err == nil {
		t.Fatal("a client without a token was served")
	}
}
