package broker

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// adminHandler serves the subset of Pulsar's admin REST API (v2) that tools
// and tests use, plus /metrics.
func (b *Broker) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v2/clusters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, []string{b.cfg.ClusterName})
	})
	mux.HandleFunc("GET /admin/v2/tenants", b.listTenants)
	mux.HandleFunc("GET /admin/v2/tenants/{tenant}", b.getTenant)
	mux.HandleFunc("PUT /admin/v2/tenants/{tenant}", b.putTenant)
	mux.HandleFunc("POST /admin/v2/tenants/{tenant}", b.putTenant)
	mux.HandleFunc("DELETE /admin/v2/tenants/{tenant}", b.deleteTenant)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}", b.listNamespaces)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{namespace}", b.getNamespace)
	mux.HandleFunc("PUT /admin/v2/namespaces/{tenant}/{namespace}", b.putNamespace)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{namespace}", b.deleteNamespace)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{namespace}/deduplication", b.getNamespaceDedup)
	mux.HandleFunc("POST /admin/v2/namespaces/{tenant}/{namespace}/deduplication", b.setNamespaceDedup)
	mux.HandleFunc("DELETE /admin/v2/namespaces/{tenant}/{namespace}/deduplication", b.setNamespaceDedup)
	for _, d := range []string{"persistent", "non-persistent"} {
		p := "/admin/v2/" + d + "/{tenant}/{namespace}"
		mux.HandleFunc("GET "+p, b.listTopics)
		mux.HandleFunc("GET "+p+"/partitioned", b.listPartitioned)
		mux.HandleFunc("PUT "+p+"/{topic}", b.putTopic)
		mux.HandleFunc("DELETE "+p+"/{topic}", b.deleteTopicHTTP)
		mux.HandleFunc("PUT "+p+"/{topic}/partitions", b.putPartitions)
		mux.HandleFunc("POST "+p+"/{topic}/partitions", b.updatePartitions)
		mux.HandleFunc("GET "+p+"/{topic}/partitions", b.getPartitions)
		mux.HandleFunc("DELETE "+p+"/{topic}/partitions", b.deletePartitioned)
		mux.HandleFunc("GET "+p+"/{topic}/stats", b.topicStatsHTTP)
		mux.HandleFunc("GET "+p+"/{topic}/partitioned-stats", b.partitionedStatsHTTP)
		mux.HandleFunc("GET "+p+"/{topic}/subscriptions", b.listSubscriptions)
		mux.HandleFunc("DELETE "+p+"/{topic}/subscription/{sub}", b.deleteSubscriptionHTTP)
		mux.HandleFunc("GET "+p+"/{topic}/ledger/{ledger}/entry/{entry}", b.getEntryHTTP)
		mux.HandleFunc("GET "+p+"/{topic}/deduplicationEnabled", b.getTopicDedup)
		mux.HandleFunc("PUT "+p+"/{topic}/unload", b.unloadHTTP)
		mux.HandleFunc("POST "+p+"/{topic}/terminate", b.terminateHTTP)
		mux.HandleFunc("POST "+p+"/{topic}/deduplicationEnabled", b.setTopicDedup)
		mux.HandleFunc("DELETE "+p+"/{topic}/deduplicationEnabled", b.setTopicDedup)
	}
	mux.HandleFunc("GET /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", b.getSchemaHTTP)
	mux.HandleFunc("GET /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema/{version}", b.getSchemaHTTP)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{namespace}/topics", b.namespaceTopics)
	mux.HandleFunc("DELETE /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", b.deleteSchemaHTTP)
	for _, d := range []string{"persistent", "non-persistent"} {
		mux.HandleFunc("GET /lookup/v2/topic/"+d+"/{tenant}/{namespace}/{topic}", b.lookupHTTP)
	}
	mux.HandleFunc("GET /metrics", b.metricsHTTP)
	mux.HandleFunc("GET /metrics/", b.metricsHTTP)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// httpError writes Pulsar's {"reason": ...} error body with a status that
// matches the sentinel.
func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrTopicNotFound), errors.Is(err, ErrNamespaceNotFound), errors.Is(err, ErrTenantNotFound),
		errors.Is(err, ErrSubscriptionNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrNotEmpty), errors.Is(err, ErrConsumerBusy):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalidName):
		code = http.StatusPreconditionFailed
	case errors.Is(err, ErrNotAllowed):
		code = http.StatusMethodNotAllowed
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"reason": err.Error()})
}

func (b *Broker) listTenants(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	out := make([]string, 0, len(b.meta.Tenants))
	for t := range b.meta.Tenants {
		out = append(out, t)
	}
	b.mu.Unlock()
	sort.Strings(out)
	writeJSON(w, out)
}

