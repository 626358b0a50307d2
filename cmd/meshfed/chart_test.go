package main

// The Helm chart in deploy/helm/meshfed, rendered with Helm's own Go
// packages (no helm binary, no network, no Kubernetes cluster): every
// rendered object decodes strictly into its Kubernetes type, the rendered
// server and agent command lines parse with this binary's flags, and Helm's
// linter passes. The checks of what the objects say are in
// chart_check_test.go.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir       = "../../deploy/helm/meshfed"
	chartRelease   = "prod"
	chartNamespace = "meshfed-system"
)

// chartCases are the values sets rendered and linted.
var chartCases = []struct {
	name, values string
}{
	{"defaults", ``},
	{"cert-manager", `
tls:
  source: certManager
  certManager:
    issuerRef: {name: meshfed-ca, kind: ClusterIssuer, group: cert-manager.io}
    clients: [admin]
agents:
  - cluster: us-east
    credentials: {secretName: pulsar-us-east, token: token, ca: ca.crt}
`},
	{"several agents, ServiceMonitor, five servers, a CA Secret", `
server:
  replicas: 5
  extraArgs: ["--snapshot-threshold=16384"]
tls:
  ca: {secretName: meshfed-ca, key: ca.pem}
agents:
  - cluster: us-east
    credentials: {secretName: pulsar-us-east, token: token, ca: ca.crt}
  - cluster: eu-west
    name: agent-eu-west-1
    pulsarURL: pulsar+ssl://pulsar.eu.example:6651
    pulsarAdminURL: https://pulsar.eu.example:8443
    capacity: 20
    runtimes: builtin,exec
    labels: {zone: eu-west-1a}
    credentials: {secretName: pulsar-eu, oauth2Key: credentials.json, ca: ca.pem}
  - cluster: ap-south
    credentials: {secretName: pulsar-ap, tlsCert: tls.crt, tlsKey: tls.key, ca: ca.crt}
  - cluster: sa-east
    credentials: {secretName: pulsar-sa, password: pw}
  - cluster: sa-east
    name: agent-sa-east-anonymous
serviceMonitor:
  enabled: true
  labels: {release: prometheus}
`},
	{"plaintext single server", `
tls: {enabled: false}
server: {auth: false, replicas: 1}
agents:
  - cluster: dev
`},
}

// renderedChart is one rendering: the objects by template, and NOTES.txt.
type renderedChart struct {
	values map[string]any
	objs   []renderedObject
	notes  string
}

// renderedObject is one YAML document of a rendered template.
type renderedObject struct {
	template string
	yaml     string
	obj      runtime.Object // decoded; nil for the custom resources below
	custom   any            // *certificate or *serviceMonitor
}

func (o renderedObject) String() string { return o.template }

func loadValues(t *testing.T, s string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &vals); err != nil {
		t.Fatalf("test values: %v", err)
	}
	return vals
}

// renderChart renders the chart as `helm install prod --namespace
// meshfed-system -f values` would, without a cluster.
func renderChart(vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, common.ReleaseOptions{
		Name: chartRelease, Namespace: chartNamespace, Revision: 1, IsInstall: true,
	}, common.DefaultCapabilities, false)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return engine.Render(ch, rv)
}

// strictCodecs decode Kubernetes objects refusing unknown and duplicate
// fields.
var strictCodecs = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)

// decodeObject decodes one document strictly: built-in kinds into their
// k8s.io/api types, the two custom resources the chart uses into the types
// in chart_check_test.go (the fields the chart writes, as the CRDs define
// them).
func decodeObject(doc string) (runtime.Object, any, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return nil, nil, fmt.Errorf("not YAML: %w", err)
	}
	var custom any
	switch head.APIVersion + " " + head.Kind {
	case "cert-manager.io/v1 Certificate":
		custom = &certificate{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		custom = &serviceMonitor{}
	}
	if custom != nil {
		// As the API server reads JSON: field names case-sensitive,
		// unknown and duplicate fields refused.
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", head.Kind, err)
		}
		strict, err := sigsjson.UnmarshalStrict(js, custom)
		if err == nil {
			err = errors.Join(strict...)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", head.Kind, err)
		}
		return nil, custom, nil
	}
	obj, _, err := strictCodecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
	if err != nil {
		return nil, nil, err
	}
	return obj, nil, nil
}

