package objects

// Function Mesh runtimes (golang, python), the pulsar block, Kubernetes-only
// settings and lists of Function Mesh documents. The mapping table is
// docs/migration.md.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// CRDCode is a Function Mesh golang or python runtime block, handed to a
// PackageResolver.
type CRDCode struct {
	// Language is "go" or "python".
	Language string
	// File is the go or py field: the executable, .wasm module, .py file,
	// .zip or .whl.
	File string
	// Location is goLocation or pyLocation (a URL the resolver fetches:
	// http(s)://, file://, function://sha256:...); empty: File is a path
	// relative to the directory of the file being decoded.
	Location string
	// ClassName is the function's className (python: MODULE.NAME). Empty
	// for golang.
	ClassName string
	// ForwardProperties is forwardSourceMessageProperty.
	ForwardProperties bool
}

// PackageResolver turns Function Mesh code into a meshfed runtime: it
// fetches the code, stores it as a package and returns the exec or wasm
// runtime that runs it.
type PackageResolver interface {
	ResolveCode(code CRDCode) (*meshfedv1.Runtime, error)
}

// ClusterLookup returns the spec of the meshfed Cluster named name, for
// checking a Function Mesh pulsar block against it.
type ClusterLookup func(name string) (*meshfedv1.ClusterSpec, error)

// crdCode is a runtime block being converted; block is "golang" or "python".
type crdCode struct {
	CRDCode
	block string
}

// crdKubernetesOnly are function fields that configure Kubernetes objects
// only (images, pods' volumes, the operator's layout); meshfed has no such
// objects and ignores them, as docs/migration.md lists.
var crdKubernetesOnly = map[string]bool{
	"image": true, "imagePullPolicy": true, "imageHasPulsarctl": true, "imageHasGet": true,
	"downloaderImage": true, "cleanupImage": true, "filebeatImage": true,
	"volumeMounts": true, "volumeClaimTemplates": true, "persistentVolumeClaimRetentionPolicy": true,
	"showPreciseParallelism": true,
}

// crdRefusals say why a function field that is set (not zero) cannot be
// converted; crdZeroOnly holds their keys.
var crdRefusals = map[string]string{
	"secretsMap":          "secrets cannot be converted yet: meshfed functions have no secrets field; remove secretsMap and have the function read its credentials from a file on the agent host",
	"retainOrdering":      "retainOrdering cannot be converted: meshfed keeps per-key order (Key_Shared); remove it",
	"retainKeyOrdering":   "retainKeyOrdering: true is meshfed's behaviour but cannot be requested; remove it",
	"skipToLatest":        "skipToLatest cannot be converted; use subscriptionPosition: latest for a new subscription",
	"cleanupSubscription": "cleanupSubscription cannot be converted: meshfed keeps a deleted function's subscription; remove it",
	"runtimeFlags":        "runtimeFlags are JVM or interpreter flags meshfed cannot pass; remove them",
	"windowConfig":        "window functions cannot be converted; meshfed functions see one message at a time",
	"statefulConfig":      "statefulConfig cannot be converted: meshfed keeps function state itself (no BookKeeper table service to name); remove it",
	"sourceConfig":        "sourceConfig cannot be converted: meshfed functions read Pulsar topics only",
	"sinkConfig":          "sinkConfig cannot be converted: meshfed functions write Pulsar topics only",
}

var crdZeroOnly = func() map[string]bool {
	m := map[string]bool{}
	for k := range crdRefusals {
		m[k] = true
	}
	return m
}()

