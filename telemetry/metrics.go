package telemetry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Metrics is one component's metrics: a Prometheus registry (what /metrics
// serves) holding the Go runtime and process collectors, the OpenTelemetry
// instruments of MeterProvider (through the OpenTelemetry Prometheus
// exporter, with the resource as target_info) and any native collector
// registered on it (the Pulsar-compatible function metrics, whose summary
// quantiles OpenTelemetry has no instrument for). It is the only path
// metrics leave a meshfed process by.
type Metrics struct {
	Registry      *prometheus.Registry
	MeterProvider *sdkmetric.MeterProvider
}

// NewMetrics builds a component's registry and meter provider. res may be
// nil (no target_info attributes beyond the SDK's).
func NewMetrics(res *resource.Resource) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(exp)}
	if res != nil {
		opts = append(opts, sdkmetric.WithResource(res))
	}
	return &Metrics{Registry: reg, MeterProvider: sdkmetric.NewMeterProvider(opts...)}, nil
}
