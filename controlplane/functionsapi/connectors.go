package functionsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Prefixes of Pulsar's sources and sinks admin REST APIs.
const (
	SourcesPrefix = "/admin/v3/sources/"
	SinksPrefix   = "/admin/v3/sinks/"
)

// builtinArchive prefixes a Pulsar connector archive that names a
// connector the runtime ships ("builtin://mqtt"); meshfed reads the
// connector type from it.
const builtinArchive = "builtin://"

// Connectors serves Pulsar's sources or sinks admin REST API on meshfed
// connectors. A Pulsar source (sink) is a FunctionMesh of one source (sink)
// named as the mesh, as a Pulsar function is a mesh of one function:
//
//	GET    /admin/v3/sources/{tenant}/{namespace}         names
//	POST   /admin/v3/sources/{tenant}/{namespace}/{name}  create (sourceConfig)
//	PUT    /admin/v3/sources/{tenant}/{namespace}/{name}  update (sourceConfig)
//	GET    /admin/v3/sources/{tenant}/{namespace}/{name}  SourceConfig
//	GET    .../{name}/status                              SourceStatus
//	DELETE /admin/v3/sources/{tenant}/{namespace}/{name}
//
// and the same under /admin/v3/sinks with sinkConfig, SinkConfig and
// SinkStatus. The connector type is the archive "builtin://TYPE"; the
// cluster is customRuntimeOptions {"cluster": "NAME"} (or the only one).
type Connectors struct {
	b    Backend
	log  *slog.Logger
	kind string // objects.ConnectorSource or objects.ConnectorSink
}

// NewConnectors returns the handler of sources (kind "source") or sinks
// (kind "sink").
func NewConnectors(b Backend, log *slog.Logger, kind string) *Connectors {
	if log == nil {
		log = slog.Default()
	}
	return &Connectors{b: b, log: log, kind: kind}
}

func (h *Connectors) prefix() string {
	if h.kind == objects.ConnectorSink {
		return SinksPrefix
	}
	return SourcesPrefix
}

func (h *Connectors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, err := h.b.Authenticate(r)
	if err == nil {
		err = h.route(ctx, w, r)
	}
	if err != nil {
		code, reason := httpStatus(err)
		if code >= 500 {
			h.log.Warn(h.kind+"s api request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", reason)
		}
		_ = writeJSON(w, code, map[string]string{"reason": reason})
	}
}

func (h *Connectors) route(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), strings.TrimSuffix(h.prefix(), "/"))
	var p []string
	for _, s := range strings.Split(strings.Trim(rest, "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			return badRequest("path: %v", err)
		}
		p = append(p, u)
	}
	m := r.Method
	switch {
	case len(p) == 2 && m == http.MethodGet:
		return h.list(ctx, w, p[0], p[1])
	case len(p) == 3:
		f := fn{tenant: p[0], namespace: p[1], name: p[2]}
		switch m {
		case http.MethodGet:
			return h.get(ctx, w, f)
		case http.MethodPost, http.MethodPut:
			return h.put(ctx, w, r, f, m == http.MethodPost)
		case http.MethodDelete:
			if _, err := h.mesh(ctx, f); err != nil {
				return err
			}
			return deleteMesh(ctx, h.b, w, f)
		}
	case len(p) == 4 && p[3] == "status" && m == http.MethodGet:
		return h.status(ctx, w, fn{tenant: p[0], namespace: p[1], name: p[2]})
	case (len(p) == 4 || len(p) == 5) && m == http.MethodPost:
		f := fn{tenant: p[0], namespace: p[1], name: p[2], instance: -1}
		if len(p) == 5 {
			id, err := strconv.Atoi(p[3])
			if err != nil || id < 0 {
				return badRequest("instance id %q: not a number", p[3])
			}
			f.instance = id
		}
		switch p[len(p)-1] {
		case "stop":
			return h.setRunning(ctx, w, f, false, false)
		case "start":
			return h.setRunning(ctx, w, f, true, false)
		case "restart":
			return h.setRunning(ctx, w, f, true, true)
		}
	}
	return notFound("no such endpoint: %s %s", m, r.URL.Path)
}