// isZero reports a JSON value that states nothing: false, "", 0, {} or [].
func isZero(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case bool:
		return !t
	case string:
		return t == ""
	case json.Number:
		f, err := t.Float64()
		return err == nil && f == 0
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// crdNodeSelector reads a pod's nodeSelector (path is the pod): the
// labels a node must carry become the labels an agent must carry
// (placement.nodeSelector); nil when none is set.
func (w *walker) crdNodeSelector(path string, v any) map[string]string {
	obj, ok := v.(map[string]any)
	if !ok || isZero(obj["nodeSelector"]) {
		return nil // crdPod reported a pod that is not an object
	}
	np := join(path, "nodeSelector")
	m, ok := obj["nodeSelector"].(map[string]any)
	if !ok {
		w.typeError(np, "a map of label to value", obj["nodeSelector"])
		return nil
	}
	sel := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s, ok := m[k].(string)
		if !ok {
			w.typeError(join(np, k), "a string", m[k])
			continue
		}
		sel[k] = s
	}
	return sel
}

// crdPod reads a function's pod policy: everything in it shapes the
// Kubernetes pod and is ignored, except env, which the function sees and
// is returned (name → value) for an exec runtime, and nodeSelector and
// the autoscaler, read by crdNodeSelector and crdAutoscaling.
func (w *walker) crdPod(path string, v any) map[string]string {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return nil
	}
	if isZero(obj["env"]) {
		return nil
	}
	ep := join(path, "env")
	list, ok := obj["env"].([]any)
	if !ok {
		w.typeError(ep, "a list", obj["env"])
		return nil
	}
	env := map[string]string{}
	for i, item := range list {
		ip := index(ep, i)
		m, ok := item.(map[string]any)
		if !ok {
			w.typeError(ip, "an object", item)
			continue
		}
		name, _ := m["name"].(string)
		value, isString := m["value"].(string)
		switch {
		case name == "":
			w.errs.add(join(ip, "name"), "required: the variable's name")
		case m["valueFrom"] != nil:
			w.errs.add(join(ip, "valueFrom"), "values from Kubernetes secrets, config maps or fields cannot be converted; give value")
		case m["value"] != nil && !isString:
			w.typeError(join(ip, "value"), "a string", m["value"])
		default:
			env[name] = value
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if key != "name" && key != "value" && key != "valueFrom" {
				w.errs.add(join(ip, key), "%q has no meshfed equivalent; remove it", key)
			}
		}
	}
	return env
}

// crdCodeBlock reads a golang ({go, goLocation, log}) or python ({py,
// pyLocation, log}) block.
func (w *walker) crdCodeBlock(path, block string, v any) *crdCode {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return nil
	}
	lang, fileKey := "go", "go"
	if block == "python" {
		lang, fileKey = "python", "py"
	}
	c := &crdCode{CRDCode: CRDCode{Language: lang}, block: block}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fp := join(path, key)
		val := obj[key]
		switch key {
		case fileKey, fileKey + "Location":
			s, ok := val.(string)
			if !ok {
				w.typeError(fp, "a string", val)
				continue
			}
			if key == fileKey {
				c.File = s
			} else {
				c.Location = s
			}
		case "log":
			if !isZero(val) {
				w.errs.add(fp, "runtime log settings cannot be converted: the agent logs each line the function writes to stderr (DEBUG:, INFO:, ... prefixes set the level); remove log")
			}
		default:
			w.errs.add(fp, "%q has no meshfed equivalent; remove it", key)
		}
	}
	if c.File == "" {
		w.errs.add(join(path, fileKey), "required: the %s code to run", lang)
		return nil
	}
	return c
}

// crdRuntime resolves the golang or python block of the function at path
// to a runtime.
func (o DecodeOptions) crdRuntime(w *walker, fnPath string, c *crdCode) *meshfedv1.Runtime {
	if c == nil {
		return nil
	}
	path := join(fnPath, c.block)
	if c.Language == "go" && c.ClassName != "" {
		w.errs.add(join(fnPath, "className"), "a golang function has no className; remove it")
		return nil
	}
	if o.Packages == nil {
		w.errs.add(path, "%s code cannot be packaged here; apply the file with meshfed apply or meshfed import, which upload it", c.block)
		return nil
	}
	rt, err := o.Packages.ResolveCode(c.CRDCode)
	if err != nil {
		w.errs.add(path, "%v", err)
		return nil
	}
	return rt
}

