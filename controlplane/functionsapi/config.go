package functionsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/types/known/structpb"
)

// maxConfigSize bounds a functionConfig part.
const maxConfigSize = 1 << 20

// DecodeConfig decodes FunctionConfig JSON strictly: a field that is not
// one of Pulsar's FunctionConfig fields is refused, never ignored.
func DecodeConfig(data []byte) (*utils.FunctionConfig, error) {
	if len(data) > maxConfigSize {
		return nil, badRequest("functionConfig: larger than %d bytes", maxConfigSize)
	}
	var c utils.FunctionConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, badRequest("functionConfig: %v", err)
	}
	if dec.More() {
		return nil, badRequest("functionConfig: data after the JSON object")
	}
	return &c, nil
}

// mergeConfig overlays the fields update names onto base, as Pulsar's
// update does: fields the update leaves out keep their values.
func mergeConfig(base *utils.FunctionConfig, update []byte) (*utils.FunctionConfig, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(update, &fields); err != nil {
		return nil, badRequest("functionConfig: %v", err)
	}
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	var merged map[string]json.RawMessage
	if err := json.Unmarshal(b, &merged); err != nil {
		return nil, err
	}
	for k, v := range fields {
		merged[k] = v
	}
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	return DecodeConfig(out)
}

// Processing guarantees, Pulsar's names to meshfed's.
var guarantees = map[string]string{
	"":                 "",
	"ATLEAST_ONCE":     "atleast_once",
	"ATMOST_ONCE":      "atmost_once",
	"EFFECTIVELY_ONCE": "effectively_once",
}

// Subscription positions, Pulsar's names to meshfed's.
var positions = map[string]string{"": "", "Latest": "latest", "Earliest": "earliest"}

// runtimeOptions is what meshfed reads from customRuntimeOptions.
type runtimeOptions struct {
	// Cluster the function reads from, runs in and writes to. Empty: chosen
	// by the server (the only cluster there is).
	Cluster string `json:"cluster"`
}

// parseRuntimeOptions decodes customRuntimeOptions ("" is no options).
func parseRuntimeOptions(s string) (runtimeOptions, error) {
	var o runtimeOptions
	if strings.TrimSpace(s) == "" {
		return o, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, unsupported("customRuntimeOptions", fmt.Sprintf(`meshfed reads a JSON object {"cluster": "NAME"} here (%v)`, err))
	}
	return o, nil
}