// connectors returns the mesh's sources or sinks, as h.kind says.
func (h *Connectors) connectors(s *meshfedv1.FunctionMeshSpec) []*meshfedv1.ConnectorSpec {
	if h.kind == objects.ConnectorSink {
		return s.GetSinks()
	}
	return s.GetSources()
}

// isOne reports whether m is a Pulsar source or sink: one connector of
// h's kind named as the mesh, and nothing else.
func (h *Connectors) isOne(m *meshfedv1.FunctionMesh) bool {
	s := m.GetSpec()
	cs := h.connectors(s)
	return len(cs) == 1 && cs[0].GetName() == m.GetMetadata().GetName() && len(s.GetFunctions())+len(s.GetSources())+len(s.GetSinks()) == 1
}

func (h *Connectors) mesh(ctx context.Context, f fn) (*meshfedv1.FunctionMesh, error) {
	resp, err := h.b.Get(ctx, meshGet(f))
	if status.Code(err) == codes.NotFound {
		return nil, notFound("%s %s/%s/%s doesn't exist", h.kind, f.tenant, f.namespace, f.name)
	}
	if err != nil {
		return nil, err
	}
	m := resp.GetObject().GetFunctionMesh()
	if !h.isOne(m) {
		return nil, badRequest("%s/%s/%s is a FunctionMesh, not a Pulsar %s: manage it with meshfed apply", f.tenant, f.namespace, f.name, h.kind)
	}
	return m, nil
}

func (h *Connectors) list(ctx context.Context, w http.ResponseWriter, tenant, namespace string) error {
	resp, err := h.b.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindFunctionMesh, Tenant: tenant, Namespace: namespace})
	if err != nil {
		return err
	}
	names := []string{}
	for _, o := range resp.GetObjects() {
		if m := o.GetFunctionMesh(); h.isOne(m) {
			names = append(names, m.GetMetadata().GetName())
		}
	}
	sort.Strings(names)
	return writeJSON(w, http.StatusOK, names)
}

func (h *Connectors) get(ctx context.Context, w http.ResponseWriter, f fn) error {
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	c := h.connectors(m.GetSpec())[0]
	cluster := c.GetPlacement().GetCluster()
	if cluster == "" {
		cluster = c.GetInput().GetCluster() + c.GetOutput().GetCluster() // a sink has one, a source the other
	}
	opts, _ := json.Marshal(runtimeOptions{Cluster: cluster})
	guarantee := "ATLEAST_ONCE"
	for k, v := range guarantees {
		if k != "" && v == c.GetProcessingGuarantee() {
			guarantee = k
		}
	}
	if h.kind == objects.ConnectorSink {
		return writeJSON(w, http.StatusOK, utils.SinkConfig{Tenant: f.tenant, Namespace: f.namespace, Name: f.name,
			Archive: builtinArchive + c.GetType(), Configs: c.GetConfig().AsMap(), Parallelism: int(max(c.GetReplicas(), 1)),
			Inputs: c.GetInput().GetTopics(), SourceSubscriptionName: c.GetInput().GetSubscription(),
			ProcessingGuarantees: guarantee, CustomRuntimeOptions: string(opts), AutoAck: true})
	}
	return writeJSON(w, http.StatusOK, utils.SourceConfig{Tenant: f.tenant, Namespace: f.namespace, Name: f.name,
		Archive: builtinArchive + c.GetType(), Configs: c.GetConfig().AsMap(), Parallelism: int(max(c.GetReplicas(), 1)),
		TopicName: c.GetOutput().GetTopic(), ProcessingGuarantees: guarantee, CustomRuntimeOptions: string(opts)})
}

