package broker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
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

// topicOf builds the topic name addressed by an admin path.
func topicOf(r *http.Request) (topicName, error) {
	domain := "persistent"
	if strings.HasPrefix(r.URL.Path, "/admin/v2/non-persistent/") {
		domain = "non-persistent"
	}
	n, err := parseTopic(domain + "://" + nsOf(r) + "/" + r.PathValue("topic"))
	if err != nil {
		return n, errorf(ErrInvalidName, "%v", err)
	}
	return n, nil
}

func (b *Broker) listTopics(w http.ResponseWriter, r *http.Request) {
	out := b.topicsOfNamespace(nsOf(r))
	if out == nil {
		out = []string{}
	}
	writeJSON(w, out)
}

func (b *Broker) listPartitioned(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	b.mu.Lock()
	out := []string{}
	for base := range b.meta.Partitioned {
		if n, err := parseTopic(base); err == nil && n.ns() == ns {
			out = append(out, base)
		}
	}
	b.mu.Unlock()
	sort.Strings(out)
	writeJSON(w, out)
}

func (b *Broker) putTopic(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	if err := b.createTopic(n.String()); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) deleteTopicHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	force := r.URL.Query().Get("force") == "true"
	if np := b.partitions(n); np > 0 && n.partition < 0 {
		b.deletePartitioned(w, r)
		return
	}
	if err := b.deleteTopic(n.String(), force); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readIntBody reads a partition count: a bare integer, or the
