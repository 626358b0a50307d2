package main

// meshfed import --functions-worker: a Pulsar Functions worker's functions,
// read through its REST API, written as Function Mesh Function resources
// that the import then converts like any other.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/cobra"
)

// fetchWorkerFunctions writes one Function resource (JSON) per function of
// the namespaces into dir, with the function's code next to it.
func fetchWorkerFunctions(cmd *cobra.Command, url, tokenFile string, namespaces []string, dir string) error {
	admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: url, TokenFile: tokenFile, PulsarAPIVersion: config.V3})
	if err != nil {
		return fmt.Errorf("functions worker %s: %w", url, err)
	}
	fns := admin.Functions()
	for _, ns := range namespaces {
		tenant, namespace, ok := strings.Cut(ns, "/")
		if !ok || tenant == "" || namespace == "" || strings.Contains(namespace, "/") {
			return usageError{fmt.Errorf("--namespace %q: want tenant/namespace", ns)}
		}
		names, err := fns.GetFunctions(tenant, namespace)
		if err != nil {
			return fmt.Errorf("list functions of %s on %s: %w", ns, url, err)
		}
		for _, name := range names {
			fqfn := ns + "/" + name
			cfg, err := fns.GetFunction(tenant, namespace, name)
			if err != nil {
				return fmt.Errorf("get function %s: %w", fqfn, err)
			}
			cr, code, err := functionResource(cfg, func(note string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: function %s: %s\n", fqfn, note)
			})
			if err != nil {
				return fmt.Errorf("function %s: %w", fqfn, err)
			}
			base := tenant + "." + namespace + "." + name
			if code != "" {
				fdir := filepath.Join(dir, base)
				if err := os.MkdirAll(fdir, 0o755); err != nil {
					return fmt.Errorf("function %s: %w", fqfn, err)
				}
				path := filepath.Join(fdir, code)
				if err := fns.DownloadFunctionByNs(path, tenant, namespace, name); err != nil {
					return fmt.Errorf("download the code of function %s: %w", fqfn, err)
				}
				spec := cr["spec"].(map[string]any)
				if g, ok := spec["golang"].(map[string]any); ok && !strings.HasSuffix(code, ".wasm") && isWasm(path) {
					// A WebAssembly module (meshfed's Functions API names
					// them function://sha256:...): run it with the wasm
					// runtime.
					if err := os.Rename(path, path+".wasm"); err != nil {
						return fmt.Errorf("function %s: %w", fqfn, err)
					}
					g["go"] = code + ".wasm"
				}
				for _, block := range []string{"golang", "python"} {
					if b, ok := spec[block].(map[string]any); ok {
						for k, v := range b {
							b[k] = filepath.Join(base, v.(string))
						}
					}
				}
			}
			data, err := json.MarshalIndent(cr, "", "  ")
			if err != nil {
				return fmt.Errorf("function %s: %w", fqfn, err)
			}
			if err := os.WriteFile(filepath.Join(dir, base+".json"), data, 0o644); err != nil {
				return fmt.Errorf("function %s: %w", fqfn, err)
			}
		}
	}
	return nil
}