func (h *Connectors) status(ctx context.Context, w http.ResponseWriter, f fn) error {
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	c := h.connectors(m.GetSpec())[0]
	n := int(max(c.GetReplicas(), 1))
	byIndex := map[int]*meshfedv1.InstanceStatus{}
	for _, fs := range m.GetStatus().GetFunctions() {
		if fs.GetName() == c.GetName() {
			for _, in := range fs.GetInstances() {
				byIndex[int(in.GetIndex())] = in
			}
		}
	}
	if h.kind == objects.ConnectorSink {
		st := utils.SinkStatus{NumInstances: n, Instances: []*utils.SinkInstanceStatus{}}
		for i := 0; i < n; i++ {
			in := byIndex[i]
			d := utils.SinkInstanceStatusData{Running: in.GetState() == stateRunning, Err: in.GetLastError(),
				NumReadFromPulsar: int64(in.GetReceived()), NumSinkExceptions: int64(in.GetFailed()), NumWrittenToSink: int64(in.GetWritten()), WorkerID: in.GetAgent()}
			if d.Running {
				st.NumRunning++
			}
			st.Instances = append(st.Instances, &utils.SinkInstanceStatus{InstanceID: i, Status: d})
		}
		return writeJSON(w, http.StatusOK, st)
	}
	st := utils.SourceStatus{NumInstances: n, Instances: []*utils.SourceInstanceStatus{}}
	for i := 0; i < n; i++ {
		in := byIndex[i]
		d := utils.SourceInstanceStatusData{Running: in.GetState() == stateRunning, Err: in.GetLastError(),
			NumReceivedFromSource: int64(in.GetReceived()), NumSystemExceptions: int64(in.GetFailed()), NumWritten: int64(in.GetWritten()), WorkerID: in.GetAgent()}
		if d.Running {
			st.NumRunning++
		}
		st.Instances = append(st.Instances, &utils.SourceInstanceStatus{InstanceID: i, Status: d})
	}
	return writeJSON(w, http.StatusOK, st)
}

// setRunning stops (run false), starts (run true) or restarts the
// connector's instances, or the one instance f names, as the functions
// API does; a write that lost a race with another is tried again.
func (h *Connectors) setRunning(ctx context.Context, w http.ResponseWriter, f fn, run, restart bool) error {
	return rewriteMesh(ctx, h.b, h.mesh, f, func(next *meshfedv1.FunctionMesh) error {
		c := h.connectors(next.Spec)[0]
		idx, err := instancesOf(f, int(c.GetReplicas()))
		if err != nil {
			return err
		}
		c.StoppedInstances, c.InstanceRestarts = changeRunning(c.StoppedInstances, c.InstanceRestarts, idx, run, restart)
		return nil
	}, w)
}

