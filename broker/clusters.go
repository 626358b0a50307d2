package broker

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// ClusterData is a cluster's record, with Pulsar's ClusterData field names
// (GET/PUT/POST /admin/v2/clusters/{cluster}).
type ClusterData struct {
	// ServiceURL is the cluster's admin (HTTP) URL.
	ServiceURL    string `json:"serviceUrl"`
	ServiceURLTLS string `json:"serviceUrlTls"`
	// BrokerServiceURL is the binary-protocol URL replicators connect to
	// (pulsar://host:port).
	BrokerServiceURL               string   `json:"brokerServiceUrl"`
	BrokerServiceURLTLS            string   `json:"brokerServiceUrlTls"`
	ProxyServiceURL                string   `json:"proxyServiceUrl,omitempty"`
	ProxyProtocol                  string   `json:"proxyProtocol,omitempty"`
	PeerClusterNames               []string `json:"peerClusterNames,omitempty"`
	AuthenticationPlugin           string   `json:"authenticationPlugin,omitempty"`
	AuthenticationParameters       string   `json:"authenticationParameters,omitempty"`
	BrokerClientTLSEnabled         bool     `json:"brokerClientTlsEnabled,omitempty"`
	TLSAllowInsecureConnection     bool     `json:"tlsAllowInsecureConnection,omitempty"`
	BrokerClientTrustCertsFilePath string   `json:"brokerClientTrustCertsFilePath,omitempty"`
	ListenerName                   string   `json:"listenerName,omitempty"`
}

// validate checks the URLs a replicator or an admin client would use.
func (d *ClusterData) validate() error {
	for _, f := range []struct{ name, val string }{{"serviceUrl", d.ServiceURL}, {"serviceUrlTls", d.ServiceURLTLS}} {
		if f.val == "" {
			continue
		}
		u, err := url.Parse(f.val)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errorf(ErrBadRequest, "%s %q is not an http:// or https:// URL", f.name, f.val)
		}
	}
	for _, f := range []struct{ name, val string }{{"brokerServiceUrl", d.BrokerServiceURL}, {"brokerServiceUrlTls", d.BrokerServiceURLTLS}} {
		if f.val == "" {
			continue
		}
		u, err := url.Parse(f.val)
		if err != nil || (u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl") || u.Host == "" {
			return errorf(ErrBadRequest, "%s %q is not a pulsar:// or pulsar+ssl:// URL", f.name, f.val)
		}
	}
	return nil
}

// ownClusterData is this broker's own cluster as its listeners make it
// (an admin update of the own cluster overrides it).
func (b *Broker) ownClusterData() *ClusterData {
	return &ClusterData{ServiceURL: b.AdminURL(), ServiceURLTLS: b.AdminURLTLS(),
		BrokerServiceURL: b.ServiceURL(), BrokerServiceURLTLS: b.ServiceURLTLS()}
}

// clusterDataLocked returns a known cluster's data.
func (b *Broker) clusterDataLocked(name string) (*ClusterData, bool) {
	if d, ok := b.meta.Clusters[name]; ok {
		return d, true
	}
	if name == b.cfg.ClusterName {
		return b.ownClusterData(), true
	}
	return nil, false
}

func (b *Broker) clusterNamesLocked() []string {
	out := []string{b.cfg.ClusterName}
	for n := range b.meta.Clusters {
		if n != b.cfg.ClusterName {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// replicationClustersLocked is a namespace's effective replication
// clusters: the ones set, or just this broker's cluster.
func (b *Broker) replicationClustersLocked(ns string) []string {
	if p, ok := b.meta.Namespaces[ns]; ok && len(p.ReplicationClusters) > 0 {
		return p.ReplicationClusters
	}
	return []string{b.cfg.ClusterName}
}

// validateAllowedClustersLocked checks a tenant's allowed clusters as
// Pulsar does: none blank, all known.
func (b *Broker) validateAllowedClustersLocked(clusters []string) error {
	var unknown []string
	for _, c := range clusters {
		if strings.TrimSpace(c) == "" {
			return errorf(ErrPrecondition, "Clusters cannot be empty or blank")
		}
		if _, ok := b.clusterDataLocked(c); !ok {
			unknown = append(unknown, c)
		}
	}
	if len(unknown) > 0 {
		return errorf(ErrPrecondition, "Clusters do not exist: %s (create them with PUT /admin/v2/clusters/{cluster})", strings.Join(unknown, ", "))
	}
	return nil
}

// validateReplicationLocked checks a namespace's replication clusters as
// Pulsar does: not empty, no "global", every cluster known and allowed
// for the tenant.
func (b *Broker) validateReplicationLocked(tenant string, clusters []string) error {
	if len(clusters) == 0 {
		return errorf(ErrPrecondition, "ClusterIds should not be null or empty")
	}
	ti, ok := b.meta.Tenants[tenant]
	if !ok {
		return errorf(ErrTenantNotFound, "tenant %s does not exist", tenant)
	}
	for _, c := range clusters {
		if c == "global" {
			return errorf(ErrPrecondition, "Cannot specify global in the list of replication clusters")
		}
		if _, ok := b.clusterDataLocked(c); !ok {
			return errorf(ErrForbidden, "Invalid cluster id: %s", c)
		}
		if !slices.Contains(ti.AllowedClusters, c) {
			return errorf(ErrForbidden, "Cluster [%s] is not in the list of allowed clusters list for tenant [%s]", c, tenant)
		}
	}
	return nil
}

// dedupNames returns names without repeats, in first-seen order.
func dedupNames(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (b *Broker) listClusters(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	out := b.clusterNamesLocked()
	b.mu.Unlock()
	writeJSON(w, out)
}

func (b *Broker) getCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("cluster")
	b.mu.Lock()
	d, ok := b.clusterDataLocked(name)
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrClusterNotFound, "Cluster %s does not exist", name))
		return
	}
	writeJSON(w, d)
}