// ToSpec maps a FunctionConfig onto the FunctionSpec of a one-function
// mesh running rt in cluster. Every field is either mapped or, set to a
// value other than its default, refused: all such fields are named.
func ToSpec(c *utils.FunctionConfig, rt *meshfedv1.Runtime, cluster string) (*meshfedv1.FunctionSpec, error) {
	var errs []error
	refuse := func(field, why string) { errs = append(errs, unsupported(field, why)) }
	f := &meshfedv1.FunctionSpec{Name: c.Name, Runtime: rt}

	if c.Parallelism < 0 {
		refuse("parallelism", "must not be negative")
	}
	f.Replicas = int32(min(c.Parallelism, math.MaxInt32))
	g, ok := guarantees[c.ProcessingGuarantees]
	if !ok {
		refuse("processingGuarantees", fmt.Sprintf("%q: meshfed offers ATLEAST_ONCE, ATMOST_ONCE and EFFECTIVELY_ONCE (MANUAL leaves acknowledgement to the function, which meshfed's runtimes do not)", c.ProcessingGuarantees))
	}
	f.ProcessingGuarantee = g

	in := &meshfedv1.FunctionInput{Cluster: cluster, Topics: slices.Clone(c.Inputs), Subscription: c.SubName}
	for _, t := range slices.Sorted(mapKeys(c.InputSpecs)) {
		if c.InputSpecs[t].SchemaType != "" || c.InputSpecs[t].SerdeClassName != "" || c.InputSpecs[t].RegexPattern ||
			c.InputSpecs[t].ReceiverQueueSize != 0 || len(c.InputSpecs[t].SchemaProperties) > 0 || len(c.InputSpecs[t].ConsumerProperties) > 0 ||
			c.InputSpecs[t].CryptoConfig != nil || c.InputSpecs[t].PoolMessages {
			refuse("inputSpecs."+t, "meshfed consumes raw bytes with its own consumer settings: give the topic alone")
		}
		if !slices.Contains(in.Topics, t) {
			in.Topics = append(in.Topics, t)
		}
	}
	for _, m := range []struct {
		field string
		v     map[string]string
	}{{"customSerdeInputs", c.CustomSerdeInputs}, {"customSchemaInputs", c.CustomSchemaInputs}} {
		for _, t := range slices.Sorted(mapKeys(m.v)) {
			if m.v[t] != "" {
				refuse(m.field+"."+t, "meshfed passes message payloads as bytes and applies no schema or serde")
			} else if !slices.Contains(in.Topics, t) {
				in.Topics = append(in.Topics, t)
			}
		}
	}
	if c.TopicsPattern != nil && *c.TopicsPattern != "" {
		refuse("topicsPattern", "meshfed subscribes to listed topics only: list them in inputs")
	}
	pos, ok := positions[c.SubscriptionPosition]
	if !ok {
		refuse("subscriptionPosition", fmt.Sprintf("%q: Latest or Earliest", c.SubscriptionPosition))
	}
	in.SubscriptionPosition = pos
	if c.SkipToLatest {
		refuse("skipToLatest", "meshfed resumes a subscription where it stopped")
	}
	f.Input = in
	if c.Output != "" {
		f.Output = &meshfedv1.FunctionOutput{Cluster: cluster, Topic: c.Output}
	}
	if c.MaxMessageRetries != nil {
		if *c.MaxMessageRetries < 0 {
			refuse("maxMessageRetries", "must not be negative")
		}
		f.MaxMessageRetry = int32(min(*c.MaxMessageRetries, math.MaxInt32))
	}
	f.DeadLetterTopic = c.DeadLetterTopic
	f.LogTopic = c.LogTopic
	if c.TimeoutMs != nil && *c.TimeoutMs != 0 {
		if *c.TimeoutMs < 0 {
			refuse("timeoutMs", "must not be negative")
		}
		f.Timeout = fmt.Sprintf("%dms", *c.TimeoutMs)
	}
	if len(c.UserConfig) > 0 {
		s, err := structpb.NewStruct(c.UserConfig)
		if err != nil {
			refuse("userConfig", err.Error())
		}
		f.Config = s
	}
	if r := c.Resources; r != nil {
		if r.CPU < 0 || r.RAM < 0 || math.IsNaN(r.CPU) || math.IsInf(r.CPU, 0) || r.CPU > 1e6 {
			refuse("resources", "cpu (cores, at most 1e6) and ram (bytes) must not be negative")
		}
		if r.Disk != 0 {
			refuse("resources.disk", "meshfed reserves no disk for instances")
		}
		f.Resources = resourcesOf(r)
	}

	if len(c.Secrets) > 0 {
		if rt.GetExec() == nil {
			refuse("secrets", "only Python functions (run by meshfed's exec runtime) receive secrets; builtin and WebAssembly functions take none")
		}
		f.Secrets = map[string]string{}
		for _, name := range slices.Sorted(mapKeys(c.Secrets)) {
			ref, ok := c.Secrets[name].(string)
			if !ok {
				refuse("secrets."+name, "meshfed takes a reference string, env:NAME (the agent's environment) or file:///path (a file on the agent's host), resolved by the agent into the function's environment variable "+name+"; provider objects such as Kubernetes' {path, key} are not supported")
				continue
			}
			if _, err := objects.ParseFunctionSecret(ref); err != nil {
				refuse("secrets."+name, strings.TrimPrefix(err.Error(), objects.ErrInvalid.Error()+": "))
				continue
			}
			f.Secrets[name] = ref
		}
	}

	// forwardSourceMessageProperty and autoAck are accepted either way:
	// Pulsar's Java client sends true by default, its Go client false.
	// meshfed writes the properties a function returns (builtins return
	// the input's) and acknowledges after processing.

	// Fields meshfed has no counterpart for: refused unless at their default.
	zero := []struct {
		field string
		set   bool
		why   string
	}{
		{"cleanupSubscription", c.CleanupSubscription, "meshfed keeps the subscription when a function is deleted (set false, and delete it with pulsar-admin topics unsubscribe)"},
		{"retainOrdering", c.RetainOrdering, "meshfed does not promise ordering across instances"},
		{"retainKeyOrdering", c.RetainKeyOrdering, "meshfed does not promise per-key ordering across instances"},
		{"batchBuilder", c.BatchBuilder != "" && c.BatchBuilder != "DEFAULT", "meshfed's producers use the default batch builder"},
		{"producerConfig", c.ProducerConfig != nil, "meshfed configures its producers itself"},
		{"customSchemaOutputs", len(c.CustomSchemaOutputs) > 0, "meshfed applies no output schema"},
		{"outputSerdeClassName", c.OutputSerdeClassName != "", "meshfed applies no serde"},
		{"outputSchemaType", c.OutputSchemaType != "", "meshfed applies no output schema"},
		{"outputTypeClassName", c.OutputTypeClassName != "", "meshfed runs no Java classes"},
		{"inputTypeClassName", c.InputTypeClassName != "", "meshfed runs no Java classes"},
		{"className", c.ClassName != "" && !isPython(c), "meshfed runs builtin, WebAssembly and Python functions, not Java classes: register with url builtin://NAME, a .wasm package, or runtime PYTHON with a .py, .zip or .whl"},
		{"jar", c.Jar != nil && *c.Jar != "", "meshfed runs no Java functions"},
		{"windowConfig", c.WindowConfig != nil, "meshfed has no windowed functions"},
		{"runtimeFlags", c.RuntimeFlags != "", "meshfed's runtimes take no flags"},
		{"functionType", c.FunctionType != nil && *c.FunctionType != "", "meshfed knows no function types"},
		{"maxPendingAsyncRequests", c.MaxPendingAsyncRequests != 0 && c.MaxPendingAsyncRequests != 1000, "meshfed runs one message at a time per instance"},
		{"exposePulsarAdminClientEnabled", c.ExposePulsarAdminClientEnabled, "meshfed gives functions no admin client"},
	}
	for _, z := range zero {
		if z.set {
			refuse(z.field, z.why)
		}
	}
	py, isPy := pythonCommand(rt, c.ClassName)
	switch {
	case isPython(c) && !isPy:
		refuse("runtime", "a Python function needs its code: the .py, .zip or .whl file as the data part or an http(s) url (not builtin:// or function://)")
	case isPython(c) && c.ClassName == "":
		refuse("className", "required for a Python function: MODULE.NAME of its function or pulsar.Function class")
	case isPython(c):
		f.Runtime = py
	case strings.ToUpper(c.Runtime) == "" || strings.ToUpper(c.Runtime) == utils.GoRuntime:
	default:
		refuse("runtime", fmt.Sprintf("%q: meshfed runs builtin functions, Go compiled to WebAssembly (runtime GO) and Python (runtime PYTHON)", c.Runtime))
	}
	if fq := c.FQFN; fq != "" && fq != c.Tenant+"/"+c.Namespace+"/"+c.Name {
		refuse("fqfn", fmt.Sprintf("%q is not %s/%s/%s", fq, c.Tenant, c.Namespace, c.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &httpError{code: 400, err: err}
	}
	return f, nil
}

// resourcesOf maps Pulsar's resources (cores, bytes) onto meshfed's
// quantities (millicores rounded up, bytes).
func resourcesOf(r *utils.Resources) *meshfedv1.Resources {
	if r == nil {
		return nil
	}
	out := &meshfedv1.Resources{}
	if r.CPU > 0 {
		out.Cpu = fmt.Sprintf("%dm", int64(math.Ceil(r.CPU*1000)))
	}
	if r.RAM > 0 {
		out.Memory = fmt.Sprint(r.RAM)
	}
	return out
}

// FromSpec is the FunctionConfig of a function of a mesh in tenant and
// namespace, as GET returns it.
func FromSpec(tenant, namespace string, f *meshfedv1.FunctionSpec) utils.FunctionConfig {
	c := utils.FunctionConfig{
		Tenant: tenant, Namespace: namespace, Name: f.GetName(),
		Parallelism:     max(int(f.GetReplicas()), 1),
		Inputs:          slices.Clone(f.GetInput().GetTopics()),
		Output:          f.GetOutput().GetTopic(),
		SubName:         f.GetInput().GetSubscription(),
		DeadLetterTopic: f.GetDeadLetterTopic(),
		LogTopic:        f.GetLogTopic(),
		AutoAck:         true,
	}
	for p, m := range guarantees {
		if m == f.GetProcessingGuarantee() && p != "" {
			c.ProcessingGuarantees = p
		}
	}
	if c.ProcessingGuarantees == "" {
		c.ProcessingGuarantees = "ATLEAST_ONCE"
	}
	for p, m := range positions {
		if m == f.GetInput().GetSubscriptionPosition() && p != "" {
			c.SubscriptionPosition = p
		}
	}
	if n := f.GetMaxMessageRetry(); n != 0 {
		v := int(n)
		c.MaxMessageRetries = &v
	}
	if f.GetConfig() != nil {
		c.UserConfig = f.GetConfig().AsMap()
	}
	if len(f.GetSecrets()) > 0 {
		c.Secrets = map[string]any{}
		for name, ref := range f.GetSecrets() {
			c.Secrets[name] = ref
		}
	}
	if cl := f.GetInput().GetCluster(); cl != "" {
		b, _ := json.Marshal(runtimeOptions{Cluster: cl})
		c.CustomRuntimeOptions = string(b)
	}
	switch rt := f.GetRuntime().GetKind().(type) {
	case *meshfedv1.Runtime_Builtin:
		u := "builtin://" + rt.Builtin
		c.Go = &u
		c.Runtime = utils.GoRuntime
	case *meshfedv1.Runtime_Wasm:
		u := "function://" + rt.Wasm.GetPackage()
		c.Go = &u
		c.Runtime = utils.GoRuntime
	case *meshfedv1.Runtime_Exec:
		pythonConfig(&c, f.GetRuntime())
	}
	if d, err := time.ParseDuration(f.GetTimeout()); err == nil && d > 0 {
		ms := max(d.Milliseconds(), 1)
		c.TimeoutMs = &ms
	}
	if r := f.GetResources(); r.GetCpu() != "" || r.GetMemory() != "" {
		c.Resources = &utils.Resources{}
		if mc, err := objects.ParseCPU(r.GetCpu()); err == nil {
			c.Resources.CPU = float64(mc) / 1000
		}
		if b, err := objects.ParseMemory(r.GetMemory()); err == nil {
			c.Resources.RAM = b
		}
	}
	return c
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
