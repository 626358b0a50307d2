package main

import (
	"bytes"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestConnectorRowsSumInstances(t *testing.T) {
	m := objects.Wrap(&meshfedv1.FunctionMesh{Metadata: &meshfedv1.ObjectMeta{Name: "iot", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{
			Sources: []*meshfedv1.ConnectorSpec{{Name: "devices", Type: "mqtt", Output: &meshfedv1.FunctionOutput{Cluster: "a", Topic: "t"}}},
			Sinks:   []*meshfedv1.ConnectorSpec{{Name: "rows", Type: "http", Replicas: 2, Input: &meshfedv1.FunctionInput{Cluster: "b", Topics: []string{"t"}}}},
		},
		Status: &meshfedv1.FunctionMeshStatus{Functions: []*meshfedv1.FunctionStatus{
			{Name: "devices", Instances: []*meshfedv1.InstanceStatus{{State: "Running", Received: 10, Written: 10, Batches: 2}}},
			{Name: "rows", Instances: []*meshfedv1.InstanceStatus{
				{State: "Running", Received: 4, Written: 3, Failed: 1, LastError: "old", LastErrorTime: timestamppb.New(timestamppb.Now().AsTime().Add(-60e9))},
				{State: "Failed", Received: 5, Written: 5, LastError: "connection refused", LastErrorTime: timestamppb.Now()}}},
		}}})
	src := connectorRows([]*meshfedv1.Object{m}, "source", "")
	if len(src) != 1 || src[0].cluster != "a" || src[0].written != 10 || src[0].running != 1 || src[0].wanted != 1 {
		t.Fatalf("sources %+v", src)
	}
	sinks := connectorRows([]*meshfedv1.Object{m}, "sink", "rows")
	if len(sinks) != 1 || sinks[0].received != 9 || sinks[0].written != 8 || sinks[0].failed != 1 || sinks[0].running != 1 || sinks[0].wanted != 2 || sinks[0].lastError != "connection refused" {
		t.Fatalf("sinks %+v", sinks)
	}
	var buf bytes.Buffer
	if err := printConnectors(&buf, "sink", sinks); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "public/default/iot") || !strings.Contains(buf.String(), "1/2") {
		t.Fatalf("table:\n%s", buf.String())
	}
}
