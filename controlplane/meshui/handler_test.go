package meshui

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backend answers from a fixed list of objects; denied kinds are refused.
type backend struct {
	authErr error
	denied  map[string]bool
	objs    []*meshfedv1.Object
	asked   []*meshfedv1.ListRequest
}

var _ Backend = (*backend)(nil)

func (b *backend) Authenticate(r *http.Request) (context.Context, error) {
	return r.Context(), b.authErr
}

func (b *backend) List(_ context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error) {
	b.asked = append(b.asked, req)
	if b.denied[req.GetKind()] {
		return nil, status.Errorf(codes.PermissionDenied, "role viewer may not list %s", req.GetKind())
	}
	var out []*meshfedv1.Object
	for _, o := range b.objs {
		if objects.KindOf(o).Name == req.GetKind() {
			out = append(out, o)
		}
	}
	return &meshfedv1.ListResponse{Objects: out}, nil
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestPageIsServedSelfContained(t *testing.T) {
	h := New(&backend{}, nil)
	if w := get(t, h, http.MethodGet, "/ui"); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", w.Code, w.Header().Get("Location"))
	}
	for path, typ := range map[string]string{"/ui/": "text/html", "/ui/app.js": "javascript", "/ui/app.css": "text/css"} {
		w := get(t, h, http.MethodGet, path)
		if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), typ) {
			t.Errorf("GET %s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if w := get(t, h, http.MethodPost, APIPath); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", APIPath, w.Code)
	}
	// Nothing is loaded from elsewhere: the only absolute URL is the SVG
	// namespace, which is a name, not a fetch.
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(p)
		for _, u := range url.FindAllString(string(b), -1) {
			if u != "http://www.w3.org" {
				t.Errorf("%s refers to %s", p, u)
			}
		}
		return nil
	})
}

func TestViewAnswers(t *testing.T) {
	objs := []*meshfedv1.Object{
		testkit.Cluster("a"),
		objects.Wrap(&meshfedv1.Agent{Metadata: &meshfedv1.ObjectMeta{Name: "agent-a"}, Spec: &meshfedv1.AgentSpec{Cluster: "a"}}),
		testkit.Mesh("public", "default", "wc", testkit.Builtin("split", "word-split", "a", "in", "a", "out")),
	}
	decode := func(t *testing.T, w *httptest.ResponseRecorder) View {
		t.Helper()
		var v View
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%d %s: %v", w.Code, w.Body, err)
		}
		return v
	}
	t.Run("everything", func(t *testing.T) {
		b := &backend{objs: objs}
		w := get(t, New(b, nil), http.MethodGet, APIPath+"?tenant=public")
		v := decode(t, w)
		if w.Code != http.StatusOK || len(v.Clusters) != 1 || len(v.Agents) != 1 || len(v.Meshes) != 1 || len(v.Hidden) != 0 {
			t.Errorf("%d %+v", w.Code, v)
		}
		if b.asked[0].GetTenant() != "public" || b.asked[0].GetStale() {
			t.Errorf("meshes listed with %v, want tenant public and a linearizable read", b.asked[0])
		}
	})
	t.Run("clusters and agents hidden", func(t *testing.T) {
		b := &backend{objs: objs, denied: map[string]bool{objects.KindCluster: true, objects.KindAgent: true}}
		v := decode(t, get(t, New(b, nil), http.MethodGet, APIPath))
		if len(v.Meshes) != 1 || len(v.Clusters) != 0 || !slices.Equal(v.Hidden, []string{"clusters", "agents"}) {
			t.Errorf("%+v", v)
		}
	})
	t.Run("meshes refused", func(t *testing.T) {
		b := &backend{objs: objs, denied: map[string]bool{objects.KindFunctionMesh: true}}
		w := get(t, New(b, nil), http.MethodGet, APIPath)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "may not list FunctionMesh") {
			t.Errorf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		b := &backend{authErr: status.Error(codes.Unauthenticated, "this control plane requires a bearer token")}
		w := get(t, New(b, nil), http.MethodGet, APIPath)
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" || !strings.Contains(w.Body.String(), "bearer token") {
			t.Errorf("%d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
		if len(b.asked) != 0 {
			t.Errorf("listed %v before authenticating", b.asked)
		}
	})
}
