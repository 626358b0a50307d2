package objects

import (
	"errors"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/errlist"
)

// wantErr is one expected field error: document, exact path, and a part of
// the reason.
type wantErr struct {
	doc    int
	path   string
	reason string
}

// checkErrs asserts err holds exactly the wanted field errors, in order.
func checkErrs(t *testing.T, err error, file string, want []wantErr) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error; want %v", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	got := AsFieldErrors(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		g := got[i]
		if g.File != file || g.Doc != w.doc || g.Path != w.path || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("error %d = {file %q doc %d path %q reason %q}\nwant {file %q doc %d path %q reason containing %q}",
				i, g.File, g.Doc, g.Path, g.Reason, file, w.doc, w.path, w.reason)
		}
	}
}

const meshDoc = `apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: word-count, tenant: public, namespace: default}
spec:
  functions:
    - name: split
      runtime: {builtin: word-split}
      replicas: 2
      processingGuarantee: effectively_once
      input:
        cluster: a
        topics: ["persistent://public/default/sentences"]
        subscriptionPosition: earliest
      output: {cluster: b, topic: "persistent://public/default/words"}
      failover: {clusters: [c], failback: auto}
    - name: count
      runtime: {builtin: word-count}
      input: {cluster: b, topics: ["persistent://public/default/words"]}
      output: {cluster: b, topic: "persistent://public/default/counts"}
`

const clusterDoc = `apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a}
spec: {serviceURL: "pulsar://localhost:6650", adminURL: "http://localhost:8080"}
`

// docFn replaces one line of a document, for error cases.
func docWith(doc, old, new string) string {
	if !strings.Contains(doc, old) {
		panic("docWith: " + old + " not found")
	}
	return strings.Replace(doc, old, new, 1)
}

func TestDecodeMesh(t *testing.T) {
	objs, err := Decode("mesh.yaml", []byte(meshDoc))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("got %d objects", len(objs))
	}
	fm := objs[0].GetFunctionMesh()
	if fm.GetApiVersion() != APIVersion || fm.GetKind() != "FunctionMesh" || fm.GetMetadata().GetTenant() != "public" {
		t.Errorf("header = %v", fm)
	}
	f := fm.GetSpec().GetFunctions()
	if len(f) != 2 || f[0].GetRuntime().GetBuiltin() != "word-split" || f[0].GetReplicas() != 2 ||
		f[0].GetInput().GetTopics()[0] != "persistent://public/default/sentences" ||
		f[0].GetFailover().GetClusters()[0] != "c" || f[1].GetOutput().GetTopic() != "persistent://public/default/counts" {
		t.Errorf("functions = %v", f)
	}
}

