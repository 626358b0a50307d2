package functionsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fakeBackend keeps meshes and packages in maps: a fake for the handler's
// own logic (the real backend is the control plane, tested end to end).
type fakeBackend struct {
	meshes   map[string]*meshfedv1.FunctionMesh
	packages map[string][]byte
	clusters []string
	denied   bool
}

func newFake() *fakeBackend {
	return &fakeBackend{meshes: map[string]*meshfedv1.FunctionMesh{}, packages: map[string][]byte{}, clusters: []string{"a"}}
}

func (b *fakeBackend) Authenticate(r *http.Request) (context.Context, error) {
	if r.Header.Get("Authorization") == "" {
		return nil, status.Error(codes.Unauthenticated, "token required")
	}
	return r.Context(), nil
}

func (b *fakeBackend) Apply(_ context.Context, req *meshfedv1.ApplyRequest) (*meshfedv1.ApplyResponse, error) {
	if b.denied {
		return nil, status.Error(codes.PermissionDenied, "may not")
	}
	m := proto.Clone(req.GetObjects()[0].GetFunctionMesh()).(*meshfedv1.FunctionMesh)
	if err := objects.Validate(objects.Wrap(m)); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	m.Metadata.ResourceVersion++
	b.meshes[m.GetMetadata().GetName()] = m
	return &meshfedv1.ApplyResponse{}, nil
}

func (b *fakeBackend) Get(_ context.Context, req *meshfedv1.GetRequest) (*meshfedv1.GetResponse, error) {
	m, ok := b.meshes[req.GetName()]
	if !ok {
		return nil, status.Error(codes.NotFound, "not found")
	}
	return &meshfedv1.GetResponse{Object: objects.Wrap(proto.Clone(m).(*meshfedv1.FunctionMesh))}, nil
}

func (b *fakeBackend) List(_ context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error) {
	resp := &meshfedv1.ListResponse{}
	if req.GetKind() == objects.KindCluster {
		for _, c := range b.clusters {
			resp.Objects = append(resp.Objects, objects.Wrap(&meshfedv1.Cluster{Metadata: &meshfedv1.ObjectMeta{Name: c}}))
		}
		return resp, nil
	}
	for _, m := range b.meshes {
		resp.Objects = append(resp.Objects, objects.Wrap(m))
	}
	return resp, nil
}

func (b *fakeBackend) Delete(_ context.Context, req *meshfedv1.DeleteRequest) (*meshfedv1.DeleteResponse, error) {
	delete(b.meshes, req.GetName())
	return &meshfedv1.DeleteResponse{}, nil
}

func (b *fakeBackend) PushPackage(_ context.Context, _ string, data []byte) (string, error) {
	d := "sha256:" + strings.Repeat("0", 64)
	b.packages[d] = data
	return d, nil
}

func (b *fakeBackend) GetPackage(_ context.Context, digest string) ([]byte, error) {
	if p, ok := b.packages[digest]; ok {
		return p, nil
	}
	return nil, status.Error(codes.NotFound, "no package")
}

func (b *fakeBackend) GetState(context.Context, *meshfedv1.StateScope, []string) ([]*meshfedv1.StateValue, error) {
	return []*meshfedv1.StateValue{{Key: "n", IsCounter: true, Counter: 7, Exists: true}}, nil
}

func (b *fakeBackend) PutState(context.Context, *meshfedv1.StateScope, []*meshfedv1.StateOp) error {
	return nil
}

// multipartBody builds a form of text parts and an optional data file.
func multipartBody(t *testing.T, parts map[string]string, data []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range slices.Sorted(mapKeys(parts)) {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+k+`"`)
		p, _ := w.CreatePart(h)
		p.Write([]byte(parts[k]))
	}
	if data != nil {
		p, _ := w.CreateFormFile("data", "f.wasm")
		p.Write(data)
	}
	w.Close()
	return w.FormDataContentType(), &buf
}

