package controlplane

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	_ "github.com/meshfed/meshfed/connector/all" // the connector types the configs name
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// pulsaradmin's stop, start and restart of sources and sinks, of all
// instances or one, change the connector's stopped instances and restart
// counters, and an update keeps them.
func TestConnectorsAPILifecycle(t *testing.T) {
	_, objs, admin := plainAdminServer(t)
	connector := func(name string) *meshfedv1.ConnectorSpec {
		t.Helper()
		resp, err := objs.Get(context.Background(), &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: "acme", Namespace: "etl", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		spec := resp.GetObject().GetFunctionMesh().GetSpec()
		return append(spec.GetSources(), spec.GetSinks()...)[0]
	}
	check := func(step, name string, stopped []int32, restarts map[int32]uint64) {
		t.Helper()
		c := connector(name)
		if !slices.Equal(c.GetStoppedInstances(), stopped) || !maps.Equal(c.GetInstanceRestarts(), restarts) {
			t.Fatalf("after %s: stoppedInstances %v instanceRestarts %v, want %v %v", step, c.GetStoppedInstances(), c.GetInstanceRestarts(), stopped, restarts)
		}
	}

	srcs := admin.Sources()
	src := &utils.SourceConfig{Tenant: "acme", Namespace: "etl", Name: "devices", Archive: "builtin://mqtt", TopicName: "persistent://acme/etl/readings", Parallelism: 2,
		Configs: map[string]any{"broker": "tcp://mqtt.example:1883", "topics": []any{"sensors/#"}}, CustomRuntimeOptions: `{"cluster":"a"}`}
	if err := srcs.CreateSource(src, ""); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srcs.StopSourceWithID("acme", "etl", "devices", 1))
	check("stop 1", "devices", []int32{1}, nil)
	must(srcs.StopSource("acme", "etl", "devices"))
	check("stop", "devices", []int32{0, 1}, nil)
	must(srcs.StartSourceWithID("acme", "etl", "devices", 0))
	check("start 0", "devices", []int32{1}, nil)
	must(srcs.RestartSource("acme", "etl", "devices"))
	must(srcs.RestartSourceWithID("acme", "etl", "devices", 1))
	check("restarts", "devices", []int32{1}, map[int32]uint64{0: 1, 1: 2})
	src.Parallelism = 1 // instance 1 goes, and what was kept of it
	must(srcs.UpdateSource(src, "", nil))
	check("update to one instance", "devices", nil, map[int32]uint64{0: 1})
	must(srcs.StartSource("acme", "etl", "devices"))
	check("start", "devices", nil, map[int32]uint64{0: 1})

	var re rest.Error
	if err := srcs.StopSourceWithID("acme", "etl", "devices", 3); !errors.As(err, &re) || re.Code != http.StatusNotFound {
		t.Errorf("stop of instance 3 of 1: %v, want 404", err)
	}
	if err := srcs.StopSource("acme", "etl", "nothing"); !errors.As(err, &re) || re.Code != http.StatusNotFound {
		t.Errorf("stop of a source that doesn't exist: %v, want 404", err)
	}

	sinks := admin.Sinks()
	sink := &utils.SinkConfig{Tenant: "acme", Namespace: "etl", Name: "rows", Archive: "builtin://http", Inputs: []string{"persistent://acme/etl/readings"}, Parallelism: 2,
		Configs: map[string]any{"url": "http://ingest.example/rows"}, CustomRuntimeOptions: `{"cluster":"a"}`}
	must(sinks.CreateSink(sink, ""))
	must(sinks.StopSinkWithID("acme", "etl", "rows", 0))
	must(sinks.RestartSinkWithID("acme", "etl", "rows", 1))
	check("sink stop 0, restart 1", "rows", []int32{0}, map[int32]uint64{1: 1})
	must(sinks.StartSink("acme", "etl", "rows"))
	must(sinks.StopSinkWithID("acme", "etl", "rows", 1))
	must(sinks.RestartSink("acme", "etl", "rows"))
	check("sink start, stop 1, restart", "rows", []int32{1}, map[int32]uint64{0: 1, 1: 2})
}