func TestDecodeNames(t *testing.T) {
	// JSON names, explicit json_name and proto names are all accepted.
	for _, doc := range []string{
		clusterDoc,
		docWith(clusterDoc, `spec: {serviceURL: "pulsar://localhost:6650", adminURL:`, `spec: {service_url: "pulsar://localhost:6650", admin_url:`),
	} {
		objs, err := Decode("c.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		s := objs[0].GetCluster().GetSpec()
		if s.GetServiceUrl() != "pulsar://localhost:6650" || s.GetAdminUrl() != "http://localhost:8080" {
			t.Errorf("spec = %v", s)
		}
	}
	objs, err := Decode("m.yaml", []byte(docWith(meshDoc, "processingGuarantee:", "processing_guarantee:")))
	if err != nil {
		t.Fatal(err)
	}
	if g := objs[0].GetFunctionMesh().GetSpec().GetFunctions()[0].GetProcessingGuarantee(); g != "effectively_once" {
		t.Errorf("processing guarantee = %q", g)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []wantErr
	}{
		{"unknown field", docWith(meshDoc, "      output: {cluster: b, topic: \"persistent://public/default/counts\"}", "      outptu: {cluster: b}"),
			[]wantErr{{1, "spec.functions[1].outptu", `unknown field "outptu"; known fields: name, runtime`}}},
		{"unknown field, near miss", docWith(clusterDoc, "serviceURL", "serviceUrl"),
			[]wantErr{{1, "spec.serviceUrl", `did you mean "serviceURL"?`}}},
		{"unknown top-level field", clusterDoc + "extra: 1\n",
			[]wantErr{{1, "extra", `unknown field "extra"`}}},
		{"string for list", docWith(meshDoc, `topics: ["persistent://public/default/words"]`, `topics: persistent://public/default/words`),
			[]wantErr{{1, "spec.functions[1].input.topics", `expected a list, got string "persistent://public/default/words" (write [`}}},
		{"list for string", docWith(meshDoc, "cluster: a", "cluster: [a]"),
			[]wantErr{{1, "spec.functions[0].input.cluster", "expected a string, got a list"}}},
		{"number for string", docWith(meshDoc, "name: split", "name: 5"),
			[]wantErr{{1, "spec.functions[0].name", `expected a string, got number 5 (quote it: "5")`}}},
		{"yaml boolean for string", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, labels: {enabled: yes}}"),
			[]wantErr{{1, "metadata.labels[enabled]", "got boolean true (YAML reads unquoted yes"}}},
		{"negative unsigned", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, resourceVersion: -1}"),
			[]wantErr{{1, "metadata.resourceVersion", "must not be negative, got -1"}}},
		{"fraction for integer", docWith(meshDoc, "replicas: 2", "replicas: 1.5"),
			[]wantErr{{1, "spec.functions[0].replicas", "expected an integer, got 1.5"}}},
		{"integer out of range", docWith(meshDoc, "replicas: 2", "replicas: 9999999999"),
			[]wantErr{{1, "spec.functions[0].replicas", "9999999999 is out of range for a 32-bit integer"}}},
		{"quoted 32-bit integer", docWith(meshDoc, "replicas: 2", `replicas: "2"`),
			[]wantErr{{1, "spec.functions[0].replicas", `expected an integer, got string "2"`}}},
		{"uint64 out of range", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, resourceVersion: 99999999999999999999}"),
			[]wantErr{{1, "metadata.resourceVersion", "out of range for a 64-bit unsigned integer"}}},
		{"uint64 not a number", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, resourceVersion: abc}"),
			[]wantErr{{1, "metadata.resourceVersion", `expected an integer, got "abc"`}}},
		{"object for scalar", docWith(meshDoc, "replicas: 2", "replicas: {n: 2}"),
			[]wantErr{{1, "spec.functions[0].replicas", "expected an integer, got an object"}}},
		{"scalar for object", docWith(meshDoc, "output: {cluster: b, topic: \"persistent://public/default/words\"}", "output: b"),
			[]wantErr{{1, "spec.functions[0].output", `expected an object, got string "b"`}}},
		{"scalar for map", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, labels: [x]}"),
			[]wantErr{{1, "metadata.labels", "expected an object of key: value pairs, got a list"}}},
		{"null map value", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, labels: {x: null}}"),
			[]wantErr{{1, "metadata.labels[x]", "null is not allowed"}}},
		{"null list element", docWith(meshDoc, "clusters: [c]", "clusters: [c, null]"),
			[]wantErr{{1, "spec.functions[0].failover.clusters[1]", "null is not allowed in a list"}}},
		{"two runtimes", docWith(meshDoc, "runtime: {builtin: word-split}", "runtime: {builtin: word-split, wasm: {package: x}}"),
			[]wantErr{{1, "spec.functions[0].runtime", "builtin and wasm are both set; set exactly one of builtin, exec, wasm"}}},
		{"field under two names", docWith(meshDoc, "replicas: 2", "replicas: 2\n      max_replicas: 3\n      maxReplicas: 3"),
			[]wantErr{{1, "spec.functions[0].maxReplicas", `set twice, as "maxReplicas" and as "max_replicas"`}}},
		{"config not an object", docWith(meshDoc, "replicas: 2", "config: [1]"),
			[]wantErr{{1, "spec.functions[0].config", "expected an object, got a list"}}},
		{"bad timestamp", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, createTime: yesterday}"),
			[]wantErr{{1, "metadata.createTime", "not an RFC 3339 time"}}},
		{"timestamp not a string", docWith(clusterDoc, "metadata: {name: a}", "metadata: {name: a, createTime: 5}"),
			[]wantErr{{1, "metadata.createTime", "expected an RFC 3339 time string, got number 5"}}},
		{"missing apiVersion", strings.Replace(clusterDoc, "apiVersion: meshfed.io/v1\n", "", 1),
			[]wantErr{{1, "apiVersion", "required; set it to meshfed.io/v1"}}},
		{"wrong apiVersion", docWith(clusterDoc, "meshfed.io/v1", "meshfed.io/v2"),
			[]wantErr{{1, "apiVersion", `unsupported apiVersion "meshfed.io/v2"`}}},
		{"apiVersion not a string", docWith(clusterDoc, "meshfed.io/v1", "[1]"),
			[]wantErr{{1, "apiVersion", "expected a string, got a list"}}},
		{"missing kind", strings.Replace(clusterDoc, "kind: Cluster\n", "", 1),
			[]wantErr{{1, "kind", "required; one of Cluster, Tenant, Namespace, Grant, FunctionMesh"}}},
		{"kind not a string", docWith(clusterDoc, "kind: Cluster", "kind: 7"),
			[]wantErr{{1, "kind", "expected a string, got number 7"}}},
		{"unknown kind", docWith(clusterDoc, "kind: Cluster", "kind: Pod"),
			[]wantErr{{1, "kind", `unknown kind "Pod"; one of Cluster`}}},
		{"kind in wrong case", docWith(clusterDoc, "kind: Cluster", "kind: cluster"),
			[]wantErr{{1, "kind", `unknown kind "cluster"; did you mean "Cluster"?`}}},
		{"system kind", "apiVersion: meshfed.io/v1\nkind: Agent\nmetadata: {name: x}\n",
			[]wantErr{{1, "kind", "Agent objects are written by the control plane and cannot be applied"}}},
		{"not a mapping", "- a\n- b\n",
			[]wantErr{{1, "", "a document must be an object with apiVersion and kind, got a list"}}},
		{"yaml syntax error on line 7", "# header\n---\n" + clusterDoc + "---\nkind: [\n",
			[]wantErr{{2, "", "invalid YAML: line 8"}}},
		{"duplicate key", clusterDoc + "kind: Cluster\n",
			[]wantErr{{1, "", `invalid YAML: line 5: key "kind" already set in map`}}},
		{"duplicate document", clusterDoc + "---\n" + meshDoc + "---\n" + clusterDoc,
			[]wantErr{{3, "metadata.name", `Cluster "a" is already defined in doc 1 of this file`}}},
		{"duplicate namespaced document", meshDoc + "---\n" + meshDoc,
			[]wantErr{{2, "metadata.name", `FunctionMesh "public/default/word-count" is already defined in doc 1`}}},
		{"errors in several documents", docWith(clusterDoc, "name: a", "name: 1") + "---\n" + docWith(meshDoc, "replicas: 2", "replicas: x"),
			[]wantErr{{1, "metadata.name", "expected a string"}, {2, "spec.functions[0].replicas", "expected an integer"}}},
		{"invalid JSON", `{"apiVersion": "meshfed.io/v1",`,
			[]wantErr{{1, "", "invalid JSON"}}},
		{"JSON key set twice", `[{"apiVersion": "meshfed.io/v1", "kind": "Tenant", "metadata": {"name": "a", "labels": {"x": "1", "x": "2"}}}]`,
			[]wantErr{{1, "metadata.labels.x", "set twice in the same object"}}},
		{"JSON key set twice in a list", `{"apiVersion": "meshfed.io/v1", "spec": {"admins": [{}, {"a": 1, "a": 1}]}}`,
			[]wantErr{{1, "spec.admins[1].a", "set twice in the same object"}}},
		{"JSON element not an object", `[1]`,
			[]wantErr{{1, "", "a document must be an object with apiVersion and kind, got number 1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode("f.yaml", []byte(tc.doc))
			if objs != nil {
				t.Errorf("objects returned with an error: %v", objs)
			}
			checkErrs(t, err, "f.yaml", tc.want)
		})
	}
}

