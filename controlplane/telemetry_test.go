package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/security"
	mftelemetry "github.com/meshfed/meshfed/telemetry"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// TestServerMetrics scrapes a server's /metrics: Go runtime and process
// collectors, the Raft gauges, the federation gauges of an applied cluster,
// and target_info carrying OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func TestServerMetrics(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "control-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
	srv := TestServer(t, nil)
	WaitForLeader(t, srv)
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustApply(t, meshfedv1.NewObjectServiceClient(conn), clusterObj("eu"))

	want := []string{
		"go_goroutines ",
		"process_open_fds ",
		`target_info{deployment_environment="test",service_instance_id="` + srv.NodeID() + `",service_name="control-eu"`,
		"meshfed_raft_has_leader{",
		"meshfed_raft_term{",
		"meshfed_raft_last_contact_seconds{",
		"meshfed_raft_last_log_index{",
		"meshfed_raft_voters{",
		`meshfed_raft_state{otel_scope_name="github.com/meshfed/meshfed/controlplane",otel_scope_schema_url="",otel_scope_version="",state="Leader"} 1`,
		"meshfed_raft_apply_duration_seconds_bucket{",
		`meshfed_cluster_health{cluster="eu",health="Down"`,
		`meshfed_cluster_ready_agents{cluster="eu"`,
	}
	WaitFor(t, 10*time.Second, func() error {
		code, body := probe(t, srv, "/metrics")
		if code != http.StatusOK {
			return fmt.Errorf("/metrics: %d", code)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				return fmt.Errorf("/metrics lacks %s", w)
			}
		}
		if !strings.Contains(body, "meshfed_raft_has_leader{otel_scope_name=\"github.com/meshfed/meshfed/controlplane\",otel_scope_schema_url=\"\",otel_scope_version=\"\"} 1") {
			return fmt.Errorf("meshfed_raft_has_leader is not 1")
		}
		return nil
	})
}

func TestParseLastContact(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"0", 0, true}, {"1.5s", 1500 * time.Millisecond, true}, {"12ms", 12 * time.Millisecond, true}, {"never", 0, false}, {"", 0, false}} {
		got, ok := parseLastContact(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseLastContact(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRefusalLogCarriesTraceID: the audit line of a refused request is
// written inside the request's span, so it carries trace_id and span_id.
func TestRefusalLogCarriesTraceID(t *testing.T) {
	prev := otel.GetTracerProvider()
	tp := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	logs := &syncBuffer{}
	pki := NewTestPKI(t)
	srv := TestServer(t, func(c *Config) {
		pki.SecureConfig(c)
		c.Logger = slog.New(mftelemetry.TraceHandler(slog.NewJSONHandler(logs, nil)))
	})
	WaitForLeader(t, srv)
	conn := pki.Dial(srv.GRPCAddr(), pki.Files(security.RoleClient, "cli", ""), "")
	_, err := meshfedv1.NewObjectServiceClient(conn).Get(context.Background(), &meshfedv1.GetRequest{Kind: "Cluster", Name: "eu"})
	wantCode(t, err, codes.Unauthenticated, "--token")
	WaitFor(t, 5*time.Second, func() error {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "audit" || rec["result"] == "ok" {
				continue
			}
			id, _ := rec["trace_id"].(string)
			span, _ := rec["span_id"].(string)
			if len(id) != 32 || len(span) != 16 {
				return fmt.Errorf("refusal audit line without trace ids: %s", line)
			}
			return nil
		}
		return fmt.Errorf("no refusal audit line yet")
	})
}
