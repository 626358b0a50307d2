package objects

// Conversion of Function Mesh documents (compute.functionmesh.io/v1alpha1,
// kinds FunctionMesh and Function; lists of them are expanded in
// crd_runtime.go) into meshfed FunctionMesh objects. docs/migration.md has
// the full mapping table; in short:
//
//	metadata.name                      → metadata.name (a Function: also
//	                                     the function's name, unless
//	                                     spec.name is set)
//	metadata.labels                    → metadata.labels
//	name                               → name
//	tenant, namespace                  → metadata.tenant, metadata.namespace
//	                                     (all functions must agree; default
//	                                     public/default, as in Pulsar)
//	clusterName                        → the cluster (must match --cluster)
//	golang, python                     → runtime.exec or runtime.wasm, the
//	                                     code packaged by DecodeOptions.Packages
//	className                          → runtime.builtin, without a language
//	                                     block (python: the class to call)
//	runtime (meshfed extension)        → runtime
//	replicas, minReplicas, maxReplicas → same
//	input.topics                       → input.topics, input.cluster = cluster
//	output.topic                       → output.topic, output.cluster = cluster
//	subscriptionName                   → input.subscription; unset: Pulsar's
//	                                     tenant/namespace/name
//	subscriptionPosition               → input.subscriptionPosition
//	processingGuarantee                → same (except "manual": refused)
//	deadLetterTopic, maxMessageRetry   → same
//	logTopic                           → same
//	timeout (milliseconds)             → timeout as a Go duration ("1500ms")
//	funcConfig                         → config
//	resources.requests (or .limits)    → resources.cpu, resources.memory
//	pod.builtinAutoscaler (CPU rule)   → autoscaling.cpuUtilization
//	pod.autoScalingBehavior.scaleUp/
//	  scaleDown.stabilizationWindowSeconds → autoscaling.scaleUp/DownStabilization
//	autoAck: true                      → nothing (meshfed acknowledges as the
//	                                     processing guarantee says)
//	pulsar                             → checked against the Cluster's auth
//
// Ignored: the Kubernetes metadata (namespace, annotations and
// server-written fields), Kubernetes-only settings (crdKubernetesOnly, most
// of pod) and status. Everything else without a meshfed equivalent (java,
// genericRuntime, serde and schema classes, windowing, secrets, Pulsar IO
// connector classes, ...) is an error naming the field, so nothing is
// dropped silently. Sources and sinks: crd_connectors.go.

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// CRDAPIVersion is the apiVersion of Function Mesh CRD documents Decode converts.
const CRDAPIVersion = "compute.functionmesh.io/v1alpha1"

// Kinds of Function Mesh documents besides FunctionMesh.
const (
	crdKindFunction         = "Function"
	crdKindFunctionList     = "FunctionList"
	crdKindFunctionMeshList = "FunctionMeshList"
)

// Pulsar's default tenant and namespace, used when a CRD function names none.
const (
	defaultTenant    = "public"
	defaultNamespace = "default"
)

// crdMetadataIgnored are Kubernetes metadata fields with no meshfed meaning.
var crdMetadataIgnored = map[string]bool{
	"namespace": true, "annotations": true, "uid": true, "resourceVersion": true,
	"generation": true, "creationTimestamp": true, "managedFields": true, "selfLink": true,
}

