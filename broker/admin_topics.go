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

// topicOrError parses the request's topic; on failure it answers the
// request with the error and returns false.
func topicOrError(w http.ResponseWriter, r *http.Request) (topicName, bool) {
	n, err := topicOf(r)
	if err != nil {
		httpError(w, err)
		return n, false
	}
	return n, true
}

// schemaTopicOrError parses the topic of a schema admin path (always a
// persistent topic); on failure it answers the request with the error and
// returns false.
func schemaTopicOrError(w http.ResponseWriter, r *http.Request) (topicName, bool) {
	n, err := parseTopic("persistent://" + nsOf(r) + "/" + r.PathValue("topic"))
	if err != nil {
		httpError(w, errorf(ErrInvalidName, "%v", err))
		return n, false
	}
	return n, true
}

// partitionedOrError parses the request's partitioned topic and returns its
// partition count; when it is not a partitioned topic it answers the
// request with the error and returns false.
func (b *Broker) partitionedOrError(w http.ResponseWriter, r *http.Request) (topicName, int, bool) {
	n, ok := topicOrError(w, r)
	if !ok {
		return n, 0, false
	}
	np := b.partitions(n)
	if np == 0 {
		httpError(w, errorf(ErrTopicNotFound, "partitioned topic %s", n))
		return n, 0, false
	}
	return n, np, true
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
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	replyNoContent(w, b.createTopic(n.String()))
}

func (b *Broker) deleteTopicHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	force := r.URL.Query().Get("force") == "true"
	if np := b.partitions(n); np > 0 && n.partition < 0 {
		b.deletePartitioned(w, r)
		return
	}
	replyNoContent(w, b.deleteTopic(n.String(), force))
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

// partitionsOrError reads the partition count a request carries; when it
// is not a positive number it answers the request with 400 and returns
// false.
func partitionsOrError(w http.ResponseWriter, r *http.Request) (int, bool) {
	np, err := readIntBody(r)
	if err != nil || np <= 0 {
		http.Error(w, "body must be a positive number of partitions", http.StatusBadRequest)
		return 0, false
	}
	return np, true
}

func (b *Broker) putPartitions(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	np, ok := partitionsOrError(w, r)
	if !ok {
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
	b.saveMetadataHTTPLocked(w)
}

func (b *Broker) updatePartitions(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	np, ok := partitionsOrError(w, r)
	if !ok {
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
	b.saveMetadataHTTPLocked(w)
}

func (b *Broker) getPartitions(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]int{"partitions": b.partitions(n)})
}

func (b *Broker) deletePartitioned(w http.ResponseWriter, r *http.Request) {
	n, np, ok := b.partitionedOrError(w, r)
	if !ok {
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
	err := b.saveMetadataLocked()
	b.mu.Unlock()
	replyNoContent(w, err)
}

func (b *Broker) getTopicDedup(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	writeJSON(w, b.topicDedupEnabled(n))
}

func (b *Broker) setTopicDedup(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	var v bool
	if r.Method == http.MethodPost {
		var err error
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
	b.saveMetadataHTTPLocked(w)
}

func (b *Broker) getSchemaHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := schemaTopicOrError(w, r)
	if !ok {
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

// getEntryHTTP returns one stored entry's payload (after its metadata) with
// Pulsar's X-Pulsar-* headers, as "get message by id" does.
func (b *Broker) getEntryHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	ledger, err := strconv.ParseInt(r.PathValue("ledger"), 10, 64)
	if err != nil {
		httpError(w, errorf(ErrBadRequest, "ledger id %q is not a number", r.PathValue("ledger")))
		return
	}
	entry, err := strconv.ParseInt(r.PathValue("entry"), 10, 64)
	if err != nil {
		httpError(w, errorf(ErrBadRequest, "entry id %q is not a number", r.PathValue("entry")))
		return
	}
	t, err := b.getTopic(n.String(), false)
	if err != nil {
		httpError(w, err)
		return
	}
	t.mu.Lock()
	e := t.storedEntryLocked(ledger, entry)
	var info entryInfo
	if e != nil {
		info = *e
	}
	t.mu.Unlock()
	if e == nil {
		httpError(w, errorf(ErrTopicNotFound, "Message %d:%d not found in %s", ledger, entry, n))
		return
	}
	data, err := t.log.read(&info)
	if err != nil {
		httpError(w, err)
		return
	}
	mdLen := int(binary.BigEndian.Uint32(data))
	w.Header().Set("X-Pulsar-Message-ID", fmt.Sprintf("%d:%d", ledger, entry))
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
	writeJSON(w, map[string]string{"brokerUrl": b.ServiceURL(), "brokerUrlTls": b.ServiceURLTLS(),
		"httpUrl": b.AdminURL(), "httpUrlTls": b.AdminURLTLS(), "nativeUrl": b.ServiceURL()})
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
	n, ok := schemaTopicOrError(w, r)
	if !ok {
		return
	}
	replyNoContent(w, b.deleteSchemas(n))
}

// deleteSchemas removes every schema version of n and of its partitions;
// topics that do not exist are passed over.
func (b *Broker) deleteSchemas(n topicName) error {
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
			return err
		}
	}
	return nil
}

// unloadHTTP closes a topic (or every partition of a partitioned topic):
// clients are disconnected and reconnect, which loads it again from disk.
func (b *Broker) unloadHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
		return
	}
	replyNoContent(w, b.unload(n))
}

// unload closes the loaded topics an admin call on n addresses (see
// adminTargets); topics not loaded are passed over.
func (b *Broker) unload(n topicName) error {
	for _, name := range b.adminTargets(n) {
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
			return err
		}
	}
	return nil
}

// terminateHTTP terminates a topic and returns its last message id.
func (b *Broker) terminateHTTP(w http.ResponseWriter, r *http.Request) {
	n, ok := topicOrError(w, r)
	if !ok {
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
	writeJSON(w, map[string]any{"ledgerId": last.LedgerID, "entryId": last.EntryID, "partitionIndex": n.partition, "batchIndex": -1})
}
