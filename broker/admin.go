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
	handle := func(pattern string, a access, h http.HandlerFunc) { mux.HandleFunc(pattern, b.guard(a, h)) }
	handle("GET /admin/v2/clusters", accessAuthenticated, b.listClusters)
	handle("GET /admin/v2/clusters/{cluster}", accessAuthenticated, b.getCluster)
	handle("PUT /admin/v2/clusters/{cluster}", accessSuper, b.putCluster)
	handle("POST /admin/v2/clusters/{cluster}", accessSuper, b.updateCluster)
	handle("DELETE /admin/v2/clusters/{cluster}", accessSuper, b.deleteCluster)
	handle("GET /admin/v2/brokers/health", accessAuthenticated, b.healthHTTP)
	handle("GET /admin/v2/namespaces/{tenant}/{namespace}/replication", accessTenantAdmin, b.getReplication)
	handle("POST /admin/v2/namespaces/{tenant}/{namespace}/replication", accessTenantAdmin, b.setReplication)
	handle("GET /admin/v2/tenants", accessSuper, b.listTenants)
	handle("GET /admin/v2/tenants/{tenant}", accessTenantAdmin, b.getTenant)
	handle("PUT /admin/v2/tenants/{tenant}", accessSuper, b.putTenant)
	handle("POST /admin/v2/tenants/{tenant}", accessSuper, b.putTenant)
	handle("DELETE /admin/v2/tenants/{tenant}", accessSuper, b.deleteTenant)
	handle("GET /admin/v2/namespaces/{tenant}", accessTenantAdmin, b.listNamespaces)
	handle("GET /admin/v2/namespaces/{tenant}/{namespace}", accessTenantAdmin, b.getNamespace)
	handle("PUT /admin/v2/namespaces/{tenant}/{namespace}", accessTenantAdmin, b.putNamespace)
	handle("DELETE /admin/v2/namespaces/{tenant}/{namespace}", accessTenantAdmin, b.deleteNamespace)
	handle("GET /admin/v2/namespaces/{tenant}/{namespace}/permissions", accessTenantAdmin, b.getPermissions)
	handle("POST /admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}", accessTenantAdmin, b.grantPermission)
	handle("DELETE /admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}", accessTenantAdmin, b.revokePermission)
	handle("GET /admin/v2/namespaces/{tenant}/{namespace}/deduplication", accessTenantAdmin, b.getNamespaceDedup)
	handle("POST /admin/v2/namespaces/{tenant}/{namespace}/deduplication", accessTenantAdmin, b.setNamespaceDedup)
	handle("DELETE /admin/v2/namespaces/{tenant}/{namespace}/deduplication", accessTenantAdmin, b.setNamespaceDedup)
	for _, d := range []string{"persistent", "non-persistent"} {
		p := "/admin/v2/" + d + "/{tenant}/{namespace}"
		handle("GET "+p, accessTenantAdmin, b.listTopics)
		handle("GET "+p+"/partitioned", accessTenantAdmin, b.listPartitioned)
		handle("PUT "+p+"/{topic}", accessTenantAdmin, b.putTopic)
		handle("DELETE "+p+"/{topic}", accessTenantAdmin, b.deleteTopicHTTP)
		handle("PUT "+p+"/{topic}/partitions", accessTenantAdmin, b.putPartitions)
		handle("POST "+p+"/{topic}/partitions", accessTenantAdmin, b.updatePartitions)
		handle("GET "+p+"/{topic}/partitions", accessLookup, b.getPartitions)
		handle("DELETE "+p+"/{topic}/partitions", accessTenantAdmin, b.deletePartitioned)
		handle("GET "+p+"/{topic}/stats", accessTenantAdmin, b.topicStatsHTTP)
		handle("GET "+p+"/{topic}/partitioned-stats", accessTenantAdmin, b.partitionedStatsHTTP)
		handle("GET "+p+"/{topic}/subscriptions", accessTenantAdmin, b.listSubscriptions)
		handle("DELETE "+p+"/{topic}/subscription/{sub}", accessTenantAdmin, b.deleteSubscriptionHTTP)
		handle("PUT "+p+"/{topic}/subscription/{sub}", accessTenantAdmin, b.createSubscriptionHTTP)
		handle("POST "+p+"/{topic}/subscription/{sub}/resetcursor", accessTenantAdmin, b.resetCursorHTTP)
		handle("POST "+p+"/{topic}/subscription/{sub}/resetcursor/{timestamp}", accessTenantAdmin, b.resetCursorHTTP)
		handle("GET "+p+"/{topic}/ledger/{ledger}/entry/{entry}", accessTenantAdmin, b.getEntryHTTP)
		handle("GET "+p+"/{topic}/deduplicationEnabled", accessTenantAdmin, b.getTopicDedup)
		handle("PUT "+p+"/{topic}/unload", accessTenantAdmin, b.unloadHTTP)
		handle("POST "+p+"/{topic}/terminate", accessTenantAdmin, b.terminateHTTP)
		handle("POST "+p+"/{topic}/deduplicationEnabled", accessTenantAdmin, b.setTopicDedup)
		handle("DELETE "+p+"/{topic}/deduplicationEnabled", accessTenantAdmin, b.setTopicDedup)
	}
	handle("GET /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", accessLookup, b.getSchemaHTTP)
	handle("GET /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema/{version}", accessLookup, b.getSchemaHTTP)
	handle("GET /admin/v2/namespaces/{tenant}/{namespace}/topics", accessLookup, b.namespaceTopics)
	handle("DELETE /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", accessTenantAdmin, b.deleteSchemaHTTP)
	for _, d := range []string{"persistent", "non-persistent"} {
		handle("GET /lookup/v2/topic/"+d+"/{tenant}/{namespace}/{topic}", accessLookup, b.lookupHTTP)
	}
	handle("GET /metrics", accessOpen, b.metricsHTTP)
	handle("GET /metrics/", accessOpen, b.metricsHTTP)
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

// replyNoContent ends an admin call that answers nothing: 204 No Content
// when err is nil, else the error (see httpError).
func replyNoContent(w http.ResponseWriter, err error) {
	if err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// saveMetadataHTTPLocked ends an admin call that changed the metadata: it
// saves it and answers 204 No Content, or the error.
func (b *Broker) saveMetadataHTTPLocked(w http.ResponseWriter) {
	replyNoContent(w, b.saveMetadataLocked())
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
	var nss []string
	if exists {
		for ns := range b.meta.Namespaces {
			if strings.HasPrefix(ns, name+"/") {
				nss = append(nss, ns)
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
	// A role dropped from adminRoles loses what it could do as admin.
	go func() {
		for _, ns := range nss {
			b.enforcePermissions(ns)
		}
	}()
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
	b.saveMetadataHTTPLocked(w)
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
	b.saveMetadataHTTPLocked(w)
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
	b.saveMetadataHTTPLocked(w)
}
