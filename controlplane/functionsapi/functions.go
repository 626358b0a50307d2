package functionsapi

import (
	"context"
	"encoding/json"
	"fmt"
	execrt "github.com/meshfed/meshfed/agent/runtime/exec"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// writeRetries bounds the read-modify-write retries of a function whose
// mesh changed between the read and the write.
const writeRetries = 5

func (h *Handler) form(r *http.Request) (*Form, error) {
	body := http.MaxBytesReader(nil, r.Body, MaxPackageSize+4*maxFieldSize)
	return DecodeForm(r.Header.Get("Content-Type"), body)
}

// checkNames fills the config's tenant, namespace and name from the path
// and refuses a config that names another function.
func checkNames(c *utils.FunctionConfig, f fn) error {
	for _, p := range []struct {
		field string
		v     *string
		path  string
	}{{"tenant", &c.Tenant, f.tenant}, {"namespace", &c.Namespace, f.namespace}, {"name", &c.Name, f.name}} {
		if *p.v == "" {
			*p.v = p.path
		} else if *p.v != p.path {
			return badRequest("functionConfig.%s %q differs from the path's %q", p.field, *p.v, p.path)
		}
	}
	return nil
}

func (h *Handler) register(ctx context.Context, w http.ResponseWriter, r *http.Request, f fn) error {
	form, err := h.form(r)
	if err != nil {
		return err
	}
	if form.Config == nil {
		return badRequest("functionConfig: required (the function's FunctionConfig JSON)")
	}
	c, err := DecodeConfig(form.Config)
	if err != nil {
		return err
	}
	if err := checkNames(c, f); err != nil {
		return err
	}
	if form.URL == "" && form.Data == nil {
		return badRequest("url or data: required (builtin://NAME, function://sha256:DIGEST, http(s)://..., or the package file)")
	}
	rt, err := h.runtimeOf(ctx, form, f, c)
	if err != nil {
		return err
	}
	cluster, err := h.clusterOf(ctx, c)
	if err != nil {
		return err
	}
	spec, err := ToSpec(c, rt, cluster)
	if err != nil {
		return err
	}
	if _, err := h.b.Get(ctx, meshGet(f)); err == nil {
		return badRequest("function %s/%s/%s already exists", f.tenant, f.namespace, f.name)
	} else if status.Code(err) != codes.NotFound {
		return err
	}
	m := &meshfedv1.FunctionMesh{
		ApiVersion: objects.APIVersion, Kind: objects.KindFunctionMesh,
		Metadata: &meshfedv1.ObjectMeta{Name: f.name, Tenant: f.tenant, Namespace: f.namespace},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{spec}},
	}
	if _, err := h.b.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{objects.Wrap(m)}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) update(ctx context.Context, w http.ResponseWriter, r *http.Request, f fn) error {
	form, err := h.form(r)
	if err != nil {
		return err
	}
	if len(form.UpdateOptions) > 0 {
		var o utils.UpdateOptions
		dec := json.NewDecoder(strings.NewReader(string(form.UpdateOptions)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return badRequest("updateOptions: %v", err)
		}
		if o.UpdateAuthData {
			return unsupported("updateOptions.updateAuthData", "meshfed functions carry no auth data")
		}
	}
	// A new package is resolved once, with the first merged config (a
	// Python bundle needs its className); retries reuse it.
	var rt *meshfedv1.Runtime
	return h.modify(ctx, f, func(m *meshfedv1.FunctionMesh, old *meshfedv1.FunctionSpec) error {
		c := FromSpec(f.tenant, f.namespace, old)
		merged := &c
		if form.Config != nil {
			if merged, err = mergeConfig(&c, form.Config); err != nil {
				return err
			}
			if err := checkNames(merged, f); err != nil {
				return err
			}
		}
		opts, err := parseRuntimeOptions(merged.CustomRuntimeOptions)
		if err != nil {
			return err
		}
		if rt == nil && (form.URL != "" || form.Data != nil) {
			if rt, err = h.runtimeOf(ctx, form, f, merged); err != nil {
				return err
			}
		}
		runtime := old.GetRuntime()
		if rt != nil {
			runtime = rt
		}
		spec, err := ToSpec(merged, runtime, opts.Cluster)
		if err != nil {
			return err
		}
		spec.StoppedInstances, spec.InstanceRestarts = keepRunning(old.GetStoppedInstances(), old.GetInstanceRestarts(), spec.GetReplicas())
		// What a FunctionConfig cannot say is kept as it was.
		spec.Placement, spec.Failover = old.GetPlacement(), old.GetFailover()
		spec.MinReplicas, spec.MaxReplicas = old.GetMinReplicas(), old.GetMaxReplicas()
		if spec.GetTimeout() == "" || old.GetTimeout() != "" && sameDuration(spec.GetTimeout(), old.GetTimeout()) {
			spec.Timeout = old.GetTimeout()
		}
		if proto.Equal(spec.GetResources(), resourcesOf(FromSpec(f.tenant, f.namespace, old).Resources)) {
			spec.Resources = old.GetResources()
		}
		m.Spec.Functions[0] = spec
		return nil
	}, w)
}

// modify reads the function's mesh, changes it with change and writes it
// back, retrying when the mesh changed in between.
func (h *Handler) modify(ctx context.Context, f fn, change func(m *meshfedv1.FunctionMesh, spec *meshfedv1.FunctionSpec) error, w http.ResponseWriter) error {
	return rewriteMesh(ctx, h.b, h.mesh, f, func(next *meshfedv1.FunctionMesh) error {
		return change(next, next.Spec.Functions[0])
	}, w)
}

// rewriteMesh reads the mesh of f with read, changes a copy of it with
// change and writes it back under its resourceVersion, retrying when the
// mesh changed in between; it answers 204 once written.
func rewriteMesh(ctx context.Context, b Backend, read func(context.Context, fn) (*meshfedv1.FunctionMesh, error),
	f fn, change func(next *meshfedv1.FunctionMesh) error, w http.ResponseWriter) error {
	for attempt := 0; ; attempt++ {
		m, err := read(ctx, f)
		if err != nil {
			return err
		}
		next := &meshfedv1.FunctionMesh{
			ApiVersion: objects.APIVersion, Kind: objects.KindFunctionMesh,
			Metadata: &meshfedv1.ObjectMeta{Name: f.name, Tenant: f.tenant, Namespace: f.namespace,
				Labels: m.GetMetadata().GetLabels(), ResourceVersion: m.GetMetadata().GetResourceVersion()},
			Spec: proto.Clone(m.GetSpec()).(*meshfedv1.FunctionMeshSpec),
		}
		if err := change(next); err != nil {
			return err
		}
		_, err = b.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{objects.Wrap(next)}})
		if status.Code(err) == codes.Aborted && attempt < writeRetries {
			continue
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// sameDuration reports whether two Go durations are equal.
func sameDuration(a, b string) bool {
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da.Round(time.Millisecond) == db.Round(time.Millisecond)
}

func meshGet(f fn) *meshfedv1.GetRequest {
	return &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: f.tenant, Namespace: f.namespace, Name: f.name}
}

// mesh returns the function's mesh: a FunctionMesh of one function of the
// same name (a mesh of several functions is not a Pulsar function).
func (h *Handler) mesh(ctx context.Context, f fn) (*meshfedv1.FunctionMesh, error) {
	resp, err := h.b.Get(ctx, meshGet(f))
	if status.Code(err) == codes.NotFound {
		return nil, notFound("function %s/%s/%s doesn't exist", f.tenant, f.namespace, f.name)
	}
	if err != nil {
		return nil, err
	}
	m := resp.GetObject().GetFunctionMesh()
	if !isFunction(m) {
		return nil, badRequest("%s/%s/%s is a FunctionMesh of %d functions, not a Pulsar function: manage it with meshfed apply", f.tenant, f.namespace, f.name, len(m.GetSpec().GetFunctions()))
	}
	return m, nil
}

// isFunction reports whether m is a Pulsar function: one function named as the mesh.
func isFunction(m *meshfedv1.FunctionMesh) bool {
	fs := m.GetSpec().GetFunctions()
	return len(fs) == 1 && fs[0].GetName() == m.GetMetadata().GetName() && len(m.GetSpec().GetSources()) == 0 && len(m.GetSpec().GetSinks()) == 0
}

func (h *Handler) delete(ctx context.Context, w http.ResponseWriter, f fn) error {
	if _, err := h.mesh(ctx, f); err != nil {
		return err
	}
	return deleteMesh(ctx, h.b, w, f)
}

// deleteMesh deletes the mesh behind a function, source or sink and answers
// 204 No Content.
func deleteMesh(ctx context.Context, b Backend, w http.ResponseWriter, f fn) error {
	if _, err := b.Delete(ctx, &meshfedv1.DeleteRequest{Kind: objects.KindFunctionMesh, Tenant: f.tenant, Namespace: f.namespace, Name: f.name}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) get(ctx context.Context, w http.ResponseWriter, f fn) error {
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, FromSpec(f.tenant, f.namespace, m.GetSpec().GetFunctions()[0]))
}

func (h *Handler) list(ctx context.Context, w http.ResponseWriter, tenant, namespace string) error {
	resp, err := h.b.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindFunctionMesh, Tenant: tenant, Namespace: namespace})
	if err != nil {
		return err
	}
	names := []string{}
	for _, o := range resp.GetObjects() {
		if m := o.GetFunctionMesh(); isFunction(m) {
			names = append(names, m.GetMetadata().GetName())
		}
	}
	slices.Sort(names)
	return writeJSON(w, http.StatusOK, names)
}