// TestDecodeThirdDocInvalid is the acceptance case of issue 2: nothing is
// returned and the error names doc 3 and the field path.
func TestDecodeThirdDocInvalid(t *testing.T) {
	bad := docWith(meshDoc, "      output: {cluster: b, topic: \"persistent://public/default/counts\"}",
		"      output: {cluster: b, topic: [\"persistent://public/default/counts\"]}")
	data := clusterDoc + "---\n" + docWith(clusterDoc, "name: a", "name: b") + "---\n" + bad
	objs, err := Decode("mesh.yaml", []byte(data))
	if objs != nil {
		t.Fatalf("got %d objects, want none", len(objs))
	}
	want := `mesh.yaml: doc 3: spec.functions[1].output.topic: expected a string, got a list`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestDecodeSkipsEmptyDocuments(t *testing.T) {
	data := "# leading comment\n---\n---\n# only a comment\n---\n" + clusterDoc + "...\n---\n\n--- \n" +
		docWith(meshDoc, "replicas: 2", "replicas: -x")
	objs, err := Decode("f.yaml", []byte(data))
	checkErrs(t, err, "f.yaml", []wantErr{{2, "spec.functions[0].replicas", `expected an integer, got string "-x"`}})
	if objs != nil {
		t.Fatal("objects returned with an error")
	}
	objs, err = Decode("f.yaml", []byte("---\n"+clusterDoc+"---\n# trailing\n"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("objs %v err %v", objs, err)
	}
	objs, err = Decode("f.yaml", []byte("# nothing here\n"))
	if err != nil || len(objs) != 0 {
		t.Fatalf("objs %v err %v", objs, err)
	}
	// A document start marker with content on the same line.
	objs, err = Decode("f.yaml", []byte("--- {apiVersion: meshfed.io/v1, kind: Tenant, metadata: {name: t}}\n"))
	if err != nil || len(objs) != 1 || objs[0].GetTenant().GetMetadata().GetName() != "t" {
		t.Fatalf("objs %v err %v", objs, err)
	}
}

func TestDecodeJSON(t *testing.T) {
	one := `{"apiVersion": "meshfed.io/v1", "kind": "Tenant", "metadata": {"name": "t1", "resourceVersion": "7"}}`
	two := `{"apiVersion": "meshfed.io/v1", "kind": "Tenant", "metadata": {"name": "t2"}}`
	for _, in := range []string{one + "\n" + two, "[" + one + "," + two + "]", "\ufeff  " + one + two} {
		objs, err := Decode("f.json", []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if len(objs) != 2 || objs[1].GetTenant().GetMetadata().GetName() != "t2" ||
			objs[0].GetTenant().GetMetadata().GetResourceVersion() != 7 {
			t.Errorf("%s: objs = %v", in, objs)
		}
	}
	_, err := Decode("f.json", []byte("["+one+","+docWith(two, `"t2"}`, `"t2", "x": 1}`)+"]"))
	checkErrs(t, err, "f.json", []wantErr{{2, "metadata.x", `unknown field "x"`}})
}

func TestDecodeStructAndTimestamp(t *testing.T) {
	doc := docWith(meshDoc, "replicas: 2", "config: {a: 1, b: [x, true], c: {d: null}}") +
		"status: {conditions: [{type: Ready, status: \"True\", lastTransitionTime: \"2026-01-02T15:04:05Z\"}]}\n"
	objs, err := Decode("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	fm := objs[0].GetFunctionMesh()
	cfg := fm.GetSpec().GetFunctions()[0].GetConfig().AsMap()
	if cfg["a"] != float64(1) || len(cfg["b"].([]any)) != 2 {
		t.Errorf("config = %v", cfg)
	}
	if ts := fm.GetStatus().GetConditions()[0].GetLastTransitionTime(); ts.GetSeconds() != 1767366245 {
		t.Errorf("timestamp = %v", ts)
	}
}

func TestDecodeSystemKinds(t *testing.T) {
	doc := "apiVersion: meshfed.io/v1\nkind: Agent\nmetadata: {name: x}\nspec: {cluster: a, capacity: 4}\n"
	objs, err := DecodeOptions{AllowSystemKinds: true}.Decode("f.yaml", []byte(doc))
	if err != nil || objs[0].GetAgent().GetSpec().GetCapacity() != 4 {
		t.Fatalf("objs %v err %v", objs, err)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	_, err := Decode("big.yaml", make([]byte, MaxInputSize+1))
	checkErrs(t, err, "big.yaml", []wantErr{{0, "", "more than the"}})
}

func TestDecodeTooManyErrors(t *testing.T) {
	var b strings.Builder
	for i := 0; i < maxErrors+10; i++ {
		b.WriteString("---\nfoo: 1\n")
	}
	_, err := Decode("f.yaml", []byte(b.String()))
	l := AsFieldErrors(err)
	if len(l) != maxErrors+1 || !strings.Contains(l[maxErrors].Reason, "too many errors") {
		t.Fatalf("got %d errors, last %v", len(l), l[len(l)-1])
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{"mesh.yaml", 2, "spec.functions[1].output.cluster", `unknown cluster "eu-west"`}, `mesh.yaml: doc 2: spec.functions[1].output.cluster: unknown cluster "eu-west"`},
		{FieldError{"", 0, "metadata.name", "required"}, "metadata.name: required"},
		{FieldError{"f", 0, "", "bad"}, "f: bad"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	var fe *FieldError
	if err := error(FieldErrors{{Path: "a", Reason: "b"}}); !errors.As(err, &fe) || fe.Path != "a" {
		t.Errorf("errors.As did not find the *FieldError")
	}
	if AsFieldErrors(errors.New("x")) != nil {
		t.Error("AsFieldErrors of a plain error is not nil")
	}
	if l := AsFieldErrors(&FieldError{Reason: "x"}); len(l) != 1 {
		t.Errorf("AsFieldErrors(*FieldError) = %v", l)
	}
}

func TestDecodeBoundsMessages(t *testing.T) {
	long := strings.Repeat("k", 5000)
	_, err := Decode("f.yaml", []byte(`{"apiVersion": "meshfed.io/v1", "kind": "Tenant", "metadata": {"name": "a", "`+long+`é": 1}}`))
	l := AsFieldErrors(err)
	if len(l) != 1 || len(l[0].Path) > maxPathLen || len(l[0].Reason) > maxReasonLen || !strings.HasSuffix(l[0].Path, "...") {
		t.Fatalf("errors = %v", err)
	}
	if got := errlist.Clip("aébcdef", 5); got != "a..." {
		t.Errorf("clip cut inside a rune: %q", got)
	}
	if got := errlist.Clip("a\xffb", 10); got != "a\uFFFDb" {
		t.Errorf("clip kept invalid UTF-8: %q", got)
	}
}

// TestEmptyObjectsDoNotPanic runs every entry point on an empty message of
// each kind: all report errors, none panics.
func TestEmptyObjectsDoNotPanic(t *testing.T) {
	for _, k := range Kinds {
		o := Wrap(k.New())
		if err := Validate(o); err == nil {
			t.Errorf("%s: empty object validated", k.Name)
		}
		_ = ValidateRefs(o, memLookup{})
		if _, err := Encode(o, "yaml"); err != nil {
			t.Errorf("%s: %v", k.Name, err)
		}
		_ = Check("f", []*meshfedv1.Object{o, {}}, memLookup{})
	}
	if ValidateRefs(&meshfedv1.Object{}, memLookup{}) != nil {
		t.Error("refs of an empty object")
	}
}