// crdPulsar checks a function's pulsar block against the Cluster it runs
// in: meshfed agents reach a cluster with the Cluster object's settings, so
// the block is accepted when it asks for what the Cluster already does.
func (o DecodeOptions) crdPulsar(w *walker, path string, v any, cluster string) {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return
	}
	var spec *meshfedv1.ClusterSpec
	lookedUp := false
	clusterSpec := func(fp string) *meshfedv1.ClusterSpec {
		if lookedUp {
			return spec
		}
		lookedUp = true
		switch {
		case cluster == "":
			w.errs.add(fp, "cannot be checked without a cluster: give --cluster or clusterName")
		case o.Clusters == nil:
			w.errs.add(fp, "cannot be checked against cluster %q here; apply the file with meshfed apply, which reads the Cluster", cluster)
		default:
			s, err := o.Clusters(cluster)
			if err != nil {
				w.errs.add(fp, "cannot be checked against cluster %q: %v", cluster, err)
			}
			spec = s
		}
		return spec
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fp := join(path, key)
		val := obj[key]
		if isZero(val) {
			continue
		}
		switch key {
		case "pulsarConfig":
			// A ConfigMap with webServiceURL and brokerServiceURL: meshfed
			// connects with the Cluster's serviceURL and adminURL.
			if _, ok := val.(string); !ok {
				w.typeError(fp, "a string", val)
			}
		case "authSecret":
			if s := clusterSpec(fp); s != nil && s.GetAuth().GetAuthPlugin() == "" {
				w.errs.add(fp, "the function authenticates but cluster %q has no auth; set the Cluster's spec.auth (authPlugin, authParams)", cluster)
			}
		case "tlsSecret":
			if s := clusterSpec(fp); s != nil && !strings.HasPrefix(s.GetServiceUrl(), "pulsar+ssl://") {
				w.errs.add(fp, "the function uses TLS but cluster %q's serviceURL %q is not pulsar+ssl://; fix the Cluster", cluster, s.GetServiceUrl())
			}
		case "authConfig":
			if s := clusterSpec(fp); s != nil {
				w.crdAuthConfig(fp, val, cluster, s.GetAuth())
			}
		case "tlsConfig":
			if s := clusterSpec(fp); s != nil {
				w.crdTLSConfig(fp, val, cluster, s)
			}
		case "cleanupAuthConfig":
			w.errs.add(fp, "cannot be converted: meshfed does not delete subscriptions, so it needs no cleanup credentials; remove it")
		default:
			w.errs.add(fp, "%q has no meshfed equivalent; remove it", key)
		}
	}
}

// authPluginNames maps Pulsar's authentication class names to meshfed's
// short plugin names.
var authPluginNames = map[string]string{
	"org.apache.pulsar.client.impl.auth.AuthenticationToken":         "token",
	"org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2": "oauth2",
	"org.apache.pulsar.client.impl.auth.AuthenticationTls":           "tls",
	"org.apache.pulsar.client.impl.auth.AuthenticationBasic":         "basic",
}

func shortPlugin(p string) string {
	if s, ok := authPluginNames[p]; ok {
		return s
	}
	return strings.ToLower(p)
}