// decodeCRD converts a Function Mesh document (kind FunctionMesh or
// Function), or returns nil with the errors in w.
func (o DecodeOptions) decodeCRD(w *walker, doc map[string]any) *meshfedv1.Object {
	kind := doc["kind"]
	if kind != KindFunctionMesh && kind != crdKindFunction && kind != crdKindSource && kind != crdKindSink {
		w.errs.add("kind", "%s documents convert for kinds FunctionMesh, Function, Source, Sink, FunctionMeshList and FunctionList, got %s", CRDAPIVersion, describe(kind))
		return nil
	}
	fm := &meshfedv1.FunctionMesh{
		ApiVersion: APIVersion,
		Kind:       KindFunctionMesh,
		Metadata:   &meshfedv1.ObjectMeta{},
		Spec:       &meshfedv1.FunctionMeshSpec{},
	}
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		v := doc[key]
		switch key {
		case "apiVersion", "kind", "status":
		case "metadata":
			w.crdMetadata(v, fm.Metadata)
		case "spec":
			switch kind {
			case crdKindFunction:
				if fn := o.crdFunction(w, "spec", v, fm.Metadata); fn != nil {
					fm.Spec.Functions = append(fm.Spec.Functions, fn)
				}
				continue
			case crdKindSource:
				// A Source or Sink document is a mesh of one connector.
				if c := o.crdConnector(w, "spec", ConnectorSource, v, fm.Metadata); c != nil {
					fm.Spec.Sources = append(fm.Spec.Sources, c)
				}
				continue
			case crdKindSink:
				if c := o.crdConnector(w, "spec", ConnectorSink, v, fm.Metadata); c != nil {
					fm.Spec.Sinks = append(fm.Spec.Sinks, c)
				}
				continue
			}
			o.crdSpec(w, v, fm)
		default:
			w.errs.add(key, "unknown field %q of a %s %s", key, CRDAPIVersion, kind)
		}
	}
	if fm.Metadata.Tenant == "" {
		fm.Metadata.Tenant = defaultTenant
	}
	if fm.Metadata.Namespace == "" {
		fm.Metadata.Namespace = defaultNamespace
	}
	for _, c := range append(append([]*meshfedv1.ConnectorSpec(nil), fm.Spec.Sources...), fm.Spec.Sinks...) {
		if (kind == crdKindSource || kind == crdKindSink) && c.Name == "" {
			c.Name = fm.Metadata.Name
		}
	}
	for _, fn := range fm.Spec.Functions {
		if kind == crdKindFunction && fn.Name == "" {
			// A Function is named by its metadata, like its mesh.
			fn.Name = fm.Metadata.Name
		}
		if fn.Input.Subscription == "" && fn.Name != "" {
			// Pulsar's subscription for a function: its fully qualified
			// name, so a migrated function keeps its backlog.
			fn.Input.Subscription = fm.Metadata.Tenant + "/" + fm.Metadata.Namespace + "/" + fn.Name
		}
	}
	if len(w.errs.list) > 0 {
		return nil
	}
	return Wrap(fm)
}

// object returns v as a YAML mapping; anything else is recorded as a type
// error at path.
func (w *walker) object(path string, v any) (map[string]any, bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
	}
	return obj, ok
}

func (w *walker) crdMetadata(v any, md *meshfedv1.ObjectMeta) {
	obj, ok := w.object("metadata", v)
	if !ok {
		return
	}
	m := md.ProtoReflect()
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		path := join("metadata", key)
		switch {
		case key == "name" || key == "labels":
			if obj[key] != nil {
				w.field(path, m.Descriptor().Fields().ByName(protoreflect.Name(key)), obj[key], m)
			}
		case crdMetadataIgnored[key]:
		default:
			w.errs.add(path, "Kubernetes metadata field %q has no meshfed equivalent; remove it", key)
		}
	}
}

func (o DecodeOptions) crdSpec(w *walker, v any, fm *meshfedv1.FunctionMesh) {
	obj, ok := w.object("spec", v)
	if !ok {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		path := join("spec", key)
		switch key {
		case "functions":
			list, ok := obj[key].([]any)
			if !ok {
				if obj[key] != nil {
					w.typeError(path, "a list", obj[key])
				}
				continue
			}
			for i, f := range list {
				if fn := o.crdFunction(w, index(path, i), f, fm.Metadata); fn != nil {
					fm.Spec.Functions = append(fm.Spec.Functions, fn)
				}
			}
		case "sources":
			fm.Spec.Sources = append(fm.Spec.Sources, o.crdConnectors(w, path, ConnectorSource, obj[key], fm.Metadata)...)
		case "sinks":
			fm.Spec.Sinks = append(fm.Spec.Sinks, o.crdConnectors(w, path, ConnectorSink, obj[key], fm.Metadata)...)
		default:
			w.errs.add(path, "unknown field %q of a FunctionMesh spec", key)
		}
	}
}

// crdFunctionFields maps CRD function fields that keep their meaning to the
// meshfed FunctionSpec field (a proto name path) they fill.
var crdFunctionFields = map[string][]protoreflect.Name{
	"name":                 {"name"},
	"runtime":              {"runtime"},
	"replicas":             {"replicas"},
	"minReplicas":          {"min_replicas"},
	"maxReplicas":          {"max_replicas"},
	"processingGuarantee":  {"processing_guarantee"},
	"deadLetterTopic":      {"dead_letter_topic"},
	"maxMessageRetry":      {"max_message_retry"},
	"logTopic":             {"log_topic"},
	"funcConfig":           {"config"},
	"subscriptionName":     {"input", "subscription"},
	"subscriptionPosition": {"input", "subscription_position"},
}

