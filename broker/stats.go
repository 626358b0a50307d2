package broker

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// TopicStats uses Pulsar's field names for topic statistics.
type TopicStats struct {
	MsgRateIn        float64                       `json:"msgRateIn"`
	MsgThroughputIn  float64                       `json:"msgThroughputIn"`
	MsgRateOut       float64                       `json:"msgRateOut"`
	MsgThroughputOut float64                       `json:"msgThroughputOut"`
	MsgInCounter     int64                         `json:"msgInCounter"`
	BytesInCounter   int64                         `json:"bytesInCounter"`
	MsgOutCounter    int64                         `json:"msgOutCounter"`
	BytesOutCounter  int64                         `json:"bytesOutCounter"`
	AverageMsgSize   float64                       `json:"averageMsgSize"`
	StorageSize      int64                         `json:"storageSize"`
	BacklogSize      int64                         `json:"backlogSize"`
	Publishers       []PublisherStats              `json:"publishers"`
	Subscriptions    map[string]*SubscriptionStats `json:"subscriptions"`
	// Replication is keyed by remote cluster: what this topic replicates
	// to it (out) and what that cluster's replicators stored here (in).
	Replication         map[string]*ReplicatorStats `json:"replication"`
	DeduplicationStatus string                      `json:"deduplicationStatus"`
}

// ReplicatorStats has Pulsar's ReplicatorStats fields plus meshfed's
// msgOutCounter, duplicatesIn and lastError.
type ReplicatorStats struct {
	MsgRateIn        float64 `json:"msgRateIn"`
	MsgThroughputIn  float64 `json:"msgThroughputIn"`
	MsgRateOut       float64 `json:"msgRateOut"`
	MsgThroughputOut float64 `json:"msgThroughputOut"`
	MsgRateExpired   float64 `json:"msgRateExpired"`
	// ReplicationBacklog counts entries not yet confirmed by the remote.
	ReplicationBacklog int64 `json:"replicationBacklog"`
	Connected          bool  `json:"connected"`
	// ReplicationDelayInSeconds is the age of the oldest entry not yet
	// replicated (0 when nothing is waiting).
	ReplicationDelayInSeconds int64  `json:"replicationDelayInSeconds"`
	InboundConnection         string `json:"inboundConnection"`
	InboundConnectedSince     string `json:"inboundConnectedSince"`
	OutboundConnection        string `json:"outboundConnection"`
	OutboundConnectedSince    string `json:"outboundConnectedSince"`
	// MsgOutCounter counts messages the remote confirmed.
	MsgOutCounter int64 `json:"msgOutCounter"`
	// DuplicatesIn counts entries the remote cluster's replicator sent
	// that were already stored here, and were dropped.
	DuplicatesIn int64 `json:"duplicatesIn"`
	// LastError is why the last outbound session ended ("" if none did
	// or the current one is connected).
	LastError string `json:"lastError,omitempty"`
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
		Replication: t.replicationStatsLocked(), DeduplicationStatus: dedup,
	}
	if t.stats.msgIn > 0 {
		st.AverageMsgSize = float64(t.stats.bytesIn) / float64(t.stats.msgIn)
	}
	for _, e := range t.entries {
		st.StorageSize += int64(e.size)
	}
	for _, n := range slices.Sorted(maps.Keys(t.producers)) {
		p := t.producers[n]
		st.Publishers = append(st.Publishers, PublisherStats{ProducerID: p.id, ProducerName: p.name, Address: p.address,
			ConnectedSince: p.since.UTC().Format(time.RFC3339Nano), AccessMode: "Shared",
			MsgInCounter: p.msgIn, BytesInCounter: p.bytesIn, Metadata: p.metadata, ClientVersion: p.c.clientVersion})
	}
	var minMD int64 = -1
	for name, s := range t.subs {
		if s.system {
			if minMD < 0 || s.markDelete < minMD {
				minMD = s.markDelete
			}
			continue
		}
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
	n, ok := topicOrError(w, r)
	if !ok {
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
	n, np, ok := b.partitionedOrError(w, r)
	if !ok {
		return
	}
	agg := &TopicStats{Publishers: []PublisherStats{}, Subscriptions: map[string]*SubscriptionStats{},
		Replication: map[string]*ReplicatorStats{}}
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
		for c, rs := range st.Replication {
			a, ok := agg.Replication[c]
			if !ok {
				a = &ReplicatorStats{Connected: true}
				agg.Replication[c] = a
			}
			a.add(rs)
		}
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
	repl := []*series{
		{name: "pulsar_replication_rate_in", help: "Messages per second stored from the remote cluster's replicator.", typ: "gauge"},
		{name: "pulsar_replication_rate_out", help: "Messages per second replicated to the remote cluster.", typ: "gauge"},
		{name: "pulsar_replication_throughput_in", help: "Bytes per second stored from the remote cluster's replicator.", typ: "gauge"},
		{name: "pulsar_replication_throughput_out", help: "Bytes per second replicated to the remote cluster.", typ: "gauge"},
		{name: "pulsar_replication_backlog", help: "Entries not yet replicated to the remote cluster.", typ: "gauge"},
		{name: "pulsar_replication_connected_count", help: "Connected replicators to the remote cluster (0 or 1 per topic partition).", typ: "gauge"},
		{name: "pulsar_replication_delay_in_seconds", help: "Age of the oldest entry not yet replicated to the remote cluster.", typ: "gauge"},
		{name: "meshfed_replication_duplicates_total", help: "Entries from the remote cluster's replicator dropped as already stored.", typ: "counter"},
	}
	for _, t := range b.topicList() {
		if t.hidden {
			continue
		}
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
		for _, c := range slices.Sorted(maps.Keys(st.Replication)) {
			rs := st.Replication[c]
			connected := 0.0
			if rs.Connected {
				connected = 1
			}
			vals := []float64{rs.MsgRateIn, rs.MsgRateOut, rs.MsgThroughputIn, rs.MsgThroughputOut,
				float64(rs.ReplicationBacklog), connected, float64(rs.ReplicationDelayInSeconds), float64(rs.DuplicatesIn)}
			for i, v := range vals {
				repl[i].rows = append(repl[i].rows, fmt.Sprintf("%s{%s,remote_cluster=%q} %g", repl[i].name, lbl, c, v))
			}
		}
	}
	metrics = append(metrics, repl...)
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