// {"partitions": N, "properties": {...}} object newer admin clients send.
func readIntBody(r *http.Request) (int, error) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "{") {
		var v struct {
			Partitions int `json:"partitions"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return 0, err
		}
		return v.Partitions, nil
	}
	return strconv.Atoi(strings.Trim(s, `"`))
}

func (b *Broker) putPartitions(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	np, err := readIntBody(r)
	if err != nil || np <= 0 {
		http.Error(w, "body must be a positive number of partitions", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.meta.Partitioned[n.String()]; ok {
		httpError(w, errorf(ErrAlreadyExists, "partitioned topic %s", n))
		return
	}
	if _, ok := b.topics[n.String()]; ok {
		httpError(w, errorf(ErrAlreadyExists, "topic %s", n))
		return
	}
	if err := b.ensureNamespaceLocked(n, true); err != nil {
		httpError(w, err)
		return
	}
	b.meta.Partitioned[n.String()] = np
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) updatePartitions(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	np, err := readIntBody(r)
	if err != nil || np <= 0 {
		http.Error(w, "body must be a positive number of partitions", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.meta.Partitioned[n.String()]
	if !ok {
		httpError(w, errorf(ErrTopicNotFound, "partitioned topic %s", n))
		return
	}
	if np < old {
		http.Error(w, "the number of partitions can only grow", http.StatusConflict)
		return
	}
	b.meta.Partitioned[n.String()] = np
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) getPartitions(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, map[string]int{"partitions": b.partitions(n)})
}

func (b *Broker) deletePartitioned(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	np := b.partitions(n)
	if np == 0 {
		httpError(w, errorf(ErrTopicNotFound, "partitioned topic %s", n))
		return
	}
	for i := 0; i < np; i++ {
		if err := b.deleteTopic(n.partitionName(i).String(), true); err != nil && !errors.Is(err, ErrTopicNotFound) {
			httpError(w, err)
			return
		}
	}
	b.mu.Lock()
	delete(b.meta.Partitioned, n.String())
	err = b.saveMetadataLocked()
	b.mu.Unlock()
	if err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// TopicStats uses Pulsar's field names for topic statistics.
type TopicStats struct {
	MsgRateIn           float64                       `json:"msgRateIn"`
	MsgThroughputIn     float64                       `json:"msgThroughputIn"`
	MsgRateOut          float64                       `json:"msgRateOut"`
	MsgThroughputOut    float64                       `json:"msgThroughputOut"`
	MsgInCounter        int64                         `json:"msgInCounter"`
	BytesInCounter      int64                         `json:"bytesInCounter"`
	MsgOutCounter       int64                         `json:"msgOutCounter"`
	BytesOutCounter     int64                         `json:"bytesOutCounter"`
	AverageMsgSize      float64                       `json:"averageMsgSize"`
	StorageSize         int64                         `json:"storageSize"`
	BacklogSize         int64                         `json:"backlogSize"`
	Publishers          []PublisherStats              `json:"publishers"`
	Subscriptions       map[string]*SubscriptionStats `json:"subscriptions"`
	DeduplicationStatus string                        `json:"deduplicationStatus"`
}

// PublisherStats describes one connected producer.
type PublisherStats struct {
	ProducerID      uint64            `json:"producerId"`
	ProducerName    string            `json:"producerName"`
	Address         string            `json:"address"`
	ConnectedSince  string            `json:"connectedSince"`
	AccessMode      string            `json:"accessMode"`
	MsgInCounter    int64             `json:"msgInCounter"`
	BytesInCounter  int64             `json:"bytesInCounter"`
	MsgRateIn       float64           `json:"msgRateIn"`
	MsgThroughputIn float64           `json:"msgThroughputIn"`
	ClientVersion   string            `json:"clientVersion"`
	Metadata        map[string]string `json:"metadata"`
}

// SubscriptionStats describes one subscription.
type SubscriptionStats struct {
	Type             string          `json:"type"`
	MsgBacklog       int64           `json:"msgBacklog"`
	UnackedMessages  int64           `json:"unackedMessages"`
	MsgRateOut       float64         `json:"msgRateOut"`
	MsgThroughputOut float64         `json:"msgThroughputOut"`
	MsgOutCounter    int64           `json:"msgOutCounter"`
	IsDurable        bool            `json:"isDurable"`
	Consumers        []ConsumerStats `json:"consumers"`
}

// ConsumerStats describes one connected consumer.
type ConsumerStats struct {
	ConsumerName     string            `json:"consumerName"`
	AvailablePermits int64             `json:"availablePermits"`
	UnackedMessages  int               `json:"unackedMessages"`
	Address          string            `json:"address"`
	ConnectedSince   string            `json:"connectedSince"`
	MsgOutCounter    int64             `json:"msgOutCounter"`
	BytesOutCounter  int64             `json:"bytesOutCounter"`
	ClientVersion    string            `json:"clientVersion"`
	Metadata         map[string]string `json:"metadata"`
}

// Stats returns statistics of a topic partition or non-partitioned topic.
func (b *Broker) Stats(topicName string) (*TopicStats, error) {
	t, err := b.getTopic(topicName, false)
	if err != nil {
		return nil, err
	}
	return t.statsSnapshot(), nil
}

func (t *topic) statsSnapshot() *TopicStats {
	dedup := "Disabled"
	if t.dedupEnabled() {
		dedup = "Enabled"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := &TopicStats{
		MsgRateIn: t.stats.rateIn, MsgThroughputIn: t.stats.tputIn, MsgRateOut: t.stats.rateOut,
		MsgThroughputOut: t.stats.tputOut, MsgInCounter: t.stats.msgIn, BytesInCounter: t.stats.bytesIn,
		MsgOutCounter: t.stats.msgOut, BytesOutCounter: t.stats.bytesOut,
		Publishers: []PublisherStats{}, Subscriptions: map[string]*SubscriptionStats{},
		DeduplicationStatus: dedup,
	}
	if t.stats.msgIn > 0 {
		st.AverageMsgSize = float64(t.stats.bytesIn) / float64(t.stats.msgIn)
	}
	for _, e := range t.entries {
		st.StorageSize += int64(e.size)
	}
	names := make([]string, 0, len(t.producers))
	for n := range t.producers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := t.producers[n]
		st.Publishers = append(st.Publishers, PublisherStats{ProducerID: p.id, ProducerName: p.name, Address: p.address,
			ConnectedSince: p.since.UTC().Format(time.RFC3339Nano), AccessMode: "Shared",
			MsgInCounter: p.msgIn, BytesInCounter: p.bytesIn, Metadata: p.metadata, ClientVersion: p.c.clientVersion})
	}
	var minMD int64 = -1
	for name, s := range t.subs {
		ss := &SubscriptionStats{Type: s.typ.String(), MsgBacklog: s.backlogLocked(), UnackedMessages: int64(len(s.pending)),
			MsgOutCounter: s.msgOut, IsDurable: s.durable, Consumers: []ConsumerStats{}}
		for _, c := range s.consumers {
			ss.Consumers = append(ss.Consumers, ConsumerStats{ConsumerName: c.name, AvailablePermits: c.permits,
				UnackedMessages: c.unacked, Address: c.address, ConnectedSince: c.since.UTC().Format(time.RFC3339Nano),
				MsgOutCounter: c.msgOut, BytesOutCounter: c.bytesOut, Metadata: c.metadata, ClientVersion: c.c.clientVersion})
		}
		st.Subscriptions[name] = ss
		if minMD < 0 || s.markDelete < minMD {
			minMD = s.markDelete
		}
	}
	if minMD >= 0 || len(t.subs) > 0 {
		for id := minMD + 1; id < t.next; id++ {
			if e := t.entryLocked(id); e != nil {
				st.BacklogSize += int64(e.size)
			}
		}
	}
	return st
}

func (b *Broker) topicStatsHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	if np := b.partitions(n); np > 0 && n.partition < 0 {
		b.partitionedStatsHTTP(w, r)
		return
	}
	st, err := b.Stats(n.String())
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, st)
}

func (b *Broker) partitionedStatsHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	np := b.partitions(n)
	if np == 0 {
		httpError(w, errorf(ErrTopicNotFound, "partitioned topic %s", n))
		return
	}
	agg := &TopicStats{Publishers: []PublisherStats{}, Subscriptions: map[string]*SubscriptionStats{}}
	parts := map[string]*TopicStats{}
	for i := 0; i < np; i++ {
		pn := n.partitionName(i).String()
		st, err := b.Stats(pn)
		if err != nil {
			continue
		}
		parts[pn] = st
		agg.MsgRateIn += st.MsgRateIn
		agg.MsgRateOut += st.MsgRateOut
		agg.MsgThroughputIn += st.MsgThroughputIn
		agg.MsgThroughputOut += st.MsgThroughputOut
		agg.MsgInCounter += st.MsgInCounter
		agg.MsgOutCounter += st.MsgOutCounter
		agg.BytesInCounter += st.BytesInCounter
		agg.BytesOutCounter += st.BytesOutCounter
		agg.StorageSize += st.StorageSize
		agg.BacklogSize += st.BacklogSize
		agg.Publishers = append(agg.Publishers, st.Publishers...)
		agg.DeduplicationStatus = st.DeduplicationStatus
		for name, ss := range st.Subscriptions {
			a, ok := agg.Subscriptions[name]
			if !ok {
				a = &SubscriptionStats{Type: ss.Type, IsDurable: ss.IsDurable, Consumers: []ConsumerStats{}}
				agg.Subscriptions[name] = a
			}
			a.MsgBacklog += ss.MsgBacklog
			a.UnackedMessages += ss.UnackedMessages
			a.MsgOutCounter += ss.MsgOutCounter
			a.Consumers = append(a.Consumers, ss.Consumers...)
		}
	}
	out := struct {
		*TopicStats
		Metadata   map[string]int         `json:"metadata"`
		Partitions map[string]*TopicStats `json:"partitions"`
	}{agg, map[string]int{"partitions": np}, parts}
	writeJSON(w, out)
}

func (b *Broker) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	t, err := b.getTopic(n.String(), false)
	if err != nil {
		httpError(w, err)
		return
	}
	t.mu.Lock()
	out := []string{}
	for name := range t.subs {
		out = append(out, name)
	}
	t.mu.Unlock()
	sort.Strings(out)
	writeJSON(w, out)
}

func (b *Broker) deleteSubscriptionHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	t, err := b.getTopic(n.String(), false)
	if err != nil {
		httpError(w, err)
		return
	}
	if r.URL.Query().Get("force") == "true" {
		t.mu.Lock()
		var cs []*consumer
		if s, ok := t.subs[r.PathValue("sub")]; ok {
			cs = append(cs, s.consumers...)
		}
		t.mu.Unlock()
		for _, c := range cs {
			c.c.dropConsumer(c, true)
		}
	}
	if err := t.deleteSubscription(r.PathValue("sub")); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) getTopicDedup(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, b.topicDedupEnabled(n))
}

