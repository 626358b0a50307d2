package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// copyExamples copies examples/functionmesh's resources and Python code
// into a new directory, with a stand-in for the Go executable.
func copyExamples(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range append(names, "exclamation_function.py") {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", "functionmesh", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "go_func_all"), []byte("\x7fELF stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// decodeImport parses import's output, which must be meshfed YAML.
func decodeImport(t *testing.T, out string) map[string]*meshfedv1.FunctionMesh {
	t.Helper()
	objs, err := objects.Decode("out", []byte(out))
	if err != nil {
		t.Fatalf("import output does not decode: %v\n%s", err, out)
	}
	meshes := map[string]*meshfedv1.FunctionMesh{}
	for _, o := range objs {
		if err := objects.Validate(o); err != nil {
			t.Errorf("imported object does not validate: %v", err)
		}
		meshes[o.GetFunctionMesh().GetMetadata().GetName()] = o.GetFunctionMesh()
	}
	return meshes
}

func TestImportDirectory(t *testing.T) {
	dir := copyExamples(t, "go-function.yaml", "py-function.yaml", "functionmesh.yaml")
	pkgs := t.TempDir()
	out, stderr, code := cli(t, "", "import", "-f", dir, "--package-dir", pkgs)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "imported 3 objects from 3 files; skipped 3 Kubernetes documents") {
		t.Errorf("stderr = %s", stderr)
	}
	meshes := decodeImport(t, out)
	goFn := meshes["go-function-sample"].GetSpec().GetFunctions()[0]
	pyFn := meshes["py-function-sample"].GetSpec().GetFunctions()[0]
	if got := strings.Join(goFn.GetRuntime().GetExec().GetCommand(), " "); got != "./go_func_all" {
		t.Errorf("go command = %q", got)
	}
	if goFn.GetRuntime().GetExec().GetEnv()[forwardPropertiesEnv] != "true" {
		t.Errorf("go env = %v, want forwardSourceMessageProperty passed on", goFn.GetRuntime().GetExec().GetEnv())
	}
	if got := strings.Join(pyFn.GetRuntime().GetExec().GetCommand(), " "); got != "python3 meshfed_pulsar_function.py exclamation_function.py exclamation_function.ExclamationFunction" {
		t.Errorf("python command = %q", got)
	}
	if goFn.GetInput().GetSubscription() != "public/default/go-function-sample" || goFn.GetInput().GetCluster() != "test-pulsar" {
		t.Errorf("go input = %v", goFn.GetInput())
	}
	// Each package was saved under its digest, and the digest is its hash.
	for _, fn := range []*meshfedv1.FunctionSpec{goFn, pyFn} {
		digest := fn.GetRuntime().GetExec().GetPackage()
		data, err := os.ReadFile(filepath.Join(pkgs, strings.TrimPrefix(digest, "sha256:")+".tar"))
		if err != nil {
			t.Fatalf("package %s of %s: %v", digest, fn.GetName(), err)
		}
		sum := sha256.Sum256(data)
		if "sha256:"+hex.EncodeToString(sum[:]) != digest {
			t.Errorf("package of %s: content hash differs from %s", fn.GetName(), digest)
		}
	}
	mesh := meshes["functionmesh-sample"].GetSpec().GetFunctions()
	if len(mesh) != 2 || mesh[0].GetRuntime().GetExec().GetPackage() != goFn.GetRuntime().GetExec().GetPackage() ||
		mesh[1].GetInput().GetSubscription() != "public/default/ex2" {
		t.Errorf("mesh = %v", mesh)
	}
}

func TestImportRefusals(t *testing.T) {
	dir := copyExamples(t, "java-function.yaml")
	_, stderr, code := cli(t, "", "import", "-f", filepath.Join(dir, "java-function.yaml"), "--package-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "doc 1: spec.java: Java functions cannot run on meshfed") {
		t.Errorf("java: exit %d, stderr %s", code, stderr)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"package name", "  golang: {go: f, goLocation: public/default/f}\n", `meshfed holds packages by content, not by Pulsar package names`},
		{"missing file", "  golang: {go: nope}\n", "read function code: stat"},
		{"held package offline", "  golang: {go: f, goLocation: 'function://sha256:" + strings.Repeat("a", 64) + "'}\n", "needs the control plane"},
		{"download failure", "  golang: {go: f, goLocation: 'http://127.0.0.1:1/f'}\n", "download http://127.0.0.1:1/f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "f.yaml")
			doc := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: Function\nmetadata: {name: f}\nspec:\n  clusterName: a\n  input: {topics: [in]}\n" + tc.doc
			if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := cli(t, "", "import", "-f", file, "--package-dir", t.TempDir())
			if code == 0 || !strings.Contains(stderr, "spec.golang: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %s; want %q", code, stderr, tc.want)
			}
		})
	}
}

