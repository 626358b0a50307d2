package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAgentHealthEndpoints(t *testing.T) {
	var readyErr error
	mux := agentMux(http.NotFoundHandler(), func() (string, error) { return "registered", readyErr })
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, strings.TrimSpace(string(b))
	}
	for _, tc := range []struct {
		err        error
		path       string
		code       int
		bodyPrefix string
	}{
		{nil, "/healthz", 200, "ok"},
		{nil, "/readyz", 200, "ready: registered"},
		{errors.New("not registered with the control plane yet"), "/readyz", 503, "not ready: not registered"},
		{errors.New("not registered with the control plane yet"), "/healthz", 200, "ok"},
	} {
		readyErr = tc.err
		if code, body := get(tc.path); code != tc.code || !strings.HasPrefix(body, tc.bodyPrefix) {
			t.Errorf("GET %s with ready error %v: %d %q, want %d %q…", tc.path, tc.err, code, body, tc.code, tc.bodyPrefix)
		}
	}
}
