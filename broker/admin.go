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
	mux.HandleFunc("GET /admin/v2/clusters", b.listClusters)
	mux.HandleFunc("GET /admin/v2/clusters/{cluster}", b.getCluster)
	mux.HandleFunc("PUT /admin/v2/clusters/{cluster}", b.putCluster)
	mux.HandleFunc("POST /admin/v2/clusters/{cluster}", b.updateCluster)
	mux.HandleFunc("DELETE /admin/v2/clusters/{cluster}", b.deleteCluster)
	mux.HandleFunc("GET /admin/v2/brokers/health", b.healthHTTP)
	mux.HandleFunc("GET /admin/v2/namespaces/{tenant}/{namespace}/replication", b.getReplication)
	mux.HandleFunc("POST /admin/v2/namespaces/{tenant}/{namespace}/replication", b.setReplication)
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
		mux.HandleFunc("PUT "+p+"/{topic}/subscription/{sub}", b.createSubscriptionHTTP)
		mux.HandleFunc("POST "+p+"/{topic}/subscription/{sub}/resetcursor", b.resetCursorHTTP)
		mux.HandleFunc("POST "+p+"/{topic}/subscription/{sub}/resetcursor/{timestamp}", b.resetCursorHTTP)
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
		errors.Is(err, ErrSubscriptionNotFound), errors.Is(err, ErrClusterNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrNotEmpty), errors.Is(err, ErrConsumerBusy),
		errors.Is(err, ErrInUse):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalidName), errors.Is(err, ErrPrecondition):
		code = http.StatusPreconditionFailed
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrAuthorization):
		code = http.StatusForbidden
	case errors.Is(err, ErrAuthentication):
		code = http.StatusUnauthorized
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

// putTenant creates (PUT) or updates (POST) a tenant. allowedClusters
// must name known clusters (412 otherwise, as in Pulsar); left empty it
// defaults to this broker's cluster. An update may not drop a cluster a
// namespace of the tenant replicates to (409).
func (b *Broker) putTenant(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if !validName(name) {
		httpError(w, errorf(ErrInvalidName, "Tenant name is not valid: %q", name))
		return
	}
	info := &tenantInfo{}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s := strings.TrimSpace(string(body)); s != "" && s != "null" {
		if err := json.Unmarshal(body, info); err != nil {
			httpError(w, errorf(ErrBadRequest, "tenant info: %v", err))
			return
		}
	}
	if len(info.AllowedClusters) == 0 {
		info.AllowedClusters = []string{b.cfg.ClusterName}
	}
	info.AllowedClusters = dedupNames(info.AllowedClusters)
	if info.AdminRoles == nil {
		info.AdminRoles = []string{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, exists := b.meta.Tenants[name]
	switch {
	case exists && r.Method == http.MethodPut:
		httpError(w, errorf(ErrAlreadyExists, "Tenant %s already exists", name))
		return
	case !exists && r.Method == http.MethodPost:
		httpError(w, errorf(ErrTenantNotFound, "Tenant %s not found", name))
		return
	}
	if err := b.validateAllowedClustersLocked(info.AllowedClusters); err != nil {
		httpError(w, err)
		return
	}
	if err := b.tenantClustersInUseLocked(name, info.AllowedClusters); err != nil {
		httpError(w, err)
		return
	}
	old := b.meta.Tenants[name]
	b.meta.Tenants[name] = info
	if err := b.saveMetadataLocked(); err != nil {
		if exists {
			b.meta.Tenants[name] = old
		} else {
			delete(b.meta.Tenants, name)
		}
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
	repl := append([]string(nil), b.replicationClustersLocked(nsOf(r))...)
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", nsOf(r)))
		return
	}
	writeJSON(w, map[string]any{"deduplicationEnabled": dedup, "replication_clusters": repl})
}

func (b *Broker) putNamespace(w http.ResponseWriter, r *http.Request) {
	tenant, ns := r.PathValue("tenant"), r.PathValue("namespace")
	if !validName(ns) {
		httpError(w, errorf(ErrInvalidName, "namespace %q", ns))
		return
	}
	var policies struct {
		Deduplication       *bool    `json:"deduplicationEnabled"`
		ReplicationClusters []string `json:"replication_clusters"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s := strings.TrimSpace(string(body)); s != "" && s != "null" {
		if err := json.Unmarshal(body, &policies); err != nil {
			httpError(w, errorf(ErrBadRequest, "namespace policies: %v", err))
			return
		}
	}
	repl := dedupNames(policies.ReplicationClusters)
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
	if len(repl) > 0 {
		if err := b.validateReplicationLocked(tenant, repl); err != nil {
			httpError(w, err)
			return
		}
	}
	b.meta.Namespaces[tenant+"/"+ns] = &nsPolicy{Deduplication: policies.Deduplication, ReplicationClusters: repl}
	if err := b.saveMetadataLocked(); err != nil {
		delete(b.meta.Namespaces, tenant+"/"+ns)
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