func (b *Broker) setTopicDedup(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	var v bool
	if r.Method == http.MethodPost {
		if v, err = parseBoolBody(r); err != nil {
			http.Error(w, "body must be true or false", http.StatusBadRequest)
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.ensureNamespaceLocked(n, true); err != nil {
		httpError(w, err)
		return
	}
	p := b.meta.Namespaces[n.ns()]
	if p.TopicDedup == nil {
		p.TopicDedup = map[string]bool{}
	}
	if r.Method == http.MethodPost {
		p.TopicDedup[n.base().String()] = v
	} else {
		delete(p.TopicDedup, n.base().String())
	}
	if err := b.saveMetadataLocked(); err != nil {
		httpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) getSchemaHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := parseTopic("persistent://" + nsOf(r) + "/" + r.PathValue("topic"))
	if err != nil {
		httpError(w, errorf(ErrInvalidName, "%v", err))
		return
	}
	name := n.String()
	if np := b.partitions(n); np > 0 {
		name = n.partitionName(0).String()
	}
	t, err := b.getTopic(name, false)
	if err != nil {
		httpError(w, err)
		return
	}
	var want []byte
	if vs := r.PathValue("version"); vs != "" {
		n, err := strconv.ParseUint(vs, 10, 64)
		if err != nil {
			http.Error(w, "bad schema version", http.StatusBadRequest)
			return
		}
		want = binary.BigEndian.AppendUint64(nil, n)
	}
	s, v, ok := t.schema(want)
	if !ok {
		httpError(w, errorf(ErrTopicNotFound, "no schema for %s", n))
		return
	}
	props := map[string]string{}
	for _, kv := range s.Properties {
		props[kv.Key] = kv.Value
	}
	writeJSON(w, map[string]any{"version": int64(v[7]) | int64(v[6])<<8 | int64(v[5])<<16 | int64(v[4])<<24,
		"type": schemaTypeName(s.Type), "data": string(s.Data), "properties": props})
}

func schemaTypeName(t int32) string {
	names := []string{"NONE", "STRING", "JSON", "PROTOBUF", "AVRO", "BOOLEAN", "INT8", "INT16", "INT32", "INT64",
		"FLOAT", "DOUBLE", "DATE", "TIME", "TIMESTAMP", "KEY_VALUE", "INSTANT", "LOCAL_DATE", "LOCAL_TIME",
		"LOCAL_DATE_TIME", "PROTOBUF_NATIVE"}
	if t >= 0 && int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("TYPE_%d", t)
}

// metricsHTTP writes Prometheus text exposition with Pulsar's metric names
// where one exists.
func (b *Broker) metricsHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var sb strings.Builder
	type series struct {
		name, help, typ string
		rows            []string
	}
	metrics := []*series{
		{name: "pulsar_rate_in", help: "Messages per second published to the topic.", typ: "gauge"},
		{name: "pulsar_rate_out", help: "Messages per second dispatched from the topic.", typ: "gauge"},
		{name: "pulsar_throughput_in", help: "Bytes per second published to the topic.", typ: "gauge"},
		{name: "pulsar_throughput_out", help: "Bytes per second dispatched from the topic.", typ: "gauge"},
		{name: "pulsar_in_messages_total", help: "Messages published to the topic.", typ: "counter"},
		{name: "pulsar_out_messages_total", help: "Messages dispatched from the topic.", typ: "counter"},
		{name: "pulsar_storage_size", help: "Bytes of stored entries of the topic.", typ: "gauge"},
		{name: "pulsar_producers_count", help: "Connected producers.", typ: "gauge"},
		{name: "pulsar_subscriptions_count", help: "Subscriptions of the topic.", typ: "gauge"},
		{name: "pulsar_consumers_count", help: "Connected consumers.", typ: "gauge"},
		{name: "pulsar_subscription_back_log", help: "Unacknowledged messages of the subscription.", typ: "gauge"},
	}
	for _, t := range b.topicList() {
		st := t.statsSnapshot()
		lbl := fmt.Sprintf(`cluster=%q,namespace=%q,topic=%q`, b.cfg.ClusterName, t.name.ns(), t.full)
		consumers := 0
		for _, s := range st.Subscriptions {
			consumers += len(s.Consumers)
		}
		vals := []float64{st.MsgRateIn, st.MsgRateOut, st.MsgThroughputIn, st.MsgThroughputOut,
			float64(st.MsgInCounter), float64(st.MsgOutCounter), float64(st.StorageSize),
			float64(len(st.Publishers)), float64(len(st.Subscriptions)), float64(consumers)}
		for i, v := range vals {
			metrics[i].rows = append(metrics[i].rows, fmt.Sprintf("%s{%s} %g", metrics[i].name, lbl, v))
		}
		subs := make([]string, 0, len(st.Subscriptions))
		for name := range st.Subscriptions {
			subs = append(subs, name)
		}
		sort.Strings(subs)
		for _, name := range subs {
			last := metrics[len(metrics)-1]
			last.rows = append(last.rows, fmt.Sprintf("%s{%s,subscription=%q} %d", last.name, lbl, name, st.Subscriptions[name].MsgBacklog))
		}
	}
	for _, m := range metrics {
		fmt.Fprintf(&sb, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, row := range m.rows {
			sb.WriteString(row)
			sb.WriteByte('\n')
		}
	}
	fmt.Fprintf(&sb, "# HELP meshfed_broker_entries_appended_total Entries appended across all topics.\n# TYPE meshfed_broker_entries_appended_total counter\nmeshfed_broker_entries_appended_total %d\n", b.metrics.entriesIn.Load())
	_, _ = io.WriteString(w, sb.String())
}

// getEntryHTTP returns one stored entry's payload (after its metadata) with
// Pulsar's X-Pulsar-* headers, as "get message by id" does.
func (b *Broker) getEntryHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	entry, err := strconv.ParseInt(r.PathValue("entry"), 10, 64)
	if err != nil {
		http.Error(w, "bad entry id", http.StatusBadRequest)
		return
	}
	t, err := b.getTopic(n.String(), false)
	if err != nil {
		httpError(w, err)
		return
	}
	t.mu.Lock()
	e := t.entryLocked(entry)
	var info entryInfo
	if e != nil {
		info = *e
	}
	t.mu.Unlock()
	if e == nil {
		httpError(w, errorf(ErrTopicNotFound, "entry %d of %s", entry, n))
		return
	}
	data, err := t.log.read(&info)
	if err != nil {
		httpError(w, err)
		return
	}
	mdLen := int(binary.BigEndian.Uint32(data))
	w.Header().Set("X-Pulsar-Message-ID", fmt.Sprintf("%d:%d", ledgerID, entry))
	w.Header().Set("X-Pulsar-Publish-Time", time.UnixMilli(info.publishMs).UTC().Format("2006-01-02T15:04:05.000Z"))
	if info.batched {
		w.Header().Set("X-Pulsar-Num-Batch-Message", strconv.Itoa(int(info.numMsgs)))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data[4+mdLen:])
}

// lookupHTTP answers the HTTP topic lookup: this broker owns every topic.
func (b *Broker) lookupHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := topicOf(r); err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, map[string]string{"brokerUrl": b.ServiceURL(), "httpUrl": b.AdminURL(), "nativeUrl": b.ServiceURL()})
}

