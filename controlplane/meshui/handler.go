package meshui

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/httpstatus"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Root is the page's address; Prefix is the path its files and view are
// served under.
const (
	Root   = "/ui"
	Prefix = Root + "/"
)

// APIPath is the JSON view the page polls.
const APIPath = Prefix + "api/meshes"

//go:embed assets
var assets embed.FS

// Backend is what the page needs from the control plane. Errors are gRPC
// status errors, answered with their HTTP meaning.
type Backend interface {
	// Authenticate returns the context of a request, carrying its caller.
	Authenticate(r *http.Request) (context.Context, error)
	List(ctx context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error)
}

// Handler serves the page and its JSON view.
type Handler struct {
	b      Backend
	log    *slog.Logger
	static http.Handler
	// now is the clock of View.Time (replaced in tests).
	now func() time.Time
}

// New returns the page's handler.
func New(b Backend, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return &Handler{b: b, log: log, static: http.StripPrefix(Prefix, http.FileServerFS(sub)), now: time.Now}
}

// ServeHTTP serves /ui/ (the page, its script and style: static, holding
// no data, so served to anyone) and /ui/api/meshes (the data: the caller
// authenticates as on the REST API and sees what it may read).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, "the mesh page is read-only: GET only")
		return
	}
	// The page loads nothing from elsewhere and runs no inline script.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch r.URL.Path {
	case Root:
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	case APIPath:
		h.view(w, r)
	default:
		h.static.ServeHTTP(w, r)
	}
}

// view answers the JSON view. Query parameters tenant and namespace narrow
// the meshes listed (empty: all the caller may read). A caller that may
// not read clusters or agents still gets its meshes, with those lists
// named in View.Hidden.
func (h *Handler) view(w http.ResponseWriter, r *http.Request) {
	ctx, err := h.b.Authenticate(r)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	q := r.URL.Query()
	meshes, err := h.b.List(ctx, &meshfedv1.ListRequest{Kind: objects.KindFunctionMesh, Tenant: q.Get("tenant"), Namespace: q.Get("namespace")})
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	var hidden []string
	list := func(kind, name string) []*meshfedv1.Object {
		resp, err := h.b.List(ctx, &meshfedv1.ListRequest{Kind: kind})
		if status.Code(err) == codes.PermissionDenied {
			hidden = append(hidden, name)
			return nil
		}
		if err != nil {
			h.log.Warn("mesh page: list failed", "kind", kind, "err", err)
			hidden = append(hidden, name)
			return nil
		}
		return resp.GetObjects()
	}
	var cs []*meshfedv1.Cluster
	for _, o := range list(objects.KindCluster, "clusters") {
		cs = append(cs, o.GetCluster())
	}
	var as []*meshfedv1.Agent
	for _, o := range list(objects.KindAgent, "agents") {
		as = append(as, o.GetAgent())
	}
	var ms []*meshfedv1.FunctionMesh
	for _, o := range meshes.GetObjects() {
		ms = append(ms, o.GetFunctionMesh())
	}
	v := Build(h.now(), cs, as, ms)
	v.Hidden = hidden
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := httpstatus.FromCode(status.Code(err))
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	h.fail(w, r, code, msg)
}

// fail answers {"reason": "..."}, as the Functions REST API does.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, reason string) {
	if code >= 500 {
		h.log.Warn("mesh page request failed", "path", r.URL.Path, "status", code, "err", reason)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshfed"`)
	}
	writeJSON(w, code, map[string]string{"reason": reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"reason":"encode the view"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
