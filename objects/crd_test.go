package objects

import (
	"os"
	"testing"
)

const crdDoc = `apiVersion: compute.functionmesh.io/v1alpha1
kind: FunctionMesh
metadata:
  name: wc
  namespace: k8s-ns
  labels: {app: wc}
spec:
  functions:
    - name: split
      className: word-split
      tenant: acme
      namespace: streams
      replicas: 1
      minReplicas: 1
      maxReplicas: 3
      input:
        topics: [persistent://acme/streams/in]
      output:
        topic: persistent://acme/streams/out
      processingGuarantee: atleast_once
      subscriptionName: sub-1
      subscriptionPosition: latest
      deadLetterTopic: persistent://acme/streams/dlq
      maxMessageRetry: 2
      logTopic: persistent://acme/streams/log
      timeout: 1500
      autoAck: true
      funcConfig: {k: v}
      pulsar: {pulsarConfig: cfg}
      resources:
        requests: {cpu: 500m}
        limits: {cpu: 1, memory: 1Gi}
`

func TestDecodeCRD(t *testing.T) {
	objs, err := DecodeOptions{Cluster: "a"}.Decode("crd.yaml", []byte(crdDoc))
	if err != nil {
		t.Fatal(err)
	}
	fm := objs[0].GetFunctionMesh()
	md := fm.GetMetadata()
	if fm.GetApiVersion() != APIVersion || fm.GetKind() != "FunctionMesh" || md.GetName() != "wc" ||
		md.GetTenant() != "acme" || md.GetNamespace() != "streams" || md.GetLabels()["app"] != "wc" {
		t.Errorf("header = %v", fm)
	}
	f := fm.GetSpec().GetFunctions()[0]
	checks := map[string][2]any{
		"builtin":    {f.GetRuntime().GetBuiltin(), "word-split"},
		"replicas":   {f.GetReplicas(), int32(1)},
		"min":        {f.GetMinReplicas(), int32(1)},
		"max":        {f.GetMaxReplicas(), int32(3)},
		"in cluster": {f.GetInput().GetCluster(), "a"},
		"topic":      {f.GetInput().GetTopics()[0], "persistent://acme/streams/in"},
		"sub":        {f.GetInput().GetSubscription(), "sub-1"},
		"position":   {f.GetInput().GetSubscriptionPosition(), "latest"},
		"out":        {f.GetOutput().GetTopic(), "persistent://acme/streams/out"},
		"outcluster": {f.GetOutput().GetCluster(), "a"},
		"guarantee":  {f.GetProcessingGuarantee(), "atleast_once"},
		"dlq":        {f.GetDeadLetterTopic(), "persistent://acme/streams/dlq"},
		"retry":      {f.GetMaxMessageRetry(), int32(2)},
		"log":        {f.GetLogTopic(), "persistent://acme/streams/log"},
		"timeout":    {f.GetTimeout(), "1.5s"},
		"config":     {f.GetConfig().AsMap()["k"], "v"},
		"cpu":        {f.GetResources().GetCpu(), "500m"},
		"memory":     {f.GetResources().GetMemory(), "1Gi"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if err := Validate(objs[0]); err != nil {
		t.Errorf("converted mesh does not validate: %v", err)
	}
}

func TestDecodeCRDDefaults(t *testing.T) {
	doc := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: FunctionMesh\nmetadata: {name: m}\n" +
		"spec:\n  functions:\n    - {name: f, clusterName: b, runtime: {exec: {command: [./f]}}, input: {topics: [t]}}\n"
	objs, err := Decode("crd.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	fm := objs[0].GetFunctionMesh()
	f := fm.GetSpec().GetFunctions()[0]
	if fm.GetMetadata().GetTenant() != "public" || fm.GetMetadata().GetNamespace() != "default" ||
		f.GetInput().GetCluster() != "b" || f.GetRuntime().GetExec().GetCommand()[0] != "./f" || f.GetOutput() != nil {
		t.Errorf("mesh = %v", fm)
	}
}

func TestDecodeCRDErrors(t *testing.T) {
	fn := "    - name: f\n      className: c\n      input: {topics: [t]}\n"
	head := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: FunctionMesh\nmetadata: {name: m}\nspec:\n  functions:\n"
	tests := []struct {
		name    string
		cluster string
		doc     string
		want    []wantErr
	}{
		{"no cluster", "", head + fn,
			[]wantErr{{1, "spec.functions[0]", "no cluster to run in"}}},
		{"cluster mismatch", "a", head + fn + "      clusterName: b\n",
			[]wantErr{{1, "spec.functions[0].clusterName", `runs in cluster "b" but the cluster given for this file is "a"`}}},
		{"java runtime", "a", head + fn + "      java: {jar: f.jar}\n",
			[]wantErr{{1, "spec.functions[0].java", "Java functions cannot run on meshfed"}}},
		{"unknown field", "a", head + fn + "      sourceType: java.lang.String\n",
			[]wantErr{{1, "spec.functions[0].sourceType", `"sourceType" has no meshfed equivalent; remove it`}}},
		{"className and runtime", "a", head + fn + "      runtime: {builtin: x}\n",
			[]wantErr{{1, "spec.functions[0].className", "className and runtime are both set"}}},
		{"tenant mismatch", "a", head + fn + "      tenant: t1\n" + fn + "      tenant: t2\n",
			[]wantErr{{1, "spec.functions[1].tenant", `tenant "t2" differs from "t1"`}}},
		{"topic pattern", "a", head + "    - name: f\n      className: c\n      input: {topicPattern: 'a.*'}\n",
			[]wantErr{{1, "spec.functions[0].input.topicPattern", "topic patterns cannot be converted"}}},
		{"input serde", "a", head + "    - name: f\n      className: c\n      input: {topics: [t], typeClassName: java.lang.String}\n",
			[]wantErr{{1, "spec.functions[0].input.typeClassName", "no meshfed equivalent"}}},
		{"output producer", "a", head + fn + "      output: {topic: o, producerConf: {}}\n",
			[]wantErr{{1, "spec.functions[0].output.producerConf", "no meshfed equivalent"}}},
		{"manual guarantee", "a", head + fn + "      processingGuarantee: manual\n",
			[]wantErr{{1, "spec.functions[0].processingGuarantee", "manual acknowledgement cannot be converted"}}},
		{"autoAck false", "a", head + fn + "      autoAck: false\n",
			[]wantErr{{1, "spec.functions[0].autoAck", "autoAck: false cannot be converted"}}},
		{"negative timeout", "a", head + fn + "      timeout: -5\n",
			[]wantErr{{1, "spec.functions[0].timeout", "must not be negative"}}},
		{"wrong type", "a", head + fn + "      replicas: many\n",
			[]wantErr{{1, "spec.functions[0].replicas", `expected an integer, got string "many"`}}},
		{"gpu", "a", head + fn + "      resources: {limits: {nvidia.com/gpu: 1}}\n",
			[]wantErr{{1, "spec.functions[0].resources.limits[nvidia.com/gpu]", `resource "nvidia.com/gpu" cannot be converted`}}},
		{"sink without type", "a", head + fn + "  sinks: [{name: s, input: {topics: [t]}}]\n",
			[]wantErr{{1, "spec.sinks[0].type", "required: the meshfed connector type"}}},
		{"Pulsar IO class", "a", head + fn + "  sources: [{name: s, className: org.apache.pulsar.io.kafka.KafkaSource, output: {topic: t}}]\n",
			[]wantErr{{1, "spec.sources[0].className", "Pulsar IO connectors (Java classes and images) cannot run on meshfed"}}},
		{"source subscription", "a", head + fn + "  sources: [{name: s, type: mqtt, subscriptionName: x, output: {topic: t}}]\n",
			[]wantErr{{1, "spec.sources[0].subscriptionName", "a source has no subscription"}}},
		{"kind Secret", "a", "apiVersion: compute.functionmesh.io/v1alpha1\nkind: Secret\nmetadata: {name: m}\n",
			[]wantErr{{1, "kind", "convert for kinds FunctionMesh, Function, Source, Sink"}}},
		{"metadata field", "a", docWith(head, "metadata: {name: m}", "metadata: {name: m, finalizers: [x]}") + fn,
			[]wantErr{{1, "metadata.finalizers", "has no meshfed equivalent"}}},
		{"unknown top-level", "a", head + fn + "extra: 1\n",
			[]wantErr{{1, "extra", `unknown field "extra"`}}},
		{"function not an object", "a", head + "    - f\n",
			[]wantErr{{1, "spec.functions[0]", `expected an object, got string "f"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := DecodeOptions{Cluster: tc.cluster}.Decode("crd.yaml", []byte(tc.doc))
			if objs != nil {
				t.Error("objects returned with an error")
			}
			checkErrs(t, err, "crd.yaml", tc.want)
		})
	}
}

func TestDecodeCRDConnectors(t *testing.T) {
	const doc = `apiVersion: compute.functionmesh.io/v1alpha1
kind: FunctionMesh
metadata: {name: iot}
spec:
  sources:
    - name: devices
      type: mqtt
      replicas: 2
      sourceConfig: {broker: "tcp://h:1883", topics: ["s/#"]}
      output: {topic: readings}
  sinks:
    - name: rows
      type: http
      processingGuarantee: effectively_once
      sinkConfig: {url: "http://h/x"}
      input: {topics: [readings]}
      subscriptionName: rows-sub
---
apiVersion: compute.functionmesh.io/v1alpha1
kind: Sink
metadata: {name: archive}
spec:
  type: http
  sinkConfig: {url: "http://h/archive"}
  input: {topics: [readings]}
`
	objs, err := DecodeOptions{Cluster: "a"}.Decode("crd.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := Validate(o); err != nil {
			t.Fatal(err)
		}
	}
	s := objs[0].GetFunctionMesh().GetSpec()
	src, sink := s.GetSources()[0], s.GetSinks()[0]
	if src.GetType() != "mqtt" || src.GetReplicas() != 2 || src.GetOutput().GetCluster() != "a" || src.GetConfig().AsMap()["broker"] != "tcp://h:1883" {
		t.Errorf("source = %v", src)
	}
	if sink.GetInput().GetCluster() != "a" || sink.GetInput().GetSubscription() != "rows-sub" || sink.GetProcessingGuarantee() != "effectively_once" {
		t.Errorf("sink = %v", sink)
	}
	one := objs[1].GetFunctionMesh().GetSpec().GetSinks()
	if len(one) != 1 || one[0].GetName() != "archive" || one[0].GetConfig().AsMap()["url"] != "http://h/archive" {
		t.Errorf("Sink document = %v", objs[1])
	}
}

func TestDecodeCRDExample(t *testing.T) {
	data, err := os.ReadFile("../examples/functionmesh-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeOptions{Cluster: "a"}.Decode("functionmesh-crd.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	f := objs[0].GetFunctionMesh().GetSpec().GetFunctions()
	if len(f) != 2 || f[0].GetTimeout() != "5s" || f[1].GetRuntime().GetBuiltin() != "word-count" {
		t.Errorf("functions = %v", f)
	}
}