// setRunning stops (run false), starts (run true) or restarts the
// function's instances, or the one instance f names.
func (h *Handler) setRunning(ctx context.Context, w http.ResponseWriter, f fn, run, restart bool) error {
	return h.modify(ctx, f, func(_ *meshfedv1.FunctionMesh, spec *meshfedv1.FunctionSpec) error {
		idx, err := instancesOf(f, int(spec.GetReplicas()))
		if err != nil {
			return err
		}
		spec.StoppedInstances, spec.InstanceRestarts = changeRunning(spec.StoppedInstances, spec.InstanceRestarts, idx, run, restart)
		return nil
	}, w)
}

// instancesOf returns the instances a call names: the one f names, or
// all of replicas (at least one).
func instancesOf(f fn, replicas int) ([]int32, error) {
	n := max(replicas, 1)
	if f.instance >= 0 {
		if f.instance >= n {
			return nil, notFound("instance %d of %s/%s/%s doesn't exist (it has %d instances, 0..%d)", f.instance, f.tenant, f.namespace, f.name, n, n-1)
		}
		return []int32{int32(f.instance)}, nil
	}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	return idx, nil
}

// keepRunning returns the stopped instances and restart counters an
// update keeps: those of instances below the new replica count.
func keepRunning(stopped []int32, restarts map[int32]uint64, replicas int32) ([]int32, map[int32]uint64) {
	n := max(replicas, 1)
	var keptStopped []int32
	for _, i := range stopped {
		if i < n {
			keptStopped = append(keptStopped, i)
		}
	}
	var kept map[int32]uint64
	for i, v := range restarts {
		if i < n {
			if kept == nil {
				kept = map[int32]uint64{}
			}
			kept[i] = v
		}
	}
	return keptStopped, kept
}

