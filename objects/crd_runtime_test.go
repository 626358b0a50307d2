package objects

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// fakePackages resolves code without storing anything: a .wasm module to a
// wasm runtime, anything else to an exec runtime naming the request, so
// tests see what reached the resolver.
type fakePackages struct{ calls []CRDCode }

func (f *fakePackages) ResolveCode(c CRDCode) (*meshfedv1.Runtime, error) {
	f.calls = append(f.calls, c)
	if strings.Contains(c.File, "missing") {
		return nil, errors.New("fetch " + c.File + ": not found")
	}
	if strings.HasSuffix(c.File, ".wasm") {
		return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: "sha256:" + strings.Repeat("a", 64)}}}, nil
	}
	cmd := []string{c.Language, c.File, c.Location, c.ClassName, fmt.Sprint(c.ForwardProperties)}
	return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: cmd, Package: "sha256:" + strings.Repeat("b", 64)}}}, nil
}

// clusters is a ClusterLookup over fixed specs.
func clusters(specs map[string]*meshfedv1.ClusterSpec) ClusterLookup {
	return func(name string) (*meshfedv1.ClusterSpec, error) {
		if s, ok := specs[name]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("cluster %q not found", name)
	}
}

var testClusters = clusters(map[string]*meshfedv1.ClusterSpec{
	"plain": {ServiceUrl: "pulsar://a:6650"},
	"secure": {ServiceUrl: "pulsar+ssl://a:6651", Auth: &meshfedv1.ClusterAuth{
		AuthPlugin: "org.apache.pulsar.client.impl.auth.AuthenticationToken", AuthParams: "file:///etc/token",
		TlsTrustCertsFilePath: "/etc/ca.pem"}},
})

// fnDoc is a Function document in the shape of Function Mesh's samples,
// with extra spec lines.
func fnDoc(extra string) string {
	return `apiVersion: compute.functionmesh.io/v1alpha1
kind: Function
metadata:
  name: go-fn
  namespace: default
spec:
  forwardSourceMessageProperty: true
  maxPendingAsyncRequests: 1000
  replicas: 1
  maxReplicas: 1
  logTopic: persistent://public/default/go-fn-logs
  input:
    topics: [persistent://public/default/go-in]
  output:
    topic: persistent://public/default/go-out
  resources:
    requests: {cpu: "0.1", memory: 1G}
  pulsar:
    pulsarConfig: test-pulsar
  clusterName: plain
  autoAck: true
  image: streamnative/pulsar-functions-go-runner
  pod:
    labels: {location: mtv}
    volumes: [{name: cache, emptyDir: {}}]
` + extra
}

const goBlock = "  golang:\n    go: go_func_all\n"