// namespaceTopics lists a namespace's topics; unlike listTopics it fails for
// a namespace that does not exist, as the lookup client expects.
func (b *Broker) namespaceTopics(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	_, ok := b.meta.Namespaces[nsOf(r)]
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", nsOf(r)))
		return
	}
	b.listTopics(w, r)
}

// deleteSchemaHTTP removes every schema version of a topic (and of all
// partitions of a partitioned topic).
func (b *Broker) deleteSchemaHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := parseTopic("persistent://" + nsOf(r) + "/" + r.PathValue("topic"))
	if err != nil {
		httpError(w, errorf(ErrInvalidName, "%v", err))
		return
	}
	names := []string{n.String()}
	for i := 0; i < b.partitions(n); i++ {
		names = append(names, n.partitionName(i).String())
	}
	for _, name := range names {
		t, err := b.getTopic(name, false)
		if err != nil {
			continue
		}
		t.mu.Lock()
		t.schemas = nil
		err = t.saveStateLocked()
		t.mu.Unlock()
		if err != nil {
			httpError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// unloadHTTP closes a topic (or every partition of a partitioned topic):
// clients are disconnected and reconnect, which loads it again from disk.
func (b *Broker) unloadHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	names := []string{n.String()}
	if np := b.partitions(n); np > 0 && n.partition < 0 {
		names = names[:0]
		for i := 0; i < np; i++ {
			names = append(names, n.partitionName(i).String())
		}
	}
	for _, name := range names {
		b.mu.Lock()
		t, ok := b.topics[name]
		b.mu.Unlock()
		if !ok {
			continue
		}
		// Close while still registered: clients that reconnect meanwhile
		// get ServiceNotReady and retry, so the files are never open twice.
		err := t.close(false)
		b.mu.Lock()
		if b.topics[name] == t {
			delete(b.topics, name)
		}
		b.mu.Unlock()
		if err != nil {
			httpError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// terminateHTTP terminates a topic and returns its last message id.
func (b *Broker) terminateHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return
	}
	t, err := b.getTopic(n.String(), false)
	if err != nil {
		httpError(w, err)
		return
	}
	last, err := t.terminate()
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, map[string]any{"ledgerId": ledgerID, "entryId": last, "partitionIndex": n.partition, "batchIndex": -1})
}