// readClusterData decodes a ClusterData request body.
func readClusterData(r *http.Request) (*ClusterData, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errorf(ErrBadRequest, "read cluster data: %v", err)
	}
	if s := strings.TrimSpace(string(body)); s == "" || s == "null" {
		return nil, errorf(ErrBadRequest, "cluster data is required")
	}
	d := &ClusterData{}
	if err := json.Unmarshal(body, d); err != nil {
		return nil, errorf(ErrBadRequest, "cluster data: %v", err)
	}
	return d, d.validate()
}

// putCluster creates a cluster (PUT): 409 if it exists.
func (b *Broker) putCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("cluster")
	if !validName(name) {
		httpError(w, errorf(ErrInvalidName, "Cluster name is not valid: %q", name))
		return
	}
	d, err := readClusterData(r)
	if err != nil {
		httpError(w, err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.clusterDataLocked(name); ok {
		httpError(w, errorf(ErrAlreadyExists, "Cluster %s already exists", name))
		return
	}
	if err := b.setClusterLocked(name, d); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// updateCluster replaces a cluster's data (POST): 404 if it is unknown.
// Replicators to it reconnect to the new URL before the call returns.
func (b *Broker) updateCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("cluster")
	d, err := readClusterData(r)
	if err != nil {
		httpError(w, err)
		return
	}
	update := func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.clusterDataLocked(name); !ok {
			return errorf(ErrClusterNotFound, "Cluster %s does not exist", name)
		}
		return b.setClusterLocked(name, d)
	}
	if err := update(); err != nil {
		httpError(w, err)
		return
	}
	b.syncReplication()
	w.WriteHeader(http.StatusOK)
}

func (b *Broker) setClusterLocked(name string, d *ClusterData) error {
	old, had := b.meta.Clusters[name]
	b.meta.Clusters[name] = d
	if err := b.saveMetadataLocked(); err != nil {
		if had {
			b.meta.Clusters[name] = old
		} else {
			delete(b.meta.Clusters, name)
		}
		return err
	}
	return nil
}

// deleteCluster removes a cluster no tenant allows and no namespace
// replicates to (412 "Cluster not empty" otherwise, as in Pulsar).
func (b *Broker) deleteCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("cluster")
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.clusterDataLocked(name); !ok {
		httpError(w, errorf(ErrClusterNotFound, "Cluster %s does not exist", name))
		return
	}
	if name == b.cfg.ClusterName {
		httpError(w, errorf(ErrPrecondition, "Cluster not empty: %s is this broker's own cluster", name))
		return
	}
	for tn, ti := range b.meta.Tenants {
		if slices.Contains(ti.AllowedClusters, name) {
			httpError(w, errorf(ErrPrecondition, "Cluster not empty: tenant %s allows cluster %s", tn, name))
			return
		}
	}
	for ns, p := range b.meta.Namespaces {
		if slices.Contains(p.ReplicationClusters, name) {
			httpError(w, errorf(ErrPrecondition, "Cluster not empty: namespace %s replicates to cluster %s", ns, name))
			return
		}
	}
	old := b.meta.Clusters[name]
	delete(b.meta.Clusters, name)
	if err := b.saveMetadataLocked(); err != nil {
		b.meta.Clusters[name] = old
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) getReplication(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	b.mu.Lock()
	_, ok := b.meta.Namespaces[ns]
	out := append([]string(nil), b.replicationClustersLocked(ns)...)
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "Namespace %s does not exist", ns))
		return
	}
	writeJSON(w, out)
}

// setReplication sets a namespace's replication clusters (POST, body a
// JSON list of cluster names). Replicators start or stop at once for every
// loaded topic of the namespace.
func (b *Broker) setReplication(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	var clusters []string
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &clusters); err != nil {
		httpError(w, errorf(ErrBadRequest, "replication clusters must be a JSON list of cluster names: %v", err))
		return
	}
	clusters = dedupNames(clusters)
	set := func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		p, ok := b.meta.Namespaces[ns]
		if !ok {
			return errorf(ErrNamespaceNotFound, "Namespace %s does not exist", ns)
		}
		if err := b.validateReplicationLocked(r.PathValue("tenant"), clusters); err != nil {
			return err
		}
		old := p.ReplicationClusters
		p.ReplicationClusters = clusters
		if err := b.saveMetadataLocked(); err != nil {
			p.ReplicationClusters = old
			return err
		}
		return nil
	}
	if err := set(); err != nil {
		httpError(w, err)
		return
	}
	// Replicators follow before the answer: a cursor of a new replicator
	// starts at the end of the topic, so what is produced after this call
	// returns is replicated.
	b.syncReplication()
	w.WriteHeader(http.StatusNoContent)
}

// tenantClustersInUseLocked names the namespaces of tenant that replicate
// to a cluster the tenant would no longer allow.
func (b *Broker) tenantClustersInUseLocked(tenant string, allowed []string) error {
	var used []string
	for ns, p := range b.meta.Namespaces {
		if !strings.HasPrefix(ns, tenant+"/") {
			continue
		}
		for _, c := range p.ReplicationClusters {
			if !slices.Contains(allowed, c) {
				used = append(used, fmt.Sprintf("%s (replicates to %s)", ns, c))
			}
		}
	}
	if len(used) > 0 {
		sort.Strings(used)
		return errorf(ErrInUse, "tenant %s: clusters still used by namespaces: %s", tenant, strings.Join(used, ", "))
	}
	return nil
}