// crdFunction converts one function of a Function Mesh (path
// spec.functions[i]) or the spec of a Function (path spec).
func (o DecodeOptions) crdFunction(w *walker, path string, v any, md *meshfedv1.ObjectMeta) *meshfedv1.FunctionSpec {
	obj, ok := w.object(path, v)
	if !ok {
		return nil
	}
	fn := &meshfedv1.FunctionSpec{Input: &meshfedv1.FunctionInput{}}
	cluster := o.Cluster
	className := ""
	var code *crdCode // the golang or python block
	forward := false
	var podEnv map[string]string
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		val := obj[key]
		fp := join(path, key)
		if val == nil {
			continue
		}
		if target, ok := crdFunctionFields[key]; ok {
			w.crdField(fp, fn.ProtoReflect(), target, val)
			continue
		}
		if crdKubernetesOnly[key] {
			continue
		}
		switch key {
		case "className":
			if s, ok := w.crdString(fp, val); ok {
				className = s
			}
		case "tenant", "namespace":
			w.crdScope(fp, key, val, md)
		case "clusterName":
			o.crdCluster(w, fp, "function", val, &cluster)
		case "input":
			w.crdInput(fp, val, fn.Input)
		case "output":
			fn.Output = w.crdOutput(fp, val)
		case "timeout":
			ms, ok := w.integer(fp, val, 32, true)
			switch {
			case !ok:
			case ms < 0:
				w.errs.add(fp, "must not be negative, got %d", ms)
			case ms > 0:
				fn.Timeout = (time.Duration(ms) * time.Millisecond).String()
			}
		case "resources":
			fn.Resources = w.crdResources(fp, val)
		case "autoAck":
			if b, ok := val.(bool); !ok {
				w.typeError(fp, "true or false", val)
			} else if !b {
				w.errs.add(fp, "autoAck: false cannot be converted: meshfed acknowledges messages as processingGuarantee says")
			}
		case "forwardSourceMessageProperty":
			b, ok := val.(bool)
			if !ok {
				w.typeError(fp, "true or false", val)
			}
			forward = b
		case "maxPendingAsyncRequests":
			// Bounds the in-flight calls of Java async functions; meshfed
			// functions handle one message at a time, so there is nothing
			// to bound. Checked, then dropped (docs/migration.md).
			if n, ok := w.integer(fp, val, 32, true); ok && n < 0 {
				w.errs.add(fp, "must not be negative, got %d", n)
			}
		case "logTopicAgent":
			// Who writes the log topic (the runtime or a sidecar): the
			// agent does, either way.
			if s, ok := val.(string); !ok || (s != "runtime" && s != "sidecar") {
				w.errs.add(fp, "must be runtime or sidecar, got %s", describe(val))
			}
		case "pod":
			podEnv = w.crdPod(fp, val)
			fn.Autoscaling = w.crdAutoscaling(fp, val)
			if sel := w.crdNodeSelector(fp, val); len(sel) > 0 {
				fn.Placement = &meshfedv1.Placement{NodeSelector: sel}
			}
		case "pulsar":
			o.crdPulsar(w, fp, val, cluster)
		case "golang", "python":
			if code != nil {
				w.errs.add(fp, "%s and %s are both set; a function has one runtime", code.block, key)
				continue
			}
			code = w.crdCodeBlock(fp, key, val)
		case "java":
			w.errs.add(fp, "Java functions cannot run on meshfed (it has no JVM runtime): port the function to Go (an exec program, or a wasm module built with sdk/wasm) or Python and set golang or python instead, or run a meshfed builtin with className; see docs/migration.md")
		case "genericRuntime":
			w.errs.add(fp, "genericRuntime cannot be converted: set golang (an exec program or a .wasm module) or python, or the meshfed extension runtime: {exec: {command: [...]}}")
		default:
			if crdZeroOnly[key] {
				if isZero(val) {
					continue
				}
				w.errs.add(fp, "%s", crdRefusals[key])
				continue
			}
			w.errs.add(fp, "%q has no meshfed equivalent; remove it", key)
		}
	}
	if fn.ProcessingGuarantee == "manual" {
		w.errs.add(join(path, "processingGuarantee"), "manual acknowledgement cannot be converted; use atmost_once, atleast_once or effectively_once")
	}
	switch {
	case code != nil && fn.Runtime != nil:
		w.errs.add(join(path, code.block), "%s and runtime are both set; keep one", code.block)
	case code != nil:
		code.ClassName = className
		code.ForwardProperties = forward
		fn.Runtime = o.crdRuntime(w, path, code)
	case className != "" && fn.Runtime != nil:
		w.errs.add(join(path, "className"), "className and runtime are both set; keep runtime")
	case className != "" && obj["java"] == nil:
		fn.Runtime = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: className}}
	}
	if forward && obj["golang"] == nil && obj["python"] == nil && obj["java"] == nil && obj["genericRuntime"] == nil {
		w.errs.add(join(path, "forwardSourceMessageProperty"), "true is honoured for golang and python functions only (builtin and exec functions set their own output properties); remove it")
	}
	if len(podEnv) > 0 {
		if ex := fn.GetRuntime().GetExec(); ex != nil {
			if ex.Env == nil {
				ex.Env = map[string]string{}
			}
			for k, v := range podEnv {
				if _, taken := ex.Env[k]; !taken {
					ex.Env[k] = v
				}
			}
		} else if fn.Runtime != nil {
			w.errs.add(join(join(path, "pod"), "env"), "environment variables reach exec functions only (golang, python or runtime.exec); remove env")
		}
	}
	if cluster == "" {
		w.errs.add(path, "no cluster to run in: name the cluster this Function Mesh runs in (the --cluster option) or set clusterName")
	}
	fn.Input.Cluster = cluster
	if fn.Output != nil && fn.Output.Topic != "" {
		fn.Output.Cluster = cluster
	}
	return fn
}