// fakeWorker serves the part of a Pulsar Functions worker's REST API that
// import reads: list, get and download, for the functions given.
func fakeWorker(t *testing.T, fns map[string]utils.FunctionConfig, code map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/admin/v3/functions/"), "/")
		switch {
		case r.Method != http.MethodGet:
			http.Error(w, "method", http.StatusMethodNotAllowed)
		case len(parts) == 2:
			var names []string
			for fqfn := range fns {
				if strings.HasPrefix(fqfn, parts[0]+"/"+parts[1]+"/") {
					names = append(names, strings.TrimPrefix(fqfn, parts[0]+"/"+parts[1]+"/"))
				}
			}
			json.NewEncoder(w).Encode(names)
		case len(parts) == 3:
			cfg, ok := fns[strings.Join(parts, "/")]
			if !ok {
				http.Error(w, `{"reason":"Function not found"}`, http.StatusNotFound)
				return
			}
			json.NewEncoder(w).Encode(cfg)
		case len(parts) == 4 && parts[3] == "download":
			w.Write([]byte(code[strings.Join(parts[:3], "/")]))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestImportFunctionsWorker(t *testing.T) {
	py := "/tmp/pulsar_functions/exclamation_function.py"
	retries := 3
	timeout := int64(2500)
	ok := fakeWorker(t, map[string]utils.FunctionConfig{
		"public/default/exclaim": {Tenant: "public", Namespace: "default", Name: "exclaim", Runtime: "PYTHON", Py: &py,
			ClassName: "exclamation_function.ExclamationFunction", Inputs: []string{"persistent://public/default/in"},
			Output: "persistent://public/default/out", Parallelism: 2, ProcessingGuarantees: "ATLEAST_ONCE", AutoAck: true,
			CleanupSubscription: true, MaxMessageRetries: &retries, TimeoutMs: &timeout, UserConfig: map[string]any{"k": "v"},
			Resources:  &utils.Resources{CPU: 0.5, RAM: 1 << 30, Disk: 10 << 30},
			InputSpecs: map[string]utils.ConsumerConfig{"persistent://public/default/in2": {}}},
	}, map[string]string{"public/default/exclaim": "def process(input):\n    return input + '!'\n"})
	out, stderr, code := cli(t, "", "import", "--functions-worker", ok.URL, "--cluster", "a", "--package-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	for _, note := range []string{"cleanupSubscription is not honoured", "resources.disk is not honoured"} {
		if !strings.Contains(stderr, "note: function public/default/exclaim: "+note) {
			t.Errorf("stderr lacks note %q:\n%s", note, stderr)
		}
	}
	fn := decodeImport(t, out)["exclaim"].GetSpec().GetFunctions()[0]
	checks := map[string][2]any{
		"command":      {strings.Join(fn.GetRuntime().GetExec().GetCommand(), " "), "python3 meshfed_pulsar_function.py exclamation_function.py exclamation_function.ExclamationFunction"},
		"replicas":     {fn.GetReplicas(), int32(2)},
		"guarantee":    {fn.GetProcessingGuarantee(), "atleast_once"},
		"topics":       {strings.Join(fn.GetInput().GetTopics(), ","), "persistent://public/default/in,persistent://public/default/in2"},
		"subscription": {fn.GetInput().GetSubscription(), "public/default/exclaim"},
		"output":       {fn.GetOutput().GetTopic(), "persistent://public/default/out"},
		"retries":      {fn.GetMaxMessageRetry(), int32(3)},
		"timeout":      {fn.GetTimeout(), "2.5s"},
		"config":       {fn.GetConfig().AsMap()["k"], "v"},
		"cpu":          {fn.GetResources().GetCpu(), "0.5"},
		"memory":       {fn.GetResources().GetMemory(), "1073741824"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}

	// What meshfed's own Functions API answers: a builtin and a wasm
	// module, the cluster in customRuntimeOptions.
	builtin, wasmURL := "builtin://exclamation", "function://sha256:"+strings.Repeat("c", 64)
	wasm := "\x00asm\x01\x00\x00\x00"
	own := fakeWorker(t, map[string]utils.FunctionConfig{
		"public/default/b": {Tenant: "public", Namespace: "default", Name: "b", Runtime: "GO", Go: &builtin, Inputs: []string{"in"}, CustomRuntimeOptions: `{"cluster":"a"}`},
		"public/default/w": {Tenant: "public", Namespace: "default", Name: "w", Runtime: "GO", Go: &wasmURL, Inputs: []string{"in"}, CustomRuntimeOptions: `{"cluster":"a"}`},
	}, map[string]string{"public/default/w": wasm})
	pkgs := t.TempDir()
	out, stderr, code = cli(t, "", "import", "--functions-worker", own.URL, "--package-dir", pkgs)
	if code != 0 {
		t.Fatalf("import from meshfed's API: exit %d\n%s", code, stderr)
	}
	meshes := decodeImport(t, out)
	if b := meshes["b"].GetSpec().GetFunctions()[0]; b.GetRuntime().GetBuiltin() != "exclamation" || b.GetInput().GetCluster() != "a" {
		t.Errorf("builtin function = %v", b)
	}
	sum := sha256.Sum256([]byte(wasm))
	if w := meshes["w"].GetSpec().GetFunctions()[0]; w.GetRuntime().GetWasm().GetPackage() != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("wasm function = %v, want the downloaded module's digest", w)
	}

	jar := "api-examples.jar"
	for _, tc := range []struct {
		name string
		cfg  utils.FunctionConfig
		want string
	}{
		{"java", utils.FunctionConfig{Runtime: "JAVA", Jar: &jar, ClassName: "org.example.Ex", Inputs: []string{"in"}}, "spec.java: Java functions cannot run on meshfed"},
		{"serde", utils.FunctionConfig{Runtime: "PYTHON", Py: &py, ClassName: "m.F", CustomSerdeInputs: map[string]string{"in": "serde.X"}}, "functionConfig.customSerdeInputs[in] = \"serde.X\" cannot be converted"},
		{"runtime options", utils.FunctionConfig{Runtime: "PYTHON", Py: &py, ClassName: "m.F", Inputs: []string{"in"}, CustomRuntimeOptions: `{"cluster":"a","x":1}`}, "functionConfig.customRuntimeOptions"},
		{"secrets", utils.FunctionConfig{Runtime: "PYTHON", Py: &py, ClassName: "m.F", Inputs: []string{"in"}, Secrets: map[string]any{"pwd": "x"}}, "spec.secretsMap: secrets cannot be converted yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Tenant, tc.cfg.Namespace, tc.cfg.Name = "public", "default", "f"
			w := fakeWorker(t, map[string]utils.FunctionConfig{"public/default/f": tc.cfg}, map[string]string{"public/default/f": "x"})
			_, stderr, code := cli(t, "", "import", "--functions-worker", w.URL, "--cluster", "a", "--package-dir", t.TempDir())
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %s; want %q", code, stderr, tc.want)
			}
		})
	}
}

