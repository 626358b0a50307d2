package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestResourceFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "payments-mesh")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=streams")
	res, err := Resource(context.Background(), "meshfed-server", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.Attributes() {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{"service.name": "payments-mesh", "service.instance.id": "node-1",
		"deployment.environment": "prod", "team": "streams"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
}

func TestResourceDefaults(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	res, err := Resource(context.Background(), "meshfed-agent", "agent-a")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Set().Value("service.name"); v.Emit() != "meshfed-agent" {
		t.Errorf("service.name = %q, want meshfed-agent", v.Emit())
	}
}

func TestTraceProtocol(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{env: nil, want: ProtocolGRPC},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: ProtocolGRPC},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, want: ProtocolHTTPProtobuf},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, want: ProtocolHTTPProtobuf},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}, wantErr: true},
	} {
		got, err := TraceProtocol(func(k string) string { return tc.env[k] })
		if tc.wantErr {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%v: err %v, want ErrProtocol", tc.env, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	_, err := TraceProtocol(func(k string) string { return map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}[k] })
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("error %v does not name the variable", err)
	}
}

// received collects the OTLP export requests a test collector got.
type received struct {
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func (r *received) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

// serviceNames returns the service.name of every resource received and
// whether the resources carried want as an attribute.
func (r *received) check(wantAttr attribute.KeyValue) (names []string, found bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					names = append(names, kv.GetValue().GetStringValue())
				}
				if kv.GetKey() == string(wantAttr.Key) && kv.GetValue().GetStringValue() == wantAttr.Value.AsString() {
					found = true
				}
			}
		}
	}
	return names, found
}

type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	got *received
}

func (c grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.got.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestSetupTracingExportsOverProtocol sends a span through SetupTracing to
// a collector speaking the protocol OTEL_EXPORTER_OTLP_PROTOCOL names, and
// checks the resource it carries came from OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES.
func TestSetupTracingExportsOverProtocol(t *testing.T) {
	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) {
			got := &received{}
			var endpoint string
			if protocol == ProtocolGRPC {
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				srv := grpc.NewServer()
				coltracepb.RegisterTraceServiceServer(srv, grpcCollector{got: got})
				go srv.Serve(lis)
				defer srv.Stop()
				endpoint = "http://" + lis.Addr().String()
			} else {
				hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					req := &coltracepb.ExportTraceServiceRequest{}
					if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
						http.Error(w, "bad request", http.StatusBadRequest)
						return
					}
					got.add(req)
					w.Header().Set("Content-Type", "application/x-protobuf")
					b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
					w.Write(b)
				}))
				defer hs.Close()
				endpoint = hs.URL
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_SERVICE_NAME", "orders-"+protocol)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
			stop, err := SetupTracing(context.Background(), "meshfed-server", "n1")
			if err != nil {
				t.Fatal(err)
			}
			_, span := otel.Tracer("test").Start(context.Background(), "apply")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := stop(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			names, found := got.check(attribute.String("deployment.environment", "staging"))
			if len(names) == 0 || names[0] != "orders-"+protocol || !found {
				t.Fatalf("collector got service names %q, deployment.environment=staging %v; want orders-%s and true", names, found, protocol)
			}
		})
	}
}

func TestNewLoggerTraceIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	sc := span.SpanContext()

	var buf bytes.Buffer
	logger, err := NewLogger(&buf, LogJSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	logger.With("component", "server").InfoContext(ctx, "applied", "objects", 2)
	logger.Info("outside a request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["component"] != "server" {
		t.Errorf("line in a traced request: %v; want trace_id %s span_id %s", in, sc.TraceID(), sc.SpanID())
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("line outside a request carries a trace id: %v", out)
	}

	buf.Reset()
	logger, err = NewLogger(&buf, LogText, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	logger.InfoContext(ctx, "applied")
	if want := "trace_id=" + sc.TraceID().String() + " span_id=" + sc.SpanID().String(); !strings.Contains(buf.String(), want) {
		t.Errorf("text line %q lacks %q", buf.String(), want)
	}
	if _, err := NewLogger(&buf, "yaml", slog.LevelInfo); !errors.Is(err, ErrLogFormat) {
		t.Errorf("format yaml: err %v, want ErrLogFormat", err)
	}
}

func TestNewMetricsServesRuntimeAndResource(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "region=eu")
	res, err := Resource(context.Background(), "meshfed-server", "n1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(res)
	if err != nil {
		t.Fatal(err)
	}
	defer m.MeterProvider.Shutdown(context.Background())
	c, _ := m.MeterProvider.Meter("test").Int64Counter("meshfed.test.events")
	c.Add(context.Background(), 3)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetName() == "target_info" {
			var labels []string
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if !strings.Contains(strings.Join(labels, ","), "region=eu") {
				t.Errorf("target_info labels %v lack region=eu", labels)
			}
		}
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "target_info", "meshfed_test_events_total"} {
		if !names[want] {
			t.Errorf("registry lacks %s", want)
		}
	}
}

// TestSetupTracingWithoutExporterRecordsNothing: with no OTLP endpoint
// spans are not recorded (nothing would export them) but still carry ids,
// which log lines and propagation use.
func TestSetupTracingWithoutExporterRecordsNothing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	stop, err := SetupTracing(context.Background(), "meshfed-server", "n1")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	_, span := otel.Tracer("test").Start(context.Background(), "apply")
	defer span.End()
	if span.IsRecording() {
		t.Error("span recorded with no exporter")
	}
	if !span.SpanContext().IsValid() {
		t.Error("span without valid ids: log lines would lose trace_id and span_id")
	}
}