func TestDecodeCRDRuntimes(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		// want checks the one converted function.
		want func(t *testing.T, md *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, calls []CRDCode)
	}{
		{"golang executable", fnDoc(goBlock), func(t *testing.T, md *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, calls []CRDCode) {
			if md.GetName() != "go-fn" || f.GetName() != "go-fn" || md.GetTenant() != "public" || md.GetNamespace() != "default" {
				t.Errorf("names: mesh %v function %q", md, f.GetName())
			}
			want := CRDCode{Language: "go", File: "go_func_all", ForwardProperties: true}
			if len(calls) != 1 || calls[0] != want {
				t.Errorf("resolver calls = %+v, want [%+v]", calls, want)
			}
			if got := f.GetRuntime().GetExec().GetCommand(); len(got) == 0 || got[0] != "go" {
				t.Errorf("runtime = %v", f.GetRuntime())
			}
			if f.GetInput().GetSubscription() != "public/default/go-fn" {
				t.Errorf("subscription = %q, want Pulsar's default public/default/go-fn", f.GetInput().GetSubscription())
			}
			if f.GetInput().GetCluster() != "plain" || f.GetOutput().GetCluster() != "plain" || f.GetLogTopic() != "persistent://public/default/go-fn-logs" {
				t.Errorf("function = %v", f)
			}
		}},
		{"golang wasm from a URL", fnDoc("  golang: {go: f.wasm, goLocation: 'https://example.com/f.wasm'}\n"), func(t *testing.T, _ *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, calls []CRDCode) {
			if calls[0].Location != "https://example.com/f.wasm" || f.GetRuntime().GetWasm().GetPackage() == "" {
				t.Errorf("calls %+v runtime %v", calls, f.GetRuntime())
			}
		}},
		{"python", strings.Replace(fnDoc("  python: {py: exclamation_function.py, pyLocation: function://public/default/ex@v1}\n  className: exclamation_function.ExclamationFunction\n"),
			"name: go-fn\n", "name: py-fn\n", 1), func(t *testing.T, _ *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, calls []CRDCode) {
			want := CRDCode{Language: "python", File: "exclamation_function.py", Location: "function://public/default/ex@v1",
				ClassName: "exclamation_function.ExclamationFunction", ForwardProperties: true}
			if len(calls) != 1 || calls[0] != want {
				t.Errorf("resolver calls = %+v, want [%+v]", calls, want)
			}
			if f.GetInput().GetSubscription() != "public/default/py-fn" || f.GetRuntime().GetBuiltin() != "" {
				t.Errorf("function = %v", f)
			}
		}},
		{"pod nodeSelector", strings.Replace(fnDoc(goBlock), "  pod:\n", "  pod:\n    nodeSelector: {zone: east, disk: ssd}\n", 1), func(t *testing.T, _ *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, _ []CRDCode) {
			if sel := f.GetPlacement().GetNodeSelector(); len(sel) != 2 || sel["zone"] != "east" || sel["disk"] != "ssd" {
				t.Errorf("placement.nodeSelector = %v, want zone=east, disk=ssd", sel)
			}
		}},
		{"pod env", strings.Replace(fnDoc(goBlock), "  pod:\n", "  pod:\n    env: [{name: MODE, value: fast}, {name: EMPTY}]\n", 1), func(t *testing.T, _ *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, _ []CRDCode) {
			env := f.GetRuntime().GetExec().GetEnv()
			if env["MODE"] != "fast" || len(env) != 2 || env["EMPTY"] != "" {
				t.Errorf("exec env = %v, want MODE=fast and EMPTY=", env)
			}
		}},
		{"subscriptionName kept", fnDoc(goBlock + "  subscriptionName: legacy-sub\n  tenant: acme\n  namespace: ns\n"), func(t *testing.T, md *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, _ []CRDCode) {
			if f.GetInput().GetSubscription() != "legacy-sub" || md.GetTenant() != "acme" || md.GetNamespace() != "ns" {
				t.Errorf("subscription %q tenant %q namespace %q", f.GetInput().GetSubscription(), md.GetTenant(), md.GetNamespace())
			}
		}},
		{"spec.name names the function", fnDoc(goBlock + "  name: inner\n"), func(t *testing.T, md *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, _ []CRDCode) {
			if md.GetName() != "go-fn" || f.GetName() != "inner" || f.GetInput().GetSubscription() != "public/default/inner" {
				t.Errorf("mesh %q function %q subscription %q", md.GetName(), f.GetName(), f.GetInput().GetSubscription())
			}
		}},
		{"pulsar block matching the cluster", strings.Replace(fnDoc(goBlock+`  pulsar:
    pulsarConfig: test-pulsar
    authSecret: auth
    tlsSecret: tls
    authConfig:
      genericAuth: {clientAuthenticationPlugin: org.apache.pulsar.client.impl.auth.AuthenticationToken, clientAuthenticationParameters: "token:x"}
    tlsConfig: {enabled: true, allowInsecure: false, hostnameVerification: true, certSecretName: ca, certSecretKey: ca.pem}
`), "  pulsar:\n    pulsarConfig: test-pulsar\n  clusterName: plain\n", "  clusterName: secure\n", 1),
			func(t *testing.T, _ *meshfedv1.ObjectMeta, f *meshfedv1.FunctionSpec, _ []CRDCode) {
				if f.GetInput().GetCluster() != "secure" {
					t.Errorf("cluster = %q", f.GetInput().GetCluster())
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pk := &fakePackages{}
			objs, err := DecodeOptions{Packages: pk, Clusters: testClusters}.Decode("fn.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 1 || len(objs[0].GetFunctionMesh().GetSpec().GetFunctions()) != 1 {
				t.Fatalf("objects = %v", objs)
			}
			fm := objs[0].GetFunctionMesh()
			tc.want(t, fm.GetMetadata(), fm.GetSpec().GetFunctions()[0], pk.calls)
			if err := Validate(objs[0]); err != nil {
				t.Errorf("converted mesh does not validate: %v", err)
			}
		})
	}
}