// TestApplyFunctionMeshResources applies a Python Function resource to an
// in-process control plane: the dry run only hashes the bundle, the apply
// pushes it and creates the mesh with Pulsar's default subscription, and
// pulsar blocks are checked against the Cluster the server holds.
func TestApplyFunctionMeshResources(t *testing.T) {
	addr := testServer(t)
	if _, errOut, code := cli(t, baseObjects, "--server", addr, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply base objects: %s", errOut)
	}
	dir := copyExamples(t)
	write := func(name, pulsarBlock string) string {
		doc := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: Function\nmetadata: {name: exclaim}\nspec:\n" +
			"  className: exclamation_function.ExclamationFunction\n  python: {py: exclamation_function.py}\n" +
			"  input: {topics: [persistent://public/default/in]}\n  output: {topic: persistent://public/default/out}\n" + pulsarBlock
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	auth := write("auth.yaml", "  pulsar:\n    pulsarConfig: cfg\n    authConfig: {genericAuth: {clientAuthenticationPlugin: org.apache.pulsar.client.impl.auth.AuthenticationToken, clientAuthenticationParameters: 'file:///t'}}\n")
	_, errOut, code := cli(t, "", "--server", addr, "apply", "-f", auth, "--cluster", "a")
	if code == 0 || !strings.Contains(errOut, `doc 1: spec.pulsar.authConfig.genericAuth: the function authenticates with token but cluster "a" is set up with no authentication`) {
		t.Errorf("auth mismatch: exit %d, stderr %s", code, errOut)
	}
	plain := write("plain.yaml", "  pulsar: {pulsarConfig: cfg}\n")
	out, errOut, code := cli(t, "", "--server", addr, "apply", "-f", plain, "--cluster", "a", "--dry-run")
	if code != 0 || !strings.Contains(out, "functionmesh/public/default/exclaim created (dry run)") || strings.Contains(errOut, "pushed") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = cli(t, "", "--server", addr, "apply", "-f", plain, "--cluster", "a")
	if code != 0 || !strings.Contains(out, "functionmesh/public/default/exclaim created") || !strings.Contains(errOut, "package exclamation_function.py.tar pushed as sha256:") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = cli(t, "", "--server", addr, "get", "mesh", "exclaim", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "subscription: public/default/exclaim") || !strings.Contains(out, "meshfed_pulsar_function.py") {
		t.Fatalf("get mesh: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, "", "--server", addr, "apply", "-f", plain, "--cluster", "a")
	if code != 0 || !strings.Contains(out, "unchanged") {
		t.Errorf("reapply: the same code must give the same package and an unchanged mesh; exit %d\n%s", code, out)
	}

	// Code the control plane holds, named by its content address.
	digest, errOut, code := cli(t, "", "--server", addr, "package", "push", filepath.Join(dir, "exclamation_function.py"))
	if code != 0 {
		t.Fatalf("package push: %s", errOut)
	}
	held := func(location string) string {
		doc := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: Function\nmetadata: {name: held}\nspec:\n" +
			"  className: exclamation_function.ExclamationFunction\n  python: {py: exclamation_function.py, pyLocation: '" + location + "'}\n" +
			"  input: {topics: [persistent://public/default/in2]}\n"
		path := filepath.Join(t.TempDir(), "held.yaml")
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	out, errOut, code = cli(t, "", "--server", addr, "apply", "-f", held("function://"+strings.TrimSpace(digest)), "--cluster", "a")
	if code != 0 || !strings.Contains(out, "functionmesh/public/default/held created") {
		t.Fatalf("apply with a held package: exit %d\n%s\n%s", code, out, errOut)
	}
	_, errOut, code = cli(t, "", "--server", addr, "apply", "-f", held("function://sha256:"+strings.Repeat("0", 64)), "--cluster", "a")
	if code == 0 || !strings.Contains(errOut, "spec.python: get package sha256:000") {
		t.Errorf("apply with an unknown package: exit %d\n%s", code, errOut)
	}
}