// renderAndDecode renders a values set and decodes every object.
func renderAndDecode(t *testing.T, values string) *renderedChart {
	t.Helper()
	vals := loadValues(t, values)
	files, err := renderChart(vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	rc := &renderedChart{values: vals}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if strings.HasSuffix(name, "NOTES.txt") {
			rc.notes = body
			continue
		}
		docs := releaseutil.SplitManifests(body)
		keys := slices.Collect(maps.Keys(docs))
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			doc := docs[k]
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, custom, err := decodeObject(doc)
			if err != nil {
				t.Errorf("%s: does not decode strictly: %v\n%s", name, err, doc)
				continue
			}
			rc.objs = append(rc.objs, renderedObject{template: name, yaml: doc, obj: obj, custom: custom})
		}
	}
	if len(rc.objs) == 0 {
		t.Fatal("the chart rendered no objects")
	}
	return rc
}

func TestChartRendersStrictObjects(t *testing.T) {
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			rc := renderAndDecode(t, tc.values)
			checkChart(t, rc)
		})
	}
}

// TestChartStrictDecoderRefusesUnknownFields: the decoder the chart test
// trusts does refuse what Kubernetes would not accept.
func TestChartStrictDecoderRefusesUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n",
		"wrong type":      "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: three}\n",
		"duplicate key":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ClusterIP, type: NodePort}\n",
		"unknown kind":    "apiVersion: v1\nkind: Servise\nmetadata: {name: x}\n",
		"certificate":     "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {secretname: y}\n",
		"certificate uri": "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {uri: [y]}\n",
		"certificate dup": "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {secretName: y, secretName: z}\n",
		"servicemonitor":  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoint: []}\n",
	} {
		if _, _, err := decodeObject(doc); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// TestChartRefusesBadValues: values that cannot work fail the rendering
// with a message naming the key: misspelt and mistyped keys by
// values.schema.json, the rest by the templates.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{`server: {replicas: 4}`, "server.replicas: 4 is not an odd count"},
		{`tls: {enabled: false}`, "server.auth needs tls.enabled"},
		{`agents: [{cluster: a, name: x}, {cluster: b, name: x}]`, `agents[1].name: "x" is used twice`},
		// values.schema.json
		{`server: {replicas: 0}`, "'/server/replicas': minimum"},
		{`server: {replica: 3}`, "'/server': additional properties 'replica'"},
		{`tls: {source: vault}`, "'/tls/source': value must be one of"},
		{`agents: [{name: x}]`, "'/agents/0': missing property 'cluster'"},
		{`agents: [{cluster: a, credential: {secretName: s}}]`, "additional properties 'credential' not allowed"},
		{`agents: [{cluster: a, credentials: {secretName: s, tokenFile: t}}]`, "additional properties 'tokenFile'"},
		{`agents: [{cluster: a, runtimes: "builtin,python"}]`, "'/agents/0/runtimes'"},
		{`agentDefaults: {capcity: 5}`, "additional properties 'capcity' not allowed"},
	} {
		_, err := renderChart(loadValues(t, tc.values))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %s: want an error with %q, got %v", tc.values, tc.want, err)
		}
	}
}

// TestChartLint runs Helm's linter (what `helm lint --strict -f values`
// runs) on every values set: no warning and no error.
func TestChartLint(t *testing.T) {
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			res := lint.RunAll(chartDir, loadValues(t, tc.values), chartNamespace)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %v", m)
				} else {
					t.Logf("helm lint (info): %v", m)
				}
			}
		})
	}
}

// podArgs expands $(VAR) references in a container's arguments as the
// kubelet does, from env values and the downward API fields the chart
// uses; an unresolved reference is an error.
func podArgs(args []string, env map[string]string) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		var b strings.Builder
		for {
			j := strings.Index(a, "$(")
			if j < 0 {
				b.WriteString(a)
				break
			}
			k := strings.IndexByte(a[j:], ')')
			if k < 0 {
				return nil, fmt.Errorf("argument %q: unterminated $(", args[i])
			}
			name := a[j+2 : j+k]
			v, ok := env[name]
			if !ok {
				return nil, fmt.Errorf("argument %q: $(%s) is not in the container's environment", args[i], name)
			}
			b.WriteString(a[:j] + v)
			a = a[j+k+1:]
		}
		out[i] = b.String()
	}
	return out, nil
}

// parseCommandLine parses a rendered command line with meshfed's own
// command tree: an unknown subcommand or flag, a bad value or a stray
// argument is an error. It returns the subcommand, its flags parsed.
func parseCommandLine(args []string) (*cobra.Command, error) {
	global = globalFlags{}
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, err
	}
	if cmd == root {
		return nil, errors.New("no meshfed subcommand")
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, fmt.Errorf("meshfed %s: %w", cmd.Name(), err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return nil, err
	}
	return cmd, nil
}
