package functionsapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Prefix is the path the API is served under.
const Prefix = "/admin/v3/functions/"

// Backend is what the API needs from the control plane. Errors are gRPC
// status errors (or this package's), answered with their HTTP meaning.
type Backend interface {
	// Authenticate returns the context of a request, carrying its caller.
	Authenticate(r *http.Request) (context.Context, error)
	Apply(ctx context.Context, req *meshfedv1.ApplyRequest) (*meshfedv1.ApplyResponse, error)
	Get(ctx context.Context, req *meshfedv1.GetRequest) (*meshfedv1.GetResponse, error)
	List(ctx context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error)
	Delete(ctx context.Context, req *meshfedv1.DeleteRequest) (*meshfedv1.DeleteResponse, error)
	// PushPackage stores data and returns its content address.
	PushPackage(ctx context.Context, name string, data []byte) (string, error)
	GetPackage(ctx context.Context, digest string) ([]byte, error)
	GetState(ctx context.Context, sc *meshfedv1.StateScope, keys []string) ([]*meshfedv1.StateValue, error)
	PutState(ctx context.Context, sc *meshfedv1.StateScope, ops []*meshfedv1.StateOp) error
}

// Handler serves the API.
type Handler struct {
	b   Backend
	log *slog.Logger
	// fetch downloads http(s) package URLs (replaced in tests).
	fetch func(ctx context.Context, u string) ([]byte, error)
}

// New returns the API's handler.
func New(b Backend, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{b: b, log: log, fetch: fetchURL}
}

// fn names one function (and, for instance calls, one instance: -1 all).
type fn struct {
	tenant, namespace, name string
	instance                int
}

func (f fn) scope() *meshfedv1.StateScope {
	return &meshfedv1.StateScope{Tenant: f.tenant, Namespace: f.namespace, Mesh: f.name, Function: f.name}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, err := h.b.Authenticate(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), strings.TrimSuffix(Prefix, "/"))
	var parts []string
	for _, p := range strings.Split(strings.Trim(rest, "/"), "/") {
		u, err := url.PathUnescape(p)
		if err != nil {
			h.fail(w, r, badRequest("path: %v", err))
			return
		}
		parts = append(parts, u)
	}
	if err := h.route(ctx, w, r, parts); err != nil {
		h.fail(w, r, err)
	}
}

// route dispatches on the path after the prefix.
func (h *Handler) route(ctx context.Context, w http.ResponseWriter, r *http.Request, p []string) error {
	m := r.Method
	switch {
	case len(p) == 1 && p[0] == "upload" && m == http.MethodPost:
		return h.upload(ctx, w, r)
	case len(p) == 1 && p[0] == "download" && m == http.MethodGet:
		return h.downloadPath(ctx, w, r.URL.Query().Get("path"))
	case len(p) == 1 && p[0] == "builtins" && m == http.MethodGet:
		return writeJSON(w, http.StatusOK, []any{})
	case len(p) == 2 && m == http.MethodGet:
		return h.list(ctx, w, p[0], p[1])
	case len(p) < 3:
		return notFound("no such endpoint: %s %s", m, r.URL.Path)
	}
	f := fn{tenant: p[0], namespace: p[1], name: p[2], instance: -1}
	op := p[3:]
	switch {
	case len(op) == 0 && m == http.MethodPost:
		return h.register(ctx, w, r, f)
	case len(op) == 0 && m == http.MethodPut:
		return h.update(ctx, w, r, f)
	case len(op) == 0 && m == http.MethodDelete:
		return h.delete(ctx, w, f)
	case len(op) == 0 && m == http.MethodGet:
		return h.get(ctx, w, f)
	case len(op) == 2 && op[0] == "state" && m == http.MethodGet:
		return h.getState(ctx, w, f, op[1])
	case len(op) == 2 && op[0] == "state" && m == http.MethodPost:
		return h.putState(ctx, w, r, f, op[1])
	case len(op) == 1 && op[0] == "download" && m == http.MethodGet:
		return h.download(ctx, w, f)
	case len(op) == 1 && op[0] == "trigger" && m == http.MethodPost:
		return h.trigger(ctx, w, r, f)
	}
	if len(op) == 2 {
		id, err := strconv.Atoi(op[0])
		if err != nil || id < 0 {
			return badRequest("instance id %q: not a number", op[0])
		}
		f.instance = id
		op = op[1:]
	}
	if len(op) != 1 {
		return notFound("no such endpoint: %s %s", m, r.URL.Path)
	}
	switch {
	case op[0] == "status" && m == http.MethodGet:
		return h.status(ctx, w, f)
	case op[0] == "stats" && m == http.MethodGet:
		return h.stats(ctx, w, f)
	case op[0] == "stop" && m == http.MethodPost:
		return h.setRunning(ctx, w, f, false, false)
	case op[0] == "start" && m == http.MethodPost:
		return h.setRunning(ctx, w, f, true, false)
	case op[0] == "restart" && m == http.MethodPost:
		return h.setRunning(ctx, w, f, true, true)
	}
	return notFound("no such endpoint: %s %s", m, r.URL.Path)
}

// fail answers err as Pulsar does: a status and {"reason": "..."}.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, reason := httpStatus(err)
	if code >= 500 {
		h.log.Warn("functions api request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", reason)
	}
	_ = writeJSON(w, code, map[string]string{"reason": reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, err = w.Write(b)
	return err
}
