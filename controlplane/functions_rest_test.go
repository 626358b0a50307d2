package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// The HTTP address of a server with TLS answers TLS and plaintext on one
// port; the functions API authenticates a bearer token over TLS only.
func TestFunctionsAPIOverSniffedTLS(t *testing.T) {
	_, s, token := secureServer(t)

	tlsClient := httpsClient(t, s.cfg.TLS.CA)
	plainClient := &http.Client{Timeout: 10 * time.Second}
	addr := s.HTTPAddr()
	if code, _ := httpGet(t, plainClient, "http://"+addr+"/healthz", ""); code != http.StatusOK {
		t.Errorf("plaintext /healthz: %d", code)
	}
	if code, _ := httpGet(t, tlsClient, "https://"+addr+"/healthz", ""); code != http.StatusOK {
		t.Errorf("TLS /healthz: %d", code)
	}
	list := "/admin/v3/functions/public/default"
	for _, tt := range []struct {
		name       string
		client     *http.Client
		scheme     string
		token      string
		code       int
		wantReason string
	}{
		{"token in plaintext", plainClient, "http://", token, http.StatusUnauthorized, "requires TLS"},
		{"no token", tlsClient, "https://", "", http.StatusUnauthorized, "bearer token"},
		{"forged token", tlsClient, "https://", "mft1.forged", http.StatusUnauthorized, "token refused"},
		{"bootstrap token", tlsClient, "https://", token, http.StatusOK, ""},
	} {
		code, body := httpGet(t, tt.client, tt.scheme+addr+list, tt.token)
		if code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
			continue
		}
		if tt.wantReason != "" {
			var e struct{ Reason string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Reason, tt.wantReason) {
				t.Errorf("%s: body %s, want a reason containing %q", tt.name, body, tt.wantReason)
			}
		} else if strings.TrimSpace(body) != "[]" {
			t.Errorf("%s: list %s, want []", tt.name, body)
		}
	}
}

// Without --auth (and without TLS) Pulsar's admin client manages
// functions over plain HTTP, as on a Pulsar cluster without
// authentication.
func TestFunctionsAPIWithoutAuth(t *testing.T) {
	_, objs, admin := plainAdminServer(t)
	fns := admin.Functions()
	// Two clusters: the function names its own.
	cfg := &utils.FunctionConfig{Tenant: "acme", Namespace: "etl", Name: "excl", Inputs: []string{"persistent://acme/etl/in"}, Output: "persistent://acme/etl/out", Parallelism: 2,
		CustomRuntimeOptions: `{"cluster":"a"}`}
	if err := fns.CreateFuncWithURL(cfg, "builtin://exclamation"); err != nil {
		t.Fatal(err)
	}
	got, err := fns.GetFunction("acme", "etl", "excl")
	if err != nil || got.Parallelism != 2 || got.Output != "persistent://acme/etl/out" {
		t.Errorf("get: %+v, %v", got, err)
	}
	if err := fns.StopFunctionWithID("acme", "etl", "excl", 1); err != nil {
		t.Fatal(err)
	}
	resp, err := objs.Get(context.Background(), &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: "acme", Namespace: "etl", Name: "excl"})
	if err != nil {
		t.Fatal(err)
	}
	if f := resp.GetObject().GetFunctionMesh().GetSpec().GetFunctions()[0]; !slices.Equal(f.GetStoppedInstances(), []int32{1}) {
		t.Errorf("after stopping instance 1: stoppedInstances %v", f.GetStoppedInstances())
	}
	// No agents: nothing runs, and status says so.
	st, err := fns.GetFunctionStatus("acme", "etl", "excl")
	if err != nil || st.NumInstances != 2 || st.NumRunning != 0 {
		t.Errorf("status: %+v, %v", st, err)
	}
	if names, err := fns.GetFunctions("acme", "etl"); err != nil || !slices.Equal(names, []string{"excl"}) {
		t.Errorf("list: %v, %v", names, err)
	}
	if err := fns.DeleteFunction("acme", "etl", "excl"); err != nil {
		t.Fatal(err)
	}
	_, err = fns.GetFunction("acme", "etl", "excl")
	var re rest.Error
	if !errors.As(err, &re) || re.Code != http.StatusNotFound {
		t.Errorf("get after delete: %v, want 404", err)
	}
}
