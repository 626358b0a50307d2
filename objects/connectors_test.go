package objects

import (
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

const connectorMesh = `apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: iot, tenant: public, namespace: default}
spec:
  functions:
    - name: agg
      runtime: {builtin: identity}
      input: {cluster: a, topics: [readings]}
      output: {cluster: a, topic: totals}
  sources:
    - name: devices
      type: mqtt
      config:
        broker: tcp://localhost:1883
        topics: [sensors/#]
        password: {secret: {env: MQTT_PASSWORD}}
      output: {cluster: a, topic: readings}
      failover: {clusters: [b]}
  sinks:
    - name: out
      type: http
      processingGuarantee: effectively_once
      config: {url: "http://localhost:9000/in"}
      input: {cluster: b, topics: [totals]}
`

func TestConnectorsDecodeAndExpand(t *testing.T) {
	objs, err := Decode("mesh.yaml", []byte(connectorMesh))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(objs[0]); err != nil {
		t.Fatal(err)
	}
	spec := objs[0].GetFunctionMesh().GetSpec()
	fns := MeshFunctions(spec)
	if len(fns) != 3 {
		t.Fatalf("MeshFunctions: %d entries, want 3", len(fns))
	}
	src, sink := fns[1], fns[2]
	if c := ConnectorOf(src); c.GetKind() != ConnectorSource || c.GetType() != "mqtt" || c.GetConfig().AsMap()["broker"] != "tcp://localhost:1883" {
		t.Errorf("source entry runtime = %v", c)
	}
	if src.GetPlacement().GetCluster() != "a" || src.GetInput() != nil || src.GetOutput().GetTopic() != "readings" {
		t.Errorf("source entry = %v", src)
	}
	if ConnectorOf(sink).GetKind() != ConnectorSink || sink.GetInput().GetCluster() != "b" || sink.GetOutput() != nil || sink.GetProcessingGuarantee() != "effectively_once" {
		t.Errorf("sink entry = %v", sink)
	}
	for i, want := range []string{"spec.functions[0]", "spec.sources[0]", "spec.sinks[0]"} {
		if got := MeshFunctionPath(spec, i); got != want {
			t.Errorf("MeshFunctionPath(%d) = %q, want %q", i, got, want)
		}
	}
	if ConnectorOf(fns[0]) != nil {
		t.Error("a function has a connector runtime")
	}
}

func TestConnectorsValidate(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"secret in clear", "password: {secret: {env: MQTT_PASSWORD}}", "password: hunter2",
			[]string{"spec.sources[0].config.password: a secret is never stored in clear"}},
		{"bad secret ref", "password: {secret: {env: MQTT_PASSWORD}}", "password: {secret: {vault: x}}",
			[]string{`spec.sources[0].config.password: secret source "vault" is not env or file`}},
		{"no type", "type: mqtt", "type: ''", []string{"spec.sources[0].type: required"}},
		{"source without output", "      output: {cluster: a, topic: readings}\n", "",
			[]string{"spec.sources[0].output: required"}},
		{"sink with output", "      input: {cluster: b, topics: [totals]}\n", "      input: {cluster: b, topics: [totals]}\n      output: {cluster: b, topic: x}\n",
			[]string{"spec.sinks[0].output: a sink writes to an outside system"}},
		{"sink without input", "      input: {cluster: b, topics: [totals]}\n", "", []string{"spec.sinks[0].input: required"}},
		{"duplicate name", "    - name: out", "    - name: agg", []string{`spec.sinks[0].name: "agg" is already defined at spec.functions[0]`}},
		{"fallback is home", "failover: {clusters: [b]}", "failover: {clusters: [a]}",
			[]string{`spec.sources[0].failover.clusters[0]: "a" is the cluster`}},
		{"bad guarantee", "effectively_once", "twice", []string{`spec.sinks[0].processingGuarantee: "twice" is not one of`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(connectorMesh, tt.old, tt.new, 1)
			objs, err := Decode("mesh.yaml", []byte(doc))
			if err == nil {
				err = Validate(objs[0])
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConnectorRuntimeRefusedInFunctions(t *testing.T) {
	m := &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{Name: "f",
		Runtime: &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Connector{Connector: &meshfedv1.ConnectorRuntime{Kind: "sink", Type: "http"}}},
		Input:   &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"t"}}}}}
	var e errs
	validateMesh(&e, m)
	if err := e.err(); err == nil || !strings.Contains(err.Error(), "spec.functions[0].runtime.connector: connectors are declared under spec.sources") {
		t.Fatalf("got %v", err)
	}
}