func TestDecodeCRDMeshDefaultSubscriptions(t *testing.T) {
	doc := `apiVersion: compute.functionmesh.io/v1alpha1
kind: FunctionMesh
metadata: {name: pipeline}
spec:
  functions:
    - {name: ex1, className: identity, clusterName: a, input: {topics: [in]}, output: {topic: mid}}
    - {name: ex2, className: identity, clusterName: a, input: {topics: [mid]}, output: {topic: out}}
`
	objs, err := Decode("m.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	fns := objs[0].GetFunctionMesh().GetSpec().GetFunctions()
	if fns[0].GetInput().GetSubscription() != "public/default/ex1" || fns[1].GetInput().GetSubscription() != "public/default/ex2" {
		t.Errorf("subscriptions = %q, %q", fns[0].GetInput().GetSubscription(), fns[1].GetInput().GetSubscription())
	}
	if err := Validate(objs[0]); err != nil {
		t.Error(err)
	}
}

func TestDecodeCRDLists(t *testing.T) {
	item := func(name string) string {
		return "  - apiVersion: compute.functionmesh.io/v1alpha1\n    kind: Function\n    metadata: {name: " + name + "}\n" +
			"    spec: {className: identity, clusterName: a, input: {topics: [in-" + name + "]}}\n"
	}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"v1 List", "apiVersion: v1\nkind: List\nitems:\n" + item("f1") + item("f2"), []string{"f1", "f2"}},
		{"FunctionList", "apiVersion: compute.functionmesh.io/v1alpha1\nkind: FunctionList\nmetadata: {}\nitems:\n" + item("f3"), []string{"f3"}},
		{"List then a document", "apiVersion: v1\nkind: List\nitems:\n" + item("f4") + "---\n" + strings.ReplaceAll(strings.TrimPrefix(item("f5"), "  - "), "\n    ", "\n"), []string{"f4", "f5"}},
		{"empty List", "apiVersion: v1\nkind: List\nitems: []\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode("list.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetFunctionMesh().GetMetadata().GetName())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("meshes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeCRDKubernetesDocs(t *testing.T) {
	doc := fnDoc(goBlock) + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: test-pulsar}\ndata: {webServiceURL: 'http://x:8080'}\n" +
		"---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: eA==}\n"
	var skipped []string
	objs, err := DecodeOptions{Packages: &fakePackages{}, OnSkip: func(doc int, kind, name string) {
		skipped = append(skipped, fmt.Sprintf("%d %s %s", doc, kind, name))
	}}.Decode("s.yaml", []byte(doc))
	if err != nil || len(objs) != 1 {
		t.Fatalf("objects %v, error %v", objs, err)
	}
	if fmt.Sprint(skipped) != "[2 ConfigMap test-pulsar 3 Secret s]" {
		t.Errorf("skipped = %v", skipped)
	}
	_, err = DecodeOptions{Packages: &fakePackages{}}.Decode("s.yaml", []byte(doc))
	checkErrs(t, err, "s.yaml", []wantErr{
		{2, "kind", "Kubernetes ConfigMap documents are not meshfed objects"},
		{3, "kind", "Kubernetes Secret documents are not meshfed objects"},
	})
}