// functionResource maps a Pulsar FunctionConfig onto a Function Mesh
// Function resource and names the code file to download (empty: none). A
// field with no Function Mesh counterpart is an error naming it; a setting
// meshfed does not honour but Pulsar sets by default is passed to note.
func functionResource(cfg utils.FunctionConfig, note func(string)) (map[string]any, string, error) {
	spec := map[string]any{
		"name": cfg.Name, "tenant": cfg.Tenant, "namespace": cfg.Namespace,
		"forwardSourceMessageProperty": cfg.ForwardSourceMessageProperty,
	}
	if !cfg.AutoAck {
		// Pulsar deprecated autoAck for processingGuarantees MANUAL, which
		// the conversion refuses.
		note("autoAck false is not honoured: meshfed acknowledges messages as processingGuarantees says")
	}
	set := func(key string, v any) {
		if !isZeroValue(v) {
			spec[key] = v
		}
	}
	set("className", cfg.ClassName)
	set("replicas", cfg.Parallelism)
	set("processingGuarantee", strings.ToLower(cfg.ProcessingGuarantees))
	set("subscriptionName", cfg.SubName)
	set("subscriptionPosition", strings.ToLower(cfg.SubscriptionPosition))
	set("retainOrdering", cfg.RetainOrdering)
	set("retainKeyOrdering", cfg.RetainKeyOrdering)
	set("skipToLatest", cfg.SkipToLatest)
	set("deadLetterTopic", cfg.DeadLetterTopic)
	set("logTopic", cfg.LogTopic)
	set("runtimeFlags", cfg.RuntimeFlags)
	set("maxPendingAsyncRequests", cfg.MaxPendingAsyncRequests)
	if cfg.MaxMessageRetries != nil && *cfg.MaxMessageRetries > 0 {
		spec["maxMessageRetry"] = *cfg.MaxMessageRetries
	}
	if cfg.TimeoutMs != nil && *cfg.TimeoutMs > 0 {
		spec["timeout"] = *cfg.TimeoutMs
	}
	if len(cfg.UserConfig) > 0 {
		spec["funcConfig"] = cfg.UserConfig
	}
	if len(cfg.Secrets) > 0 {
		spec["secretsMap"] = cfg.Secrets
	}
	if cfg.WindowConfig != nil {
		spec["windowConfig"] = cfg.WindowConfig
	}
	if cfg.CleanupSubscription {
		note("cleanupSubscription is not honoured: meshfed keeps a deleted function's subscription")
	}
	if cfg.CustomRuntimeOptions != "" {
		// meshfed's own Functions API names a function's cluster here.
		var opts map[string]any
		err := json.Unmarshal([]byte(cfg.CustomRuntimeOptions), &opts)
		cluster, isString := opts["cluster"].(string)
		if err != nil || len(opts) != 1 || !isString || cluster == "" {
			return nil, "", fmt.Errorf("functionConfig.customRuntimeOptions %q cannot be converted: only {\"cluster\": NAME} names a meshfed setting", cfg.CustomRuntimeOptions)
		}
		spec["clusterName"] = cluster
	}
	// Fields of the worker's own with no Function Mesh counterpart.
	for field, v := range map[string]any{
		"exposePulsarAdminClientEnabled": cfg.ExposePulsarAdminClientEnabled, "batchBuilder": cfg.BatchBuilder,
	} {
		if !isZeroValue(v) {
			return nil, "", fmt.Errorf("functionConfig.%s cannot be converted; remove it on the worker or convert by hand", field)
		}
	}
	// Inputs: Pulsar merges inputs with the keys of the per-topic maps.
	input := map[string]any{}
	var topics []string
	seen := map[string]bool{}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	for _, t := range cfg.Inputs {
		add(t)
	}
	for field, m := range map[string]map[string]string{"customSerdeInputs": cfg.CustomSerdeInputs, "customSchemaInputs": cfg.CustomSchemaInputs} {
		for t, v := range m {
			if v != "" {
				return nil, "", fmt.Errorf("functionConfig.%s[%s] = %q cannot be converted: meshfed functions read raw messages", field, t, v)
			}
			add(t)
		}
	}
	for t, c := range cfg.InputSpecs {
		if c.SchemaType != "" || c.SerdeClassName != "" || c.RegexPattern || c.ReceiverQueueSize != 0 || len(c.SchemaProperties) > 0 || len(c.ConsumerProperties) > 0 || c.CryptoConfig != nil {
			return nil, "", fmt.Errorf("functionConfig.inputSpecs[%s] cannot be converted: meshfed functions read raw messages with default consumer settings", t)
		}
		add(t)
	}
	if len(topics) > 0 {
		input["topics"] = topics
	}
	if cfg.TopicsPattern != nil && *cfg.TopicsPattern != "" {
		input["topicPattern"] = *cfg.TopicsPattern
	}
	if cfg.InputTypeClassName != "" {
		input["typeClassName"] = cfg.InputTypeClassName
	}
	spec["input"] = input
	output := map[string]any{}
	for key, v := range map[string]string{"topic": cfg.Output, "sinkSerdeClassName": cfg.OutputSerdeClassName,
		"sinkSchemaType": cfg.OutputSchemaType, "typeClassName": cfg.OutputTypeClassName} {
		if v != "" {
			output[key] = v
		}
	}
	if cfg.ProducerConfig != nil {
		output["producerConf"] = cfg.ProducerConfig
	}
	if len(cfg.CustomSchemaOutputs) > 0 {
		output["customSchemaSinks"] = cfg.CustomSchemaOutputs
	}
	if len(output) > 0 {
		spec["output"] = output
	}
	if r := cfg.Resources; r != nil {
		req := map[string]any{}
		if r.CPU > 0 {
			req["cpu"] = fmt.Sprintf("%g", r.CPU)
		}
		if r.RAM > 0 {
			req["memory"] = fmt.Sprint(r.RAM)
		}
		if len(req) > 0 {
			spec["resources"] = map[string]any{"requests": req}
		}
		if r.Disk > 0 {
			note("resources.disk is not honoured: meshfed functions have no disk quota")
		}
	}
	code := ""
	switch strings.ToUpper(cfg.Runtime) {
	case "PYTHON":
		code = filepath.Base(deref(cfg.Py))
		spec["python"] = map[string]any{"py": code}
	case "GO":
		if name, ok := strings.CutPrefix(deref(cfg.Go), "builtin://"); ok {
			// A builtin of meshfed's own Functions API.
			if cfg.ClassName != "" && cfg.ClassName != name {
				return nil, "", fmt.Errorf("functionConfig.className %q differs from the builtin %q", cfg.ClassName, name)
			}
			spec["className"] = name
			break
		}
		code = filepath.Base(deref(cfg.Go))
		spec["golang"] = map[string]any{"go": code}
	case "JAVA", "":
		// Refused by the conversion, with what to do.
		spec["java"] = map[string]any{"jar": filepath.Base(deref(cfg.Jar))}
	default:
		return nil, "", fmt.Errorf("functionConfig.runtime %q cannot be converted", cfg.Runtime)
	}
	if code == "." || code == "/" {
		return nil, "", fmt.Errorf("functionConfig names no %s code file", strings.ToLower(cfg.Runtime))
	}
	return map[string]any{
		"apiVersion": objects.CRDAPIVersion,
		"kind":       "Function",
		"metadata":   map[string]any{"name": cfg.Name},
		"spec":       spec,
	}, code, nil
}

// isWasm reports a file starting with WebAssembly's magic number.
func isWasm(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "\x00asm"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isZeroValue(v any) bool {
	switch t := v.(type) {
	case string:
		return t == ""
	case int:
		return t == 0
	case bool:
		return !t
	}
	return v == nil
}
