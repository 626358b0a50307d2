package controlplane

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
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