func TestDecodeCRDRuntimeErrors(t *testing.T) {
	secure := func(s string) string {
		return strings.Replace(s, "clusterName: plain", "clusterName: secure", 1)
	}
	tests := []struct {
		name string
		opts DecodeOptions
		doc  string
		want []wantErr
	}{
		{"java", DecodeOptions{}, fnDoc("  className: org.example.Ex\n  java: {jar: ex.jar, jarLocation: public/default/ex}\n"),
			[]wantErr{{1, "spec.java", "Java functions cannot run on meshfed (it has no JVM runtime): port the function to Go"}}},
		{"java in a mesh", DecodeOptions{}, "apiVersion: compute.functionmesh.io/v1alpha1\nkind: FunctionMesh\nmetadata: {name: m}\nspec:\n  functions:\n" +
			"    - {name: ex1, className: org.example.Ex, clusterName: a, input: {topics: [in]}, java: {jar: ex.jar}}\n",
			[]wantErr{{1, "spec.functions[0].java", "Java functions cannot run on meshfed"}}},
		{"genericRuntime", DecodeOptions{}, fnDoc("  genericRuntime: {functionFile: f.js, language: nodejs}\n"),
			[]wantErr{{1, "spec.genericRuntime", "genericRuntime cannot be converted"}}},
		{"no resolver", DecodeOptions{}, fnDoc(goBlock),
			[]wantErr{{1, "spec.golang", "golang code cannot be packaged here"}}},
		{"resolver error", DecodeOptions{Packages: &fakePackages{}}, fnDoc("  golang: {go: missing}\n"),
			[]wantErr{{1, "spec.golang", "fetch missing: not found"}}},
		{"no go file", DecodeOptions{Packages: &fakePackages{}}, fnDoc("  golang: {goLocation: 'https://x/y'}\n"),
			[]wantErr{{1, "spec.golang.go", "required: the go code to run"}}},
		{"two runtimes", DecodeOptions{Packages: &fakePackages{}}, fnDoc(goBlock + "  python: {py: f.py}\n"),
			[]wantErr{{1, "spec.python", "golang and python are both set"}}},
		{"golang className", DecodeOptions{Packages: &fakePackages{}}, fnDoc(goBlock + "  className: x\n"),
			[]wantErr{{1, "spec.className", "a golang function has no className"}}},
		{"runtime log", DecodeOptions{Packages: &fakePackages{}}, fnDoc("  golang: {go: f, log: {level: debug}}\n"),
			[]wantErr{{1, "spec.golang.log", "runtime log settings cannot be converted"}}},
		{"secretsMap", DecodeOptions{Packages: &fakePackages{}}, fnDoc(goBlock + "  secretsMap: {pwd: {path: s, key: password}}\n"),
			[]wantErr{{1, "spec.secretsMap", "secrets cannot be converted yet"}}},
		{"windowConfig", DecodeOptions{Packages: &fakePackages{}}, fnDoc(goBlock + "  windowConfig: {windowLengthCount: 10}\n"),
			[]wantErr{{1, "spec.windowConfig", "window functions cannot be converted"}}},
		{"pod nodeSelector not a map", DecodeOptions{Packages: &fakePackages{}}, strings.Replace(fnDoc(goBlock), "  pod:\n", "  pod:\n    nodeSelector: [east]\n", 1),
			[]wantErr{{1, "spec.pod.nodeSelector", "a map of label to value"}}},
		{"pod env from a secret", DecodeOptions{Packages: &fakePackages{}}, strings.Replace(fnDoc(goBlock), "  pod:\n", "  pod:\n    env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]\n", 1),
			[]wantErr{{1, "spec.pod.env[0].valueFrom", "values from Kubernetes secrets"}}},
		{"pod env on a builtin", DecodeOptions{}, strings.NewReplacer("  forwardSourceMessageProperty: true\n", "", "  pod:\n", "  pod:\n    env: [{name: A, value: b}]\n").Replace(fnDoc("  className: identity\n")),
			[]wantErr{{1, "spec.pod.env", "environment variables reach exec functions only"}}},
		{"forward without code", DecodeOptions{}, fnDoc("  className: identity\n"),
			[]wantErr{{1, "spec.forwardSourceMessageProperty", "true is honoured for golang and python functions only"}}},
		{"auth without cluster lookup", DecodeOptions{Packages: &fakePackages{}}, fnDoc(goBlock + "  pulsar: {authSecret: auth}\n"),
			[]wantErr{{1, "spec.pulsar.authSecret", `cannot be checked against cluster "plain" here`}}},
		{"auth on a cluster without auth", DecodeOptions{Packages: &fakePackages{}, Clusters: testClusters}, fnDoc(goBlock + "  pulsar: {authSecret: auth}\n"),
			[]wantErr{{1, "spec.pulsar.authSecret", `cluster "plain" has no auth`}}},
		{"auth plugin mismatch", DecodeOptions{Packages: &fakePackages{}, Clusters: testClusters},
			secure(fnDoc(goBlock + "  pulsar: {authConfig: {oauth2Config: {audience: a, issuerUrl: 'https://i', keySecretName: k, keySecretKey: auth.json}}}\n")),
			[]wantErr{{1, "spec.pulsar.authConfig.oauth2Config", `authenticates with oauth2 but cluster "secure" is set up with token`}}},
		{"tls mismatch", DecodeOptions{Packages: &fakePackages{}, Clusters: testClusters}, fnDoc(goBlock + "  pulsar: {tlsConfig: {enabled: true, allowInsecure: true}}\n"),
			[]wantErr{{1, "spec.pulsar.tlsConfig.allowInsecure", `is true but cluster "plain" has false`}, {1, "spec.pulsar.tlsConfig.enabled", `is true but cluster "plain" has false`}}},
		{"tls CA without cluster CA", DecodeOptions{Packages: &fakePackages{}, Clusters: testClusters}, fnDoc(goBlock + "  pulsar: {tlsConfig: {certSecretName: ca}}\n"),
			[]wantErr{{1, "spec.pulsar.tlsConfig.certSecretName", `names no CA file`}}},
		{"unknown cluster", DecodeOptions{Packages: &fakePackages{}, Clusters: testClusters}, strings.Replace(fnDoc(goBlock+"  pulsar: {authSecret: a}\n"), "clusterName: plain", "clusterName: nope", 1),
			[]wantErr{{1, "spec.pulsar.authSecret", `cluster "nope" not found`}}},
		{"cleanupAuthConfig", DecodeOptions{Packages: &fakePackages{}}, fnDoc(goBlock + "  pulsar: {cleanupAuthConfig: {genericAuth: {clientAuthenticationPlugin: token}}}\n"),
			[]wantErr{{1, "spec.pulsar.cleanupAuthConfig", "meshfed does not delete subscriptions"}}},
		{"bad list items", DecodeOptions{}, "apiVersion: v1\nkind: List\nitems: 3\n",
			[]wantErr{{1, "items", "expected a list"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			if strings.Count(doc, "  pulsar:") == 2 {
				// The case's pulsar block replaces fnDoc's.
				doc = strings.Replace(doc, "  pulsar:\n    pulsarConfig: test-pulsar\n", "", 1)
			}
			objs, err := tc.opts.Decode("fn.yaml", []byte(doc))
			if objs != nil {
				t.Error("objects returned with an error")
			}
			checkErrs(t, err, "fn.yaml", tc.want)
		})
	}
}