// crdField sets the field at the proto name path target below m (creating
// the messages on the way) from the CRD value v at path.
func (w *walker) crdField(path string, m protoreflect.Message, target []protoreflect.Name, v any) {
	for _, name := range target[:len(target)-1] {
		m = m.Mutable(m.Descriptor().Fields().ByName(name)).Message()
	}
	w.field(path, m.Descriptor().Fields().ByName(target[len(target)-1]), v, m)
}

// crdString returns v as a string, or records that it is not one.
func (w *walker) crdString(path string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		w.typeError(path, "a string", v)
	}
	return s, ok
}

// crdCluster sets *cluster from the clusterName v of a function or
// connector (what names which), which must agree with the cluster given
// for the file, if any.
func (o DecodeOptions) crdCluster(w *walker, path, what string, v any, cluster *string) {
	s, ok := w.crdString(path, v)
	switch {
	case !ok:
	case o.Cluster != "" && s != o.Cluster:
		w.errs.add(path, "the %s runs in cluster %q but the cluster given for this file is %q", what, s, o.Cluster)
	default:
		*cluster = s
	}
}

// crdScope records a function's Pulsar tenant or namespace (key says
// which), the string v, as the mesh's.
func (w *walker) crdScope(path, key string, v any, md *meshfedv1.ObjectMeta) {
	value, ok := w.crdString(path, v)
	if !ok {
		return
	}
	field := &md.Tenant
	if key == "namespace" {
		field = &md.Namespace
	}
	switch {
	case *field == "":
		*field = value
	case *field != value:
		w.errs.add(path, "%s %q differs from %q of an earlier function; a meshfed mesh lives in one tenant and namespace", key, value, *field)
	}
}

func (w *walker) crdInput(path string, v any, in *meshfedv1.FunctionInput) {
	obj, ok := w.object(path, v)
	if !ok {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fp := join(path, key)
		switch key {
		case "topics":
			if obj[key] != nil {
				m := in.ProtoReflect()
				w.field(fp, m.Descriptor().Fields().ByName("topics"), obj[key], m)
			}
		case "topicPattern":
			w.errs.add(fp, "topic patterns cannot be converted; list the topics in input.topics")
		default:
			w.errs.add(fp, "%q has no meshfed equivalent (functions read raw messages); remove it", key)
		}
	}
}

func (w *walker) crdOutput(path string, v any) *meshfedv1.FunctionOutput {
	obj, ok := w.object(path, v)
	if !ok {
		return nil
	}
	out := &meshfedv1.FunctionOutput{}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fp := join(path, key)
		if key == "topic" {
			if obj[key] != nil {
				m := out.ProtoReflect()
				w.field(fp, m.Descriptor().Fields().ByName("topic"), obj[key], m)
			}
			continue
		}
		w.errs.add(fp, "%q has no meshfed equivalent (functions write raw messages); remove it", key)
	}
	return out
}

// crdResources converts Kubernetes resource requirements. Requests win;
// limits stand in for missing requests, as in Kubernetes.
func (w *walker) crdResources(path string, v any) *meshfedv1.Resources {
	obj, ok := w.object(path, v)
	if !ok {
		return nil
	}
	res := &meshfedv1.Resources{}
	for _, section := range []string{"requests", "limits"} {
		sv, present := obj[section]
		if !present || sv == nil {
			continue
		}
		sp := join(path, section)
		sm, ok := w.object(sp, sv)
		if !ok {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(sm)) {
			np := mapKey(sp, name)
			var q string
			switch t := sm[name].(type) {
			case string:
				q = t
			case json.Number:
				q = t.String()
			default:
				w.typeError(np, "a quantity such as 500m or 128Mi", sm[name])
				continue
			}
			switch name {
			case "cpu":
				if res.Cpu == "" {
					res.Cpu = q
				}
			case "memory":
				if res.Memory == "" {
					res.Memory = q
				}
			default:
				w.errs.add(np, "resource %q cannot be converted; meshfed knows cpu and memory", name)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		if key != "requests" && key != "limits" {
			w.errs.add(join(path, key), "%q has no meshfed equivalent; remove it", key)
		}
	}
	return res
}
