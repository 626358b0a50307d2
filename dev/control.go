package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The control API, on loopback (its base URL is dev.json's "control"):
//
//	GET  /v1/clusters                         every cluster's processes (ClusterStatus list)
//	POST /v1/clusters/{name}/kill[?part=P]    SIGKILL the broker and agent (or part P); returns once they are gone
//	POST /v1/clusters/{name}/start[?part=P]   start them again on the same addresses; returns once the broker serves
//
// Both POSTs answer the cluster's ClusterStatus; errors are {"error": "..."}
// with 404 for an unknown cluster, 400 for an unknown part and 503 once
// the federation is stopping. Like the rest of meshfed dev, the API is
// open to anyone who can reach loopback.

func (f *Federation) serveControl(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("control API on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/clusters", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, f.Status())
	})
	mux.HandleFunc("POST /v1/clusters/{name}/kill", func(w http.ResponseWriter, r *http.Request) {
		f.controlOp(w, r, f.Kill)
	})
	mux.HandleFunc("POST /v1/clusters/{name}/start", func(w http.ResponseWriter, r *http.Request) {
		f.controlOp(w, r, f.Restart)
	})
	f.control = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	f.Info.Control = "http://" + lis.Addr().String()
	go func() { _ = f.control.Serve(lis) }()
	return nil
}

func (f *Federation) controlOp(w http.ResponseWriter, r *http.Request, op func(context.Context, string, ...Part) error) {
	name := r.PathValue("name")
	var ps []Part
	for _, s := range r.URL.Query()["part"] {
		for _, one := range strings.Split(s, ",") {
			p, err := ParsePart(one)
			if err != nil {
				writeError(w, err)
				return
			}
			ps = append(ps, p)
		}
	}
	if err := op(r.Context(), name, ps...); err != nil {
		writeError(w, err)
		return
	}
	for _, st := range f.Status() {
		if st.Name == name {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownCluster):
		code = http.StatusNotFound
	case errors.Is(err, ErrUnknownPart):
		code = http.StatusBadRequest
	case errors.Is(err, ErrStopped):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// ReadInfo reads dev.json from a dev federation's data dir.
func ReadInfo(dataDir string) (Info, error) {
	path := filepath.Join(dataDir, InfoFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, fmt.Errorf("%s not found: start meshfed dev (with --data-dir %s): %w", path, dataDir, ErrNoFederation)
	}
	if err != nil {
		return Info{}, fmt.Errorf("read %s: %w", path, err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// ControlClient calls a dev federation's control API.
type ControlClient struct {
	// URL is the API's base URL (dev.json's "control").
	URL  string
	http *http.Client
}

// NewControlClient returns a client of the control API at url.
func NewControlClient(url string) *ControlClient {
	return &ControlClient{URL: strings.TrimRight(url, "/"), http: &http.Client{Timeout: 2 * readyTimeout}}
}

// Status returns every cluster's processes. It fails with ErrNoFederation
// when nothing answers at the URL.
func (c *ControlClient) Status(ctx context.Context) ([]ClusterStatus, error) {
	var out []ClusterStatus
	if err := c.do(ctx, http.MethodGet, "/v1/clusters", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Kill kills the named parts of a cluster (both when none is named) with
// SIGKILL and returns once they are gone.
func (c *ControlClient) Kill(ctx context.Context, cluster string, ps ...Part) (ClusterStatus, error) {
	var st ClusterStatus
	err := c.do(ctx, http.MethodPost, "/v1/clusters/"+url.PathEscape(cluster)+"/kill"+partQuery(ps), &st)
	return st, err
}

// Restart starts the named parts of a cluster again (both when none is
// named) and returns once its broker serves.
func (c *ControlClient) Restart(ctx context.Context, cluster string, ps ...Part) (ClusterStatus, error) {
	var st ClusterStatus
	err := c.do(ctx, http.MethodPost, "/v1/clusters/"+url.PathEscape(cluster)+"/start"+partQuery(ps), &st)
	return st, err
}

// KillCluster kills a cluster's broker and agent.
func (c *ControlClient) KillCluster(ctx context.Context, cluster string) error {
	_, err := c.Kill(ctx, cluster)
	return err
}

// StartCluster starts a cluster's broker and agent again.
func (c *ControlClient) StartCluster(ctx context.Context, cluster string) error {
	_, err := c.Restart(ctx, cluster)
	return err
}

// KillBroker kills a cluster's broker alone.
func (c *ControlClient) KillBroker(ctx context.Context, cluster string) error {
	_, err := c.Kill(ctx, cluster, PartBroker)
	return err
}

// StartBroker starts a cluster's broker again.
func (c *ControlClient) StartBroker(ctx context.Context, cluster string) error {
	_, err := c.Restart(ctx, cluster, PartBroker)
	return err
}

func partQuery(ps []Part) string {
	if len(ps) == 0 {
		return ""
	}
	var s []string
	for _, p := range ps {
		s = append(s, string(p))
	}
	return "?part=" + strings.Join(s, ",")
}

func (c *ControlClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, nil)
	if err != nil {
		return fmt.Errorf("dev control API: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("dev control API at %s does not answer (is meshfed dev running?): %v: %w", c.URL, err, ErrNoFederation)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("dev control API %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		var sentinel error
		switch resp.StatusCode {
		case http.StatusNotFound:
			sentinel = ErrUnknownCluster
		case http.StatusBadRequest:
			sentinel = ErrUnknownPart
		case http.StatusServiceUnavailable:
			sentinel = ErrStopped
		}
		if sentinel != nil {
			return fmt.Errorf("dev control API %s %s: %s: %w", method, path, e.Error, sentinel)
		}
		return fmt.Errorf("dev control API %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("dev control API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}
