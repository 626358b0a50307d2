package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/meshfed/meshfed/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
)

// serveAgentHTTP serves the agent's metrics on /metrics (the function
// metrics, named and labelled as Pulsar Functions' are, the agent's
// OpenTelemetry instruments, Go runtime and process metrics), /healthz
// (the process is up) and /readyz (200 while ready returns no error, 503
// with the reason otherwise).
func serveAgentHTTP(ctx context.Context, addr, name string, functions prometheus.Collector, ready func() (string, error), logger *slog.Logger) (func(), error) {
	res, err := telemetry.Resource(ctx, "meshfed-agent", name)
	if err != nil {
		return nil, err
	}
	m, err := telemetry.NewMetrics(res)
	if err != nil {
		return nil, err
	}
	if err := m.Registry.Register(functions); err != nil {
		return nil, fmt.Errorf("function metrics: %w", err)
	}
	otel.SetMeterProvider(m.MeterProvider)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --http-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: agentMux(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}), ready), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && err != http.ErrServerClosed {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	return func() { srv.Close(); _ = m.MeterProvider.Shutdown(context.Background()) }, nil
}

func agentMux(metrics http.Handler, ready func() (string, error)) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		msg, err := ready()
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready: "+msg)
	})
	return mux
}