// put creates (create) or replaces a source or sink from its config,
// sent as the sourceConfig/sinkConfig part of a multipart form (as
// pulsar-admin does) or as a JSON body.
func (h *Connectors) put(ctx context.Context, w http.ResponseWriter, r *http.Request, f fn, create bool) error {
	body, err := h.configBody(r)
	if err != nil {
		return err
	}
	c, cluster, err := h.decode(body, f)
	if err != nil {
		return err
	}
	if cluster == "" {
		resp, err := h.b.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindCluster})
		if err != nil {
			return err
		}
		if n := len(resp.GetObjects()); n != 1 {
			return badRequest(`customRuntimeOptions: name the cluster the %s runs in, {"cluster": "NAME"}: this control plane has %d clusters`, h.kind, n)
		}
		cluster = objects.Meta(resp.GetObjects()[0]).GetName()
	}
	if c.Output != nil {
		c.Output.Cluster = cluster
	}
	if c.Input != nil {
		c.Input.Cluster = cluster
	}
	var rv uint64
	resp, err := h.b.Get(ctx, meshGet(f))
	switch {
	case status.Code(err) == codes.NotFound && create:
	case err != nil && status.Code(err) != codes.NotFound:
		return err
	case err != nil:
		return notFound("%s %s/%s/%s doesn't exist", h.kind, f.tenant, f.namespace, f.name)
	case create:
		return &httpError{code: http.StatusConflict, err: fmt.Errorf("%s %s already exists", h.kind, f.name)}
	case !h.isOne(resp.GetObject().GetFunctionMesh()):
		return badRequest("%s/%s/%s is a FunctionMesh, not a Pulsar %s: manage it with meshfed apply", f.tenant, f.namespace, f.name, h.kind)
	default:
		old := resp.GetObject().GetFunctionMesh()
		rv = old.GetMetadata().GetResourceVersion()
		// Stopped instances and restart counters are not in a
		// SourceConfig or SinkConfig: keep those of instances that remain.
		was := h.connectors(old.GetSpec())[0]
		c.StoppedInstances, c.InstanceRestarts = keepRunning(was.GetStoppedInstances(), was.GetInstanceRestarts(), c.GetReplicas())
	}
	m := &meshfedv1.FunctionMesh{ApiVersion: objects.APIVersion, Kind: objects.KindFunctionMesh,
		Metadata: &meshfedv1.ObjectMeta{Name: f.name, Tenant: f.tenant, Namespace: f.namespace, ResourceVersion: rv}, Spec: &meshfedv1.FunctionMeshSpec{}}
	if h.kind == objects.ConnectorSink {
		m.Spec.Sinks = []*meshfedv1.ConnectorSpec{c}
	} else {
		m.Spec.Sources = []*meshfedv1.ConnectorSpec{c}
	}
	if _, err := h.b.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{objects.Wrap(m)}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Connectors) configBody(r *http.Request) ([]byte, error) {
	part := h.kind + "Config"
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxFieldSize+1))
		if err != nil || len(b) > maxFieldSize {
			return nil, badRequest("%s: read body: larger than %d bytes or unreadable", part, maxFieldSize)
		}
		return b, nil
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var cfg []byte
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badRequest("multipart body: %v", err)
		}
		switch p.FormName() {
		case part:
			if cfg, err = io.ReadAll(io.LimitReader(p, maxFieldSize)); err != nil {
				return nil, badRequest("%s: %v", part, err)
			}
		case "url", "data":
			return nil, unsupported(p.FormName(), "meshfed connectors are built in: name one with archive builtin://TYPE in "+part)
		default:
			return nil, badRequest("multipart part %q: not a part of Pulsar's %ss API (%s)", p.FormName(), h.kind, part)
		}
	}
	if cfg == nil {
		return nil, badRequest("multipart part %q: required", part)
	}
	return cfg, nil
}