func (b *Broker) getTenant(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	t, ok := b.meta.Tenants[r.PathValue("tenant")]
	b.mu.Unlock()
	if !ok {
		httpError(w, ErrTenantNotFound)
		return
	}
	writeJSON(w, t)
}

func (b *Broker) putTenant(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if !validName(name) {
		httpError(w, errorf(ErrInvalidName, "tenant %q", name))
		return
	}
	info := &tenantInfo{}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, info); err != nil {
			http.Error(w, "bad tenant info: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if len(info.AllowedClusters) == 0 {
		info.AllowedClusters = []string{b.cfg.ClusterName}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.meta.Tenants[name]; ok && r.Method == http.MethodPut {
		httpError(w, errorf(ErrAlreadyExists, "tenant %s", name))
		return
	}
	b.meta.Tenants[name] = info
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) deleteTenant(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.meta.Tenants[name]; !ok {
		httpError(w, errorf(ErrTenantNotFound, "tenant %s", name))
		return
	}
	for ns := range b.meta.Namespaces {
		if strings.HasPrefix(ns, name+"/") {
			httpError(w, errorf(ErrNotEmpty, "tenant %s still has namespaces", name))
			return
		}
	}
	delete(b.meta.Tenants, name)
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) listNamespaces(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	b.mu.Lock()
	_, ok := b.meta.Tenants[tenant]
	var out []string
	for ns := range b.meta.Namespaces {
		if strings.HasPrefix(ns, tenant+"/") {
			out = append(out, ns)
		}
	}
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrTenantNotFound, "tenant %s", tenant))
		return
	}
	sort.Strings(out)
	if out == nil {
		out = []string{}
	}
	writeJSON(w, out)
}

func nsOf(r *http.Request) string { return r.PathValue("tenant") + "/" + r.PathValue("namespace") }

func (b *Broker) getNamespace(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	p, ok := b.meta.Namespaces[nsOf(r)]
	var dedup any
	if ok && p.Deduplication != nil {
		dedup = *p.Deduplication
	}
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", nsOf(r)))
		return
	}
	writeJSON(w, map[string]any{"deduplicationEnabled": dedup, "replication_clusters": []string{b.cfg.ClusterName}})
}

func (b *Broker) putNamespace(w http.ResponseWriter, r *http.Request) {
	tenant, ns := r.PathValue("tenant"), r.PathValue("namespace")
	if !validName(ns) {
		httpError(w, errorf(ErrInvalidName, "namespace %q", ns))
		return
	}
	var policies struct {
		Deduplication *bool `json:"deduplicationEnabled"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s := strings.TrimSpace(string(body)); s != "" && s != "null" {
		if err := json.Unmarshal(body, &policies); err != nil {
			http.Error(w, "bad policies: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.meta.Tenants[tenant]; !ok {
		httpError(w, errorf(ErrTenantNotFound, "tenant %s", tenant))
		return
	}
	if _, ok := b.meta.Namespaces[tenant+"/"+ns]; ok {
		httpError(w, errorf(ErrAlreadyExists, "namespace %s/%s", tenant, ns))
		return
	}
	b.meta.Namespaces[tenant+"/"+ns] = &nsPolicy{Deduplication: policies.Deduplication}
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	force := r.URL.Query().Get("force") == "true"
	topics := b.topicsOfNamespace(ns)
	if len(topics) > 0 && !force {
		httpError(w, errorf(ErrNotEmpty, "namespace %s has topics", ns))
		return
	}
	for _, t := range topics {
		if err := b.deleteTopic(t, true); err != nil && !errors.Is(err, ErrTopicNotFound) {
			httpError(w, err)
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.meta.Namespaces[ns]; !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", ns))
		return
	}
	delete(b.meta.Namespaces, ns)
	for base := range b.meta.Partitioned {
		if n, err := parseTopic(base); err == nil && n.ns() == ns {
			delete(b.meta.Partitioned, base)
		}
	}
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) getNamespaceDedup(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	b.mu.Lock()
	_, ok := b.meta.Namespaces[ns]
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", ns))
		return
	}
	writeJSON(w, b.dedupEnabled(ns))
}

// parseBoolBody reads a bare true/false body (Pulsar's style).
func parseBoolBody(r *http.Request) (bool, error) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1024))
	return strconv.ParseBool(strings.Trim(strings.TrimSpace(string(body)), `"`))
}

func (b *Broker) setNamespaceDedup(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	var v *bool
	if r.Method == http.MethodPost {
		x, err := parseBoolBody(r)
		if err != nil {
			http.Error(w, "body must be true or false", http.StatusBadRequest)
			return
		}
		v = &x
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.meta.Namespaces[ns]
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", ns))
		return
	}
	p.Deduplication = v
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
