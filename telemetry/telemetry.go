// Package telemetry sets up process-wide OpenTelemetry for meshfed
// commands: the resource (service name and attributes, with the standard
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES overriding meshfed's
// defaults), tracing (spans go to an OTLP collector when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// over the protocol OTEL_EXPORTER_OTLP_PROTOCOL names), the Prometheus
// registry each component serves on /metrics, and structured logs (text or
// JSON) that carry the trace and span ids of the request they are written in.
package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Resource describes this process: service.name (service, unless
// OTEL_SERVICE_NAME is set), service.instance.id (instance) and the
// attributes OTEL_RESOURCE_ATTRIBUTES lists, which override the first two.
func Resource(ctx context.Context, service, instance string) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceInstanceID(instance)),
		resource.WithFromEnv(),
		resource.WithSchemaURL(semconv.SchemaURL))
	if err != nil {
		return nil, fmt.Errorf("resource from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return res, nil
}

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL this package exports with.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// TraceProtocol returns the OTLP protocol for spans:
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// else grpc (meshfed's default since its first release; the
// specification's default, http/protobuf, must be asked for). http/json,
// which the Go exporters do not implement, and unknown values are errors.
func TraceProtocol(getenv func(string) string) (string, error) {
	name, p := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		name, p = "OTEL_EXPORTER_OTLP_PROTOCOL", getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p {
	case "", ProtocolGRPC:
		return ProtocolGRPC, nil
	case ProtocolHTTPProtobuf:
		return p, nil
	}
	return "", fmt.Errorf("%s=%q: %w", name, p, ErrProtocol)
}

// SetupTracing installs the global tracer provider and propagator for a
// service. The returned function flushes and stops the exporter.
func SetupTracing(ctx context.Context, service, instance string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	res, err := Resource(ctx, service, instance)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		proto, err := TraceProtocol(os.Getenv)
		if err != nil {
			return nil, err
		}
		var exp sdktrace.SpanExporter
		if proto == ProtocolHTTPProtobuf {
			exp, err = otlptracehttp.New(ctx)
		} else {
			exp, err = otlptracegrpc.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter (%s): %w", proto, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		// Nothing exports spans, so none is recorded: requests still get
		// trace and span ids (for log lines and propagation), without
		// the cost of building spans that would be dropped.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
