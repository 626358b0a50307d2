package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/meshfed/meshfed/broker"
	"github.com/meshfed/meshfed/broker/auth"
	"github.com/meshfed/meshfed/security"
)

// secBenchResult is one payload size's publish throughput over plaintext
// without authentication and over TLS with token authentication and
// authorization.
type secBenchResult struct {
	plainRate, plainP50, plainP99    float64
	secureRate, secureP50, secureP99 float64
}

// benchSecurity measures, in one run, the publish throughput of a
// plaintext broker without authentication and of a broker whose clients
// use pulsar+ssl:// with a token (HS256) under authorization; each in its
// own in-process broker with fsync off, so that the difference is TLS and
// authentication rather than the disk.
func benchSecurity(ctx context.Context, dir string, size, n int) (secBenchResult, error) {
	var r secBenchResult
	if err := security.CreateCA(dir, 24*time.Hour); err != nil {
		return r, err
	}
	cert := filepath.Join(dir, "broker")
	if err := security.IssueCert(dir, cert, security.CertRequest{Role: security.RoleServer, Name: "broker", Validity: 24 * time.Hour}); err != nil {
		return r, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return r, err
	}
	token, err := auth.NewTokenHS256(secret, "bench", time.Time{})
	if err != nil {
		return r, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	plain := broker.Config{DataDir: filepath.Join(dir, "plain"), ListenAddr: "127.0.0.1:0", Fsync: broker.FsyncOff, Logger: logger}
	secure := broker.Config{DataDir: filepath.Join(dir, "secure"), ListenAddr: "127.0.0.1:0", TLSListenAddr: "127.0.0.1:0",
		DisablePlaintext: true, Fsync: broker.FsyncOff, Logger: logger,
		TLS:  broker.TLSConfig{CertFile: cert + ".pem", KeyFile: cert + "-key.pem", TrustCertsFile: filepath.Join(dir, security.CACertFile)},
		Auth: broker.AuthConfig{Enabled: true, Providers: auth.Config{Providers: []string{auth.MethodToken}, TokenSecretKey: "data:;base64," + base64.StdEncoding.EncodeToString(secret)}},
		// Authorization on, with the role granted rather than a superuser,
		// so the permission check is in the measured path.
		Authorization: broker.AuthorizationConfig{Enabled: true}}
	if r.plainRate, r.plainP50, r.plainP99, err = benchPublish(ctx, plain, pulsar.ClientOptions{}, "", size, n); err != nil {
		return r, fmt.Errorf("plaintext: %w", err)
	}
	opts := pulsar.ClientOptions{TLSTrustCertsFilePath: filepath.Join(dir, security.CACertFile), TLSValidateHostname: true,
		Authentication: pulsar.NewAuthenticationToken(token)}
	if r.secureRate, r.secureP50, r.secureP99, err = benchPublish(ctx, secure, opts, "bench", size, n); err != nil {
		return r, fmt.Errorf("tls+token: %w", err)
	}
	return r, nil
}

// benchPublish starts a broker with cfg, grants role produce on
// public/default when set, and publishes n messages of size bytes with
// batching, returning messages per second and send-to-receipt p50/p99 ms.
func benchPublish(ctx context.Context, cfg broker.Config, opts pulsar.ClientOptions, role string, size, n int) (rate, p50, p99 float64, err error) {
	b, err := broker.New(cfg)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := b.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer b.Close()
	if role != "" {
		if err := b.GrantPermission("public/default", role, "produce"); err != nil {
			return 0, 0, 0, err
		}
	}
	opts.URL = b.ServiceURL()
	if cfg.TLSListenAddr != "" {
		opts.URL = b.ServiceURLTLS()
	}
	opts.Logger = quietPulsarLogger()
	client, err := pulsar.NewClient(opts)
	if err != nil {
		return 0, 0, 0, err
	}
	defer client.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: fmt.Sprintf("bench-sec-%d", size),
		BatchingMaxPublishDelay: time.Millisecond, BatchingMaxMessages: 1000, MaxPendingMessages: 2000})
	if err != nil {
		return 0, 0, 0, err
	}
	defer prod.Close()
	lat, el, sendErr := sendAll(ctx, prod, n, size)
	if sendErr != nil {
		return 0, 0, 0, sendErr
	}
	return float64(n) / el, percentile(lat, 0.50), percentile(lat, 0.99), nil
}