// decode maps a SourceConfig or SinkConfig onto a ConnectorSpec and the
// cluster named in customRuntimeOptions. Fields without a meshfed meaning
// are refused when set, each named.
func (h *Connectors) decode(body []byte, f fn) (*meshfedv1.ConnectorSpec, string, error) {
	var errs []error
	refuse := func(field, why string) { errs = append(errs, unsupported(field, why)) }
	c := &meshfedv1.ConnectorSpec{Name: f.name}
	var tenant, namespace, name, archive, className, guarantee, rtOpts string
	var configs, secrets map[string]any
	var parallelism int
	if h.kind == objects.ConnectorSink {
		var s utils.SinkConfig
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, "", badRequest("sinkConfig: %v", err)
		}
		tenant, namespace, name, archive, className, guarantee, rtOpts = s.Tenant, s.Namespace, s.Name, s.Archive, s.ClassName, s.ProcessingGuarantees, s.CustomRuntimeOptions
		configs, secrets, parallelism = s.Configs, s.Secrets, s.Parallelism
		pos, ok := positions[s.SourceSubscriptionPosition]
		if !ok {
			refuse("sourceSubscriptionPosition", fmt.Sprintf("%q is not Latest or Earliest", s.SourceSubscriptionPosition))
		}
		c.Input = &meshfedv1.FunctionInput{Topics: s.Inputs, Subscription: s.SourceSubscriptionName, SubscriptionPosition: pos}
		if len(s.Inputs) == 0 {
			refuse("inputs", "required: the topics the sink reads")
		}
		for field, set := range map[string]bool{"topicsPattern": s.TopicsPattern != nil, "timeoutMs": s.TimeoutMs != nil, "resources": s.Resources != nil,
			"cleanupSubscription": s.CleanupSubscription, "retainOrdering": s.RetainOrdering, "retainKeyOrdering": s.RetainKeyOrdering,
			"sinkType": s.SinkType != "", "runtimeFlags": s.RuntimeFlags != "", "topicToSerdeClassName": len(s.TopicToSerdeClassName) > 0,
			"topicToSchemaType": len(s.TopicToSchemaType) > 0, "inputSpecs": len(s.InputSpecs) > 0, "topicToSchemaProperties": len(s.TopicToSchemaProperties) > 0,
			"maxMessageRetries": s.MaxMessageRetries != 0, "deadLetterTopic": s.DeadLetterTopic != "", "negativeAckRedeliveryDelayMs": s.NegativeAckRedeliveryDelayMs != 0,
			"transformFunction": s.TransformFunction != "" || s.TransformFunctionClassName != "" || s.TransformFunctionConfig != ""} {
			if set {
				refuse(field, "has no meshfed equivalent for sinks; remove it")
			}
		}
	} else {
		var s utils.SourceConfig
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, "", badRequest("sourceConfig: %v", err)
		}
		tenant, namespace, name, archive, className, guarantee, rtOpts = s.Tenant, s.Namespace, s.Name, s.Archive, s.ClassName, s.ProcessingGuarantees, s.CustomRuntimeOptions
		configs, secrets, parallelism = s.Configs, s.Secrets, s.Parallelism
		c.Output = &meshfedv1.FunctionOutput{Topic: s.TopicName}
		if s.TopicName == "" {
			refuse("topicName", "required: the topic the source writes")
		}
		for field, set := range map[string]bool{"producerConfig": s.ProducerConfig != nil, "serdeClassName": s.SerdeClassName != "", "schemaType": s.SchemaType != "",
			"resources": s.Resources != nil, "runtimeFlags": s.RuntimeFlags != "", "batchSourceConfig": s.BatchSourceConfig != nil, "batchBuilder": s.BatchBuilder != ""} {
			if set {
				refuse(field, "has no meshfed equivalent for sources; remove it")
			}
		}
	}
	for field, v := range map[string]string{"tenant": tenant, "namespace": namespace, "name": name} {
		if want := map[string]string{"tenant": f.tenant, "namespace": f.namespace, "name": f.name}[field]; v != "" && v != want {
			refuse(field, fmt.Sprintf("%q differs from %q in the path", v, want))
		}
	}
	switch typ, ok := strings.CutPrefix(archive, builtinArchive); {
	case className != "":
		refuse("className", "Pulsar IO connector classes cannot run on meshfed: name a meshfed connector with archive builtin://TYPE (mqtt, http, postgres)")
	case !ok || typ == "":
		refuse("archive", fmt.Sprintf("%q: name a meshfed connector as builtin://TYPE (mqtt, http, postgres)", archive))
	default:
		c.Type = typ
	}
	if len(secrets) > 0 {
		refuse("secrets", "write secrets in configs as references, {secret: {env: NAME}} or {secret: {file: /path}}, resolved on the agent")
	}
	if parallelism < 0 {
		refuse("parallelism", "must not be negative")
	}
	c.Replicas = int32(min(parallelism, 1<<20))
	g, ok := guarantees[guarantee]
	if !ok {
		refuse("processingGuarantees", fmt.Sprintf("%q: meshfed offers ATLEAST_ONCE, ATMOST_ONCE and EFFECTIVELY_ONCE", guarantee))
	}
	c.ProcessingGuarantee = g
	if len(configs) > 0 {
		st, err := structpb.NewStruct(configs)
		if err != nil {
			refuse("configs", err.Error())
		}
		c.Config = st
	}
	opts, err := parseRuntimeOptions(rtOpts)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, "", &httpError{code: http.StatusBadRequest, err: errors.Join(errs...)}
	}
	return c, opts.Cluster, nil
}