func do(t *testing.T, h http.Handler, method, path, contentType string, body *bytes.Buffer) (int, string) {
	t.Helper()
	if body == nil {
		body = &bytes.Buffer{}
	}
	r := httptest.NewRequest(method, path, body)
	r.Header.Set("Authorization", "Bearer x")
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestHandler(t *testing.T) {
	b := newFake()
	h := New(b, nil)
	const fn = Prefix + "public/default/f"
	cfg := `{"inputs":["in"],"output":"out","parallelism":2}`

	ct, body := multipartBody(t, map[string]string{"functionConfig": cfg, "url": "builtin://exclamation"}, nil)
	if code, out := do(t, h, http.MethodPost, fn, ct, body); code != http.StatusNoContent {
		t.Fatalf("register: %d %s", code, out)
	}
	if b.meshes["f"].GetSpec().GetFunctions()[0].GetRuntime().GetBuiltin() != "exclamation" {
		t.Errorf("registered runtime: %v", b.meshes["f"].GetSpec().GetFunctions()[0].GetRuntime())
	}
	ct, body = multipartBody(t, map[string]string{"functionConfig": cfg, "url": "builtin://exclamation"}, nil)
	if code, out := do(t, h, http.MethodPost, fn, ct, body); code != http.StatusBadRequest || !strings.Contains(out, "already exists") {
		t.Errorf("register twice: %d %s", code, out)
	}

	steps := []struct {
		method, path string
		code         int
		check        func(f *meshfedv1.FunctionSpec) bool
	}{
		{http.MethodPost, fn + "/stop", http.StatusNoContent, func(f *meshfedv1.FunctionSpec) bool { return slices.Equal(f.GetStoppedInstances(), []int32{0, 1}) }},
		{http.MethodPost, fn + "/start", http.StatusNoContent, func(f *meshfedv1.FunctionSpec) bool { return len(f.GetStoppedInstances()) == 0 }},
		{http.MethodPost, fn + "/1/stop", http.StatusNoContent, func(f *meshfedv1.FunctionSpec) bool { return slices.Equal(f.GetStoppedInstances(), []int32{1}) }},
		{http.MethodPost, fn + "/1/start", http.StatusNoContent, func(f *meshfedv1.FunctionSpec) bool { return len(f.GetStoppedInstances()) == 0 }},
		{http.MethodPost, fn + "/0/restart", http.StatusNoContent, func(f *meshfedv1.FunctionSpec) bool {
			return f.GetInstanceRestarts()[0] == 1 && f.GetInstanceRestarts()[1] == 0
		}},
		{http.MethodPost, fn + "/restart", http.StatusNoContent, func(f *meshfedv1.FunctionSpec) bool {
			return f.GetInstanceRestarts()[0] == 2 && f.GetInstanceRestarts()[1] == 1
		}},
		{http.MethodPost, fn + "/5/stop", http.StatusNotFound, nil},
		{http.MethodPost, fn + "/x/stop", http.StatusBadRequest, nil},
		{http.MethodPost, fn + "/trigger", http.StatusBadRequest, nil},
		{http.MethodGet, Prefix + "public/default/nosuch", http.StatusNotFound, nil},
		{http.MethodGet, fn + "/download", http.StatusBadRequest, nil},
		{http.MethodPatch, fn, http.StatusNotFound, nil},
	}
	for _, s := range steps {
		code, out := do(t, h, s.method, s.path, "", nil)
		if code != s.code {
			t.Errorf("%s %s: %d %s, want %d", s.method, s.path, code, out, s.code)
			continue
		}
		if code >= 400 {
			var e struct{ Reason string }
			if json.Unmarshal([]byte(out), &e) != nil || e.Reason == "" {
				t.Errorf("%s %s: body %q is not Pulsar's {\"reason\": ...}", s.method, s.path, out)
			}
		}
		if s.check != nil && !s.check(b.meshes["f"].GetSpec().GetFunctions()[0]) {
			t.Errorf("%s %s: spec %v", s.method, s.path, b.meshes["f"].GetSpec().GetFunctions()[0])
		}
	}

	// Update keeps what it does not name, and prunes per-instance records
	// of instances that no longer exist.
	do(t, h, http.MethodPost, fn+"/1/stop", "", nil)
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"parallelism":1}`}, nil)
	if code, out := do(t, h, http.MethodPut, fn, ct, body); code != http.StatusNoContent {
		t.Fatalf("update: %d %s", code, out)
	}
	f := b.meshes["f"].GetSpec().GetFunctions()[0]
	if f.GetReplicas() != 1 || f.GetOutput().GetTopic() != "out" || len(f.GetStoppedInstances()) != 0 || len(f.GetInstanceRestarts()) != 1 {
		t.Errorf("after update: %v", f)
	}

	code, out := do(t, h, http.MethodGet, fn+"/state/n", "", nil)
	if code != http.StatusOK || !strings.Contains(out, `"numberValue":7`) {
		t.Errorf("state get: %d %s", code, out)
	}
	ct, body = multipartBody(t, map[string]string{"state": `{"key":"n","numberValue":3}`}, nil)
	if code, out := do(t, h, http.MethodPost, fn+"/state/n", ct, body); code != http.StatusBadRequest || !strings.Contains(out, "numberValue") {
		t.Errorf("state put of a number: %d %s", code, out)
	}

	// Packages: a wasm module is pushed, anything else is refused.
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"]}`}, []byte("PK\x03\x04jar"))
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/g", ct, body); code != http.StatusBadRequest || !strings.Contains(out, "zip archive") {
		t.Errorf("register a jar: %d %s", code, out)
	}
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"]}`}, []byte("\x00asm\x01\x00\x00\x00"))
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/g", ct, body); code != http.StatusNoContent {
		t.Errorf("register a wasm module: %d %s", code, out)
	}
	if code, out := do(t, h, http.MethodGet, Prefix+"public/default/g/download", "", nil); code != http.StatusOK || out != "\x00asm\x01\x00\x00\x00" {
		t.Errorf("download: %d %q", code, out)
	}

	// Two clusters: the function must name one.
	b.clusters = []string{"a", "b"}
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"]}`, "url": "builtin://identity"}, nil)
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/h", ct, body); code != http.StatusBadRequest || !strings.Contains(out, "customRuntimeOptions") {
		t.Errorf("register with two clusters: %d %s", code, out)
	}
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"],"customRuntimeOptions":"{\"cluster\":\"b\"}"}`, "url": "builtin://identity"}, nil)
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/h", ct, body); code != http.StatusNoContent {
		t.Errorf("register naming cluster b: %d %s", code, out)
	}

	b.denied = true
	if code, _ := do(t, h, http.MethodPost, fn+"/stop", "", nil); code != http.StatusForbidden {
		t.Errorf("denied stop: %d, want 403", code)
	}
	code, out = do(t, h, http.MethodGet, Prefix+"public/default", "", nil)
	var names []string
	if code != http.StatusOK || json.Unmarshal([]byte(out), &names) != nil || !slices.Equal(names, []string{"f", "g", "h"}) {
		t.Errorf("list: %d %s", code, out)
	}
	r := httptest.NewRequest(http.MethodGet, fn, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", w.Code)
	}
}

// An http(s) url is downloaded by the server and run as a pushed module;
// a failed download is a 400 naming the url.
func TestRegisterFromHTTPURL(t *testing.T) {
	module := []byte("\x00asm\x01\x00\x00\x00")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/f.wasm" {
			http.NotFound(w, r)
			return
		}
		w.Write(module)
	}))
	defer srv.Close()
	b := newFake()
	h := New(b, nil)
	ct, body := multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"]}`, "url": srv.URL + "/f.wasm"}, nil)
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/f", ct, body); code != http.StatusNoContent {
		t.Fatalf("register from %s/f.wasm: %d %s", srv.URL, code, out)
	}
	digest := b.meshes["f"].GetSpec().GetFunctions()[0].GetRuntime().GetWasm().GetPackage()
	if !bytes.Equal(b.packages[digest], module) {
		t.Errorf("pushed package %q: %q", digest, b.packages[digest])
	}
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"]}`, "url": srv.URL + "/missing.wasm"}, nil)
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/g", ct, body); code != http.StatusBadRequest || !strings.Contains(out, "missing.wasm") || !strings.Contains(out, "404") {
		t.Errorf("register from a missing url: %d %s", code, out)
	}
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"inputs":["in"]}`, "url": "ftp://x/f.wasm"}, nil)
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/g", ct, body); code != http.StatusBadRequest || !strings.Contains(out, "scheme ftp") {
		t.Errorf("register from ftp: %d %s", code, out)
	}
}

// An update keeps what a FunctionConfig cannot say (or says in other
// units) unless it names the field.
func TestUpdateKeepsWhatConfigCannotSay(t *testing.T) {
	b := newFake()
	h := New(b, nil)
	b.meshes["f"] = &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: "f", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{{
			Name: "f", Runtime: exclamation, Replicas: 2, MinReplicas: 1, MaxReplicas: 4, Timeout: "30s",
			Input:     &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"in"}},
			Resources: &meshfedv1.Resources{Cpu: "0.5", Memory: "128Mi"},
			Placement: &meshfedv1.Placement{Cluster: "a"},
			Failover:  &meshfedv1.Failover{Clusters: []string{"b"}},
		}}},
	}
	ct, body := multipartBody(t, map[string]string{"functionConfig": `{"parallelism":3}`}, nil)
	if code, out := do(t, h, http.MethodPut, Prefix+"public/default/f", ct, body); code != http.StatusNoContent {
		t.Fatalf("update: %d %s", code, out)
	}
	f := b.meshes["f"].GetSpec().GetFunctions()[0]
	if f.GetReplicas() != 3 || f.GetMinReplicas() != 1 || f.GetMaxReplicas() != 4 || f.GetTimeout() != "30s" ||
		f.GetResources().GetCpu() != "0.5" || f.GetResources().GetMemory() != "128Mi" ||
		f.GetPlacement().GetCluster() != "a" || len(f.GetFailover().GetClusters()) != 1 {
		t.Errorf("after an update of parallelism: %v", f)
	}
	ct, body = multipartBody(t, map[string]string{"functionConfig": `{"timeoutMs":100,"resources":{"cpu":1,"ram":1024}}`}, nil)
	if code, out := do(t, h, http.MethodPut, Prefix+"public/default/f", ct, body); code != http.StatusNoContent {
		t.Fatalf("update: %d %s", code, out)
	}
	f = b.meshes["f"].GetSpec().GetFunctions()[0]
	if f.GetTimeout() != "100ms" || f.GetResources().GetCpu() != "1000m" || f.GetResources().GetMemory() != "1024" {
		t.Errorf("after an update of timeout and resources: %v", f)
	}
}

// A Python function's download is the code as it was uploaded, not the
// bundle meshfed wraps it in.
func TestDownloadPythonCode(t *testing.T) {
	b := newFake()
	h := New(b, nil)
	code := []byte("def greet(s):\n    return 'hello ' + s\n")
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	p, _ := w.CreateFormField("functionConfig")
	p.Write([]byte(`{"inputs":["in"],"runtime":"PYTHON","className":"greet.greet"}`))
	p, _ = w.CreateFormFile("data", "greet.py")
	p.Write(code)
	w.Close()
	if code, out := do(t, h, http.MethodPost, Prefix+"public/default/py", w.FormDataContentType(), &buf); code != http.StatusNoContent {
		t.Fatalf("register greet.py: %d %s", code, out)
	}
	if c, out := do(t, h, http.MethodGet, Prefix+"public/default/py/download", "", nil); c != http.StatusOK || out != string(code) {
		t.Errorf("download: %d %q, want the uploaded greet.py", c, out)
	}
}