// changeRunning stops (run false), starts (run true) or restarts the
// instances idx of a spec, given as its stopped instances and restart
// counters; it returns both changed. A restart bumps the instance's
// counter, which the agent sees as a new assignment.
func changeRunning(stopped []int32, restarts map[int32]uint64, idx []int32, run, restart bool) ([]int32, map[int32]uint64) {
	for _, i := range idx {
		switch {
		case restart:
			if restarts == nil {
				restarts = map[int32]uint64{}
			}
			restarts[i]++
		case run:
			stopped = slices.DeleteFunc(stopped, func(s int32) bool { return s == i })
		case !slices.Contains(stopped, i):
			stopped = append(stopped, i)
		}
	}
	slices.Sort(stopped)
	return stopped, restarts
}

// digestRE matches a content address.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// runtimeOf resolves the package a register or update names: url
// (builtin://, function://, http(s)://) or the data part.
func (h *Handler) runtimeOf(ctx context.Context, form *Form, f fn, c *utils.FunctionConfig) (*meshfedv1.Runtime, error) {
	if form.URL != "" && form.Data != nil {
		return nil, badRequest("url and data: give one of them")
	}
	data := form.Data
	if form.URL != "" {
		scheme, rest, ok := strings.Cut(form.URL, "://")
		switch {
		case !ok:
			return nil, badRequest("url %q: want builtin://NAME, function://sha256:DIGEST or http(s)://...", form.URL)
		case scheme == "builtin":
			if rest == "" {
				return nil, badRequest("url %q: the builtin's name is missing", form.URL)
			}
			return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: rest}}, nil
		case scheme == "function":
			if !digestRE.MatchString(rest) {
				return nil, unsupported("url", fmt.Sprintf("%q: meshfed holds packages by content address: function://sha256:<64 hex digits> (as meshfed package push prints)", form.URL))
			}
			b, err := h.b.GetPackage(ctx, rest)
			if err != nil {
				return nil, err
			}
			if !isWasm(b) {
				return nil, unsupported("url", fmt.Sprintf("package %s is %s: meshfed's functions API runs WebAssembly modules", rest, packageKind(b)))
			}
			return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: rest}}}, nil
		case scheme == "http" || scheme == "https":
			b, err := h.fetch(ctx, form.URL)
			if err != nil {
				return nil, badRequest("url %q: %v", form.URL, err)
			}
			data = b
		default:
			return nil, unsupported("url", fmt.Sprintf("%q: scheme %s; meshfed takes builtin://, function:// and http(s)://", form.URL, scheme))
		}
	}
	if len(data) == 0 {
		return nil, badRequest("data: the package is empty")
	}
	if isPython(c) {
		return h.pythonRuntime(ctx, form, f, c, data)
	}
	if !isWasm(data) {
		return nil, unsupported("data", fmt.Sprintf("the package is %s: meshfed's functions API runs Go compiled to WebAssembly (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)", packageKind(data)))
	}
	digest, err := h.b.PushPackage(ctx, f.tenant+"/"+f.namespace+"/"+f.name, data)
	if err != nil {
		return nil, err
	}
	return &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Wasm{Wasm: &meshfedv1.WasmRuntime{Package: digest}}}, nil
}