func (w *walker) crdAuthConfig(path string, v any, cluster string, auth *meshfedv1.ClusterAuth) {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return
	}
	have := shortPlugin(auth.GetAuthPlugin())
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fp := join(path, key)
		val := obj[key]
		if isZero(val) {
			continue
		}
		want := ""
		switch key {
		case "genericAuth":
			m, ok := val.(map[string]any)
			if !ok {
				w.typeError(fp, "an object", val)
				continue
			}
			p, _ := m["clientAuthenticationPlugin"].(string)
			want = shortPlugin(p)
			if want == "" {
				w.errs.add(join(fp, "clientAuthenticationPlugin"), "required")
				continue
			}
		case "oauth2Config":
			want = "oauth2"
		default:
			w.errs.add(fp, "%q has no meshfed equivalent; remove it", key)
			continue
		}
		if have != want {
			w.errs.add(fp, "the function authenticates with %s but cluster %q is set up with %s; meshfed agents use the Cluster's auth: set its spec.auth.authPlugin to %s (secrets as file:// or env: references)",
				want, cluster, orNone(have), want)
		}
	}
}

func (w *walker) crdTLSConfig(path string, v any, cluster string, spec *meshfedv1.ClusterSpec) {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return
	}
	auth := spec.GetAuth()
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fp := join(path, key)
		val := obj[key]
		switch key {
		case "enabled", "allowInsecure", "hostnameVerification":
			b, ok := val.(bool)
			if !ok {
				w.typeError(fp, "true or false", val)
				continue
			}
			var have bool
			switch key {
			case "enabled":
				have = strings.HasPrefix(spec.GetServiceUrl(), "pulsar+ssl://")
			case "allowInsecure":
				have = auth.GetTlsAllowInsecureConnection()
			default:
				have = auth.TlsEnableHostnameVerification == nil || auth.GetTlsEnableHostnameVerification()
			}
			if b != have {
				w.errs.add(fp, "is %t but cluster %q has %t; meshfed agents use the Cluster's TLS settings: change the Cluster (serviceURL pulsar+ssl://, spec.auth.tlsAllowInsecureConnection, spec.auth.tlsEnableHostnameVerification) or this field", b, cluster, have)
			}
		case "certSecretName", "certSecretKey":
			if _, ok := val.(string); !ok {
				w.typeError(fp, "a string", val)
				continue
			}
			if !isZero(val) && auth.GetTlsTrustCertsFilePath() == "" {
				w.errs.add(fp, "the function trusts a CA from a Kubernetes secret but cluster %q names no CA file; set the Cluster's spec.auth.tlsTrustCertsFilePath to the CA's path on the agent hosts", cluster)
			}
		default:
			w.errs.add(fp, "%q has no meshfed equivalent; remove it", key)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no authentication"
	}
	return s
}

// kubernetesDoc reports a Kubernetes ConfigMap or Secret document (the
// Function Mesh samples ship them next to the custom resources), by kind
// and name.
func kubernetesDoc(v any) (kind, name string, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || m["apiVersion"] != "v1" {
		return "", "", false
	}
	kind, _ = m["kind"].(string)
	if kind != "ConfigMap" && kind != "Secret" {
		return "", "", false
	}
	md, _ := m["metadata"].(map[string]any)
	name, _ = md["name"].(string)
	return kind, name, true
}

// expandLists replaces each list document (Kubernetes' apiVersion v1 kind
// List, or a FunctionMeshList or FunctionList) by its items; each item
// counts as one document, as elements of a JSON array do.
func expandLists(docs []rawDoc) []rawDoc {
	var out []rawDoc
	for _, d := range docs {
		m, ok := d.value.(map[string]any)
		if !ok || !isListDoc(m) {
			out = append(out, d)
			continue
		}
		items, ok := m["items"].([]any)
		if !ok && m["items"] != nil {
			out = append(out, rawDoc{err: &FieldError{Path: "items", Reason: fmt.Sprintf("expected a list, got %s", describe(m["items"]))}})
			continue
		}
		for _, it := range items {
			out = append(out, rawDoc{value: it})
		}
	}
	return out
}

func isListDoc(m map[string]any) bool {
	switch {
	case m["apiVersion"] == "v1" && m["kind"] == "List":
		return true
	case m["apiVersion"] == CRDAPIVersion:
		return m["kind"] == crdKindFunctionList || m["kind"] == crdKindFunctionMeshList
	}
	return false
}
