package objects

// Conversion of Function Mesh sources and sinks (spec.sources and
// spec.sinks of a FunctionMesh, and Source and Sink documents) into meshfed
// connectors. Pulsar IO connectors are Java classes (className, java,
// image); meshfed runs its own connector types instead, named by the
// meshfed extension field type:
//
//	type (meshfed extension)           → type (mqtt, http, postgres, ...)
//	name, replicas, processingGuarantee → same
//	sourceConfig, sinkConfig           → config
//	output.topic (source)              → output.topic, output.cluster = cluster
//	input.topics (sink)                → input.topics, input.cluster = cluster
//	subscriptionName, subscriptionPosition (sink) → input.subscription, .subscriptionPosition
//	tenant, namespace, clusterName, resources, pulsar → as for functions
//
// className, java and image without type are refused, naming the field;
// with type they are refused too, as they would be ignored.

import (
	"maps"
	"slices"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Kinds of Function Mesh connector documents.
const (
	crdKindSource = "Source"
	crdKindSink   = "Sink"
)

// crdConnectorFields map CRD connector fields that keep their meaning.
var crdConnectorFields = map[string]protoreflect.Name{
	"name":                "name",
	"type":                "type",
	"replicas":            "replicas",
	"processingGuarantee": "processing_guarantee",
}

// crdConnector converts one source or sink (kind says which) at path.
func (o DecodeOptions) crdConnector(w *walker, path, kind string, v any, md *meshfedv1.ObjectMeta) *meshfedv1.ConnectorSpec {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return nil
	}
	c := &meshfedv1.ConnectorSpec{}
	cluster := o.Cluster
	configKey, ioKey := "sourceConfig", "output"
	if kind == ConnectorSink {
		configKey, ioKey = "sinkConfig", "input"
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		val := obj[key]
		fp := join(path, key)
		if val == nil {
			continue
		}
		if name, ok := crdConnectorFields[key]; ok {
			m := c.ProtoReflect()
			w.field(fp, m.Descriptor().Fields().ByName(name), val, m)
			continue
		}
		if crdKubernetesOnly[key] {
			continue
		}
		switch key {
		case configKey:
			m := c.ProtoReflect()
			w.field(fp, m.Descriptor().Fields().ByName("config"), val, m)
		case ioKey:
			if kind == ConnectorSink {
				c.Input = &meshfedv1.FunctionInput{}
				w.crdInput(fp, val, c.Input)
			} else {
				c.Output = w.crdOutput(fp, val)
			}
		case "subscriptionName", "subscriptionPosition":
			if kind != ConnectorSink {
				w.errs.add(fp, "a source has no subscription; remove it")
				continue
			}
			// The same fields of the input as a function's.
			w.crdField(fp, c.ProtoReflect(), crdFunctionFields[key], val)
		case "tenant", "namespace":
			w.crdScope(fp, key, val, md)
		case "clusterName":
			o.crdCluster(w, fp, kind, val, &cluster)
		case "resources":
			c.Resources = w.crdResources(fp, val)
		case "pulsar":
			o.crdPulsar(w, fp, val, cluster)
		case "className", "java", "image":
			w.errs.add(fp, "Pulsar IO connectors (Java classes and images) cannot run on meshfed: name a meshfed connector with type (mqtt, http, postgres) and its settings in %s; see docs/connectors.md", configKey)
		default:
			w.errs.add(fp, "%q has no meshfed equivalent; remove it", key)
		}
	}
	if c.Type == "" && obj["className"] == nil && obj["java"] == nil && obj["image"] == nil {
		w.errs.add(join(path, "type"), "required: the meshfed connector type (mqtt, http, postgres); see docs/connectors.md")
	}
	if c.ProcessingGuarantee == "manual" {
		w.errs.add(join(path, "processingGuarantee"), "manual acknowledgement cannot be converted; use atmost_once, atleast_once or effectively_once")
	}
	if cluster == "" {
		w.errs.add(path, "no cluster to run in: name the cluster this Function Mesh runs in (the --cluster option) or set clusterName")
	}
	if c.Input != nil {
		c.Input.Cluster = cluster
	}
	if c.Output != nil {
		c.Output.Cluster = cluster
	}
	return c
}

// crdConnectors converts the list at spec.sources or spec.sinks.
func (o DecodeOptions) crdConnectors(w *walker, path, kind string, v any, md *meshfedv1.ObjectMeta) []*meshfedv1.ConnectorSpec {
	list, ok := v.([]any)
	if !ok {
		if v != nil {
			w.typeError(path, "a list", v)
		}
		return nil
	}
	var out []*meshfedv1.ConnectorSpec
	for i, item := range list {
		if c := o.crdConnector(w, index(path, i), kind, item, md); c != nil {
			out = append(out, c)
		}
	}
	return out
}