// clusterOf is the cluster a new function uses: the one
// customRuntimeOptions names, else the only cluster there is.
func (h *Handler) clusterOf(ctx context.Context, c *utils.FunctionConfig) (string, error) {
	opts, err := parseRuntimeOptions(c.CustomRuntimeOptions)
	if err != nil {
		return "", err
	}
	if opts.Cluster != "" {
		return opts.Cluster, nil
	}
	resp, err := h.b.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindCluster})
	if err != nil {
		return "", err
	}
	if n := len(resp.GetObjects()); n != 1 {
		return "", badRequest(`customRuntimeOptions: name the cluster the function reads from and runs in, {"cluster": "NAME"}: this control plane has %d clusters`, n)
	}
	return resp.GetObjects()[0].GetCluster().GetMetadata().GetName(), nil
}

// fetchURL downloads a package from an http(s) URL.
func fetchURL(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxPackageSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPackageSize {
		return nil, fmt.Errorf("larger than %d MiB", MaxPackageSize>>20)
	}
	return b, nil
}

func (h *Handler) upload(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	form, err := h.form(r)
	if err != nil {
		return err
	}
	if len(form.Data) == 0 {
		return badRequest("data: required (the package file)")
	}
	if form.Path != "" {
		return unsupported("path", "meshfed stores packages by content address; upload without a path and register with function://sha256:DIGEST")
	}
	digest, err := h.b.PushPackage(ctx, form.DataName, form.Data)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"url": "function://" + digest})
}

func (h *Handler) download(ctx context.Context, w http.ResponseWriter, f fn) error {
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	rt := m.GetSpec().GetFunctions()[0].GetRuntime()
	if _, ok := pythonCommand(rt, ""); ok {
		// The Python code as it was uploaded, out of the bundle that
		// wraps it.
		bundle, err := h.b.GetPackage(ctx, rt.GetExec().GetPackage())
		if err != nil {
			return err
		}
		code, err := execrt.BundleFile(bundle, rt.GetExec().GetCommand()[2])
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, err = w.Write(code)
		return err
	}
	if rt.GetWasm() == nil {
		return badRequest("%s/%s/%s runs builtin %q: it has no package", f.tenant, f.namespace, f.name, rt.GetBuiltin())
	}
	return h.downloadPath(ctx, w, rt.GetWasm().GetPackage())
}

func (h *Handler) downloadPath(ctx context.Context, w http.ResponseWriter, path string) error {
	digest := strings.TrimPrefix(path, "function://")
	if !digestRE.MatchString(digest) {
		return unsupported("path", fmt.Sprintf("%q: meshfed holds packages by content address, function://sha256:DIGEST", path))
	}
	b, err := h.b.GetPackage(ctx, digest)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}
