package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FsyncPolicy says when stored entries and cursors are forced to disk.
type FsyncPolicy string

const (
	// FsyncBatch syncs once per group of SENDs written together (group
	// commit); a SEND is acknowledged after the sync that covers it.
	FsyncBatch FsyncPolicy = "batch"
	// FsyncAlways is accepted for clarity: the log already syncs before any
	// receipt, so it behaves as FsyncBatch except that it additionally
	// limits a group to one SEND.
	FsyncAlways FsyncPolicy = "always"
	// FsyncOff never syncs; acknowledged data survives a process crash
	// (it is in the page cache) but not a machine crash.
	FsyncOff FsyncPolicy = "off"
)

// Config configures a Broker. The zero value of each field means the
// default noted beside it.
type Config struct {
	// DataDir holds all topic data and metadata. Required.
	DataDir string
	// ListenAddr is the Pulsar protocol listener ("" = 127.0.0.1:6650;
	// port 0 picks a free port).
	ListenAddr string
	// DisablePlaintext leaves out the pulsar:// listener, so clients must
	// use TLSListenAddr (Pulsar's brokerServicePort left empty; false =
	// ListenAddr is served).
	DisablePlaintext bool
	// HTTPAddr is the admin REST and /metrics listener ("" = disabled).
	HTTPAddr string
	// TLSListenAddr is the pulsar+ssl:// listener (Pulsar's
	// brokerServicePortTls; "" = none). Needs TLS.
	TLSListenAddr string
	// HTTPSAddr is the HTTPS admin REST and /metrics listener (Pulsar's
	// webServicePortTls; "" = none). Needs TLS.
	HTTPSAddr string
	// TLS is the certificate, key and trust of the TLS listeners.
	TLS TLSConfig
	// Auth is the authentication of clients (zero = off).
	Auth AuthConfig
	// Authorization is the permission checks (zero = off).
	Authorization AuthorizationConfig
	// BrokerClient is how this broker authenticates to other brokers it
	// replicates to (zero = no credentials, plaintext).
	BrokerClient BrokerClientConfig
	// AdvertisedAddr is the host or host:port returned in lookups ("" =
	// the listener's actual address). The TLS URLs use its host with the
	// TLS listeners' ports.
	AdvertisedAddr string
	// ClusterName names this broker's cluster ("" = "standalone").
	ClusterName string
	// Fsync is the durability policy ("" = FsyncBatch).
	Fsync FsyncPolicy
	// DisableAutoCreateTopics makes producers and consumers of unknown
	// topics fail with TopicNotFound (false = topics are auto-created).
	DisableAutoCreateTopics bool
	// DeduplicationDefault turns producer de-duplication on for namespaces
	// that do not set it themselves.
	DeduplicationDefault bool
	// RetentionTime keeps consumed data at least this long (0 = forever,
	// unless RetentionSize applies).
	RetentionTime time.Duration
	// RetentionSize bounds the consumed data kept per topic partition, in
	// bytes (0 = unlimited, unless RetentionTime applies).
	RetentionSize int64
	// SegmentSize is the size at which a topic's log rolls to a new
	// segment file (0 = 64 MiB). Retention removes whole segments.
	SegmentSize int64
	// MaxMessageSize is announced to clients in CONNECTED (0 = 5 MiB).
	MaxMessageSize int
	// Logger receives structured logs (nil = slog.Default()).
	Logger *slog.Logger
}

// Broker is an embedded Pulsar-protocol broker.
type Broker struct {
	cfg Config
	log *slog.Logger

	ln       net.Listener // nil with DisablePlaintext
	tlsLn    net.Listener // nil without TLSListenAddr
	httpLn   net.Listener
	httpSrv  *http.Server
	httpsLn  net.Listener
	httpsSrv *http.Server
	tls      *tlsMaterial // nil without TLS listeners
	sec      security     // set by New, never changed
	advURL   string
	advTLS   string
	started  time.Time

	nameSalt    string
	producerSeq atomic.Uint64
	metrics     brokerMetrics

	// replMu serialises syncReplication runs.
	replMu sync.Mutex
	// healthMu serialises health checks; healthReq numbers their requests.
	healthMu  sync.Mutex
	healthReq atomic.Uint64

	mu sync.Mutex
	// topics holds every loaded topic partition by full name. Guarded by mu.
	topics map[string]*topic
	// meta is tenants, namespaces and partitioned topics. Guarded by mu.
	meta metadata
	// conns are the open client connections. Guarded by mu.
	conns map[*conn]struct{}
	// ledgerNext is the ledger id the next new segment gets (always below
	// meta.LedgerReserved once handed out). Guarded by mu.
	ledgerNext int64
	closed     bool // guarded by mu

	wg   sync.WaitGroup
	stop chan struct{}
}

// metadata is persisted as metadata.json in the data directory.
type metadata struct {
	Tenants     map[string]*tenantInfo `json:"tenants"`
	Namespaces  map[string]*nsPolicy   `json:"namespaces"`
	Partitioned map[string]int         `json:"partitioned"`
	// Clusters holds the clusters created through the admin API (and an
	// override of this broker's own cluster if one was posted).
	Clusters map[string]*ClusterData `json:"clusters,omitempty"`
	// LedgerReserved bounds the ledger ids handed out: every id below it
	// may be in use, so after a restart new ledgers start there. 0 (a data
	// dir written before ledger ids) means not yet chosen.
	LedgerReserved int64 `json:"ledgerReserved,omitempty"`
}

type tenantInfo struct {
	AdminRoles      []string `json:"adminRoles"`
	AllowedClusters []string `json:"allowedClusters"`
}

type nsPolicy struct {
	// Deduplication overrides the broker default when set.
	Deduplication *bool `json:"deduplication,omitempty"`
	// ReplicationClusters are the clusters the namespace is replicated to
	// (empty = only this broker's cluster).
	ReplicationClusters []string `json:"replicationClusters,omitempty"`
	// TopicDedup holds topic-level overrides by full topic name.
	TopicDedup map[string]bool `json:"topicDedup,omitempty"`
	// Permissions are the actions granted to roles (produce, consume,
	// functions), by role (empty = none granted).
	Permissions map[string][]string `json:"permissions,omitempty"`
}

// New validates cfg and loads the data directory; Start begins serving.
func New(cfg Config) (*Broker, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: data dir is required")
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:6650"
	}
	if cfg.DisablePlaintext && cfg.TLSListenAddr == "" {
		return nil, errors.New("broker: no listener: the plaintext listener is disabled (brokerServicePort) and no TLS listener is set (brokerServicePortTls)")
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "standalone"
	}
	if !validName(cfg.ClusterName) {
		return nil, fmt.Errorf("broker: invalid cluster name %q (letters, digits, '-', '_', '.', '=', ':')", cfg.ClusterName)
	}
	switch cfg.Fsync {
	case "":
		cfg.Fsync = FsyncBatch
	case FsyncBatch, FsyncAlways, FsyncOff:
	default:
		return nil, fmt.Errorf("broker: unknown fsync policy %q (want batch, always or off)", cfg.Fsync)
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = 64 << 20
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 5 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	salt := make([]byte, 3)
	_, _ = rand.Read(salt)
	b := &Broker{cfg: cfg, log: cfg.Logger, topics: map[string]*topic{}, conns: map[*conn]struct{}{},
		nameSalt: hex.EncodeToString(salt), stop: make(chan struct{})}
	if cfg.TLSListenAddr != "" || cfg.HTTPSAddr != "" {
		m, err := newTLSMaterial(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		b.tls = m
	} else if cfg.TLS.enabled() {
		return nil, errors.New("broker: tlsCertificateFilePath is set but no TLS listener is (brokerServicePortTls or webServicePortTls)")
	}
	if err := b.initSecurity(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: create data dir: %w", err)
	}
	if err := b.loadMetadata(); err != nil {
		return nil, err
	}
	if err := b.loadTopics(); err != nil {
		b.closeTopics()
		return nil, err
	}
	return b, nil
}

func (b *Broker) metadataPath() string { return filepath.Join(b.cfg.DataDir, "metadata.json") }

func (b *Broker) loadMetadata() error {
	b.meta = metadata{Tenants: map[string]*tenantInfo{}, Namespaces: map[string]*nsPolicy{}, Partitioned: map[string]int{},
		Clusters: map[string]*ClusterData{}}
	data, err := os.ReadFile(b.metadataPath())
	if os.IsNotExist(err) {
		b.meta.Tenants["public"] = &tenantInfo{AllowedClusters: []string{b.cfg.ClusterName}}
		b.meta.Namespaces["public/default"] = &nsPolicy{}
		return b.initLedgersLocked()
	}
	if err != nil {
		return fmt.Errorf("broker: read metadata: %w", err)
	}
	if err := json.Unmarshal(data, &b.meta); err != nil {
		return fmt.Errorf("broker: decode metadata: %w", err)
	}
	if b.meta.Tenants == nil {
		b.meta.Tenants = map[string]*tenantInfo{}
	}
	if b.meta.Namespaces == nil {
		b.meta.Namespaces = map[string]*nsPolicy{}
	}
	if b.meta.Partitioned == nil {
		b.meta.Partitioned = map[string]int{}
	}
	if b.meta.Clusters == nil {
		b.meta.Clusters = map[string]*ClusterData{}
	}
	return b.initLedgersLocked()
}

func (b *Broker) saveMetadataLocked() error {
	data, err := json.MarshalIndent(b.meta, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(b.metadataPath(), data, b.cfg.Fsync != FsyncOff)
}

// loadTopics opens every topic directory found under the data dir.
func (b *Broker) loadTopics() error {
	dirs, err := filepath.Glob(filepath.Join(b.cfg.DataDir, "topics", "*", "*", "*", "*"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		rel, _ := filepath.Rel(filepath.Join(b.cfg.DataDir, "topics"), d)
		p := strings.Split(rel, string(filepath.Separator))
		if len(p) != 4 {
			continue
		}
		n, err := parseTopic(p[0] + "://" + p[1] + "/" + p[2] + "/" + unescapeName(p[3]))
		if err != nil {
			b.log.Warn("skipping unrecognised topic directory", "dir", d)
			continue
		}
		t, err := openTopic(b, n)
		if err != nil {
			return fmt.Errorf("broker: load topic %s: %w", n, err)
		}
		b.topics[t.full] = t
		t.setReplication(b.replDesireLocked(n))
	}
	return nil
}

// Start opens the listeners and begins serving.
func (b *Broker) Start() error {
	var opened []net.Listener
	listen := func(what, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range opened {
				l.Close()
			}
			return nil, fmt.Errorf("broker: listen %s: %w", what, err)
		}
		opened = append(opened, ln)
		return ln, nil
	}
	var err error
	if !b.cfg.DisablePlaintext {
		if b.ln, err = listen("pulsar", b.cfg.ListenAddr); err != nil {
			return err
		}
		b.advURL = "pulsar://" + b.advertise(b.ln, true)
	}
	if b.cfg.TLSListenAddr != "" {
		if b.tlsLn, err = listen("pulsar+ssl", b.cfg.TLSListenAddr); err != nil {
			return err
		}
		b.advTLS = "pulsar+ssl://" + b.advertise(b.tlsLn, false)
	}
	if b.cfg.HTTPAddr != "" {
		if b.httpLn, err = listen("http", b.cfg.HTTPAddr); err != nil {
			return err
		}
	}
	if b.cfg.HTTPSAddr != "" {
		if b.httpsLn, err = listen("https", b.cfg.HTTPSAddr); err != nil {
			return err
		}
	}
	if b.httpLn != nil {
		b.httpSrv = b.serveHTTP(b.httpLn, "admin http")
	}
	if b.httpsLn != nil {
		b.httpsSrv = b.serveHTTP(tls.NewListener(b.httpsLn, b.tls.serverConfig()), "admin https")
	}
	b.started = time.Now()
	b.wg.Add(1)
	go b.ticker()
	if b.ln != nil {
		b.wg.Add(1)
		go b.acceptLoop(b.ln, false)
	}
	if b.tlsLn != nil {
		b.wg.Add(1)
		go b.acceptLoop(b.tlsLn, true)
	}
	b.log.Info("broker started", "service_url", b.ServiceURL(), "service_url_tls", b.ServiceURLTLS(),
		"admin_url", b.AdminURL(), "admin_url_tls", b.AdminURLTLS(),
		"data_dir", b.cfg.DataDir, "fsync", string(b.cfg.Fsync), "cluster", b.cfg.ClusterName)
	return nil
}

// serveHTTP serves the admin API on ln.
func (b *Broker) serveHTTP(ln net.Listener, what string) *http.Server {
	srv := &http.Server{Handler: b.adminHandler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error(what, "err", err)
		}
	}()
	return srv
}

// advertise is the host:port lookups return for ln: the advertised address
// (its port only for the plaintext listener) or the listener's own.
func (b *Broker) advertise(ln net.Listener, plaintext bool) string {
	adv := b.cfg.AdvertisedAddr
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	switch {
	case adv == "":
		return ln.Addr().String()
	case !strings.Contains(adv, ":"):
		return net.JoinHostPort(adv, port)
	case plaintext:
		return adv
	}
	host, _, err := net.SplitHostPort(adv)
	if err != nil {
		host = adv
	}
	return net.JoinHostPort(host, port)
}

// ServiceURL is the pulsar:// URL clients connect to ("" without the
// plaintext listener).
func (b *Broker) ServiceURL() string { return b.advURL }

// ServiceURLTLS is the pulsar+ssl:// URL clients connect to ("" without
// the TLS listener).
func (b *Broker) ServiceURLTLS() string { return b.advTLS }

// AdminURL is the http:// URL of the admin API ("" when disabled).
func (b *Broker) AdminURL() string {
	if b.httpLn == nil {
		return ""
	}
	return "http://" + b.httpLn.Addr().String()
}

// AdminURLTLS is the https:// URL of the admin API ("" without the HTTPS
// listener); its host is the advertised one when set, as certificates name
// hosts.
func (b *Broker) AdminURLTLS() string {
	if b.httpsLn == nil {
		return ""
	}
	return "https://" + b.advertise(b.httpsLn, false)
}

// ClusterName is the configured cluster name.
func (b *Broker) ClusterName() string { return b.cfg.ClusterName }

func (b *Broker) acceptLoop(ln net.Listener, useTLS bool) {
	defer b.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-b.stop:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			b.log.Error("accept", "err", err)
			return
		}
		if useTLS {
			nc = tls.Server(nc, b.tls.serverConfig())
		}
		c := newConn(b, nc)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			continue
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

func (b *Broker) ticker() {
	defer b.wg.Done()
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-tk.C:
			for _, t := range b.topicList() {
				t.sampleRates(now)
			}
			b.checkCredentialExpiry(now)
		}
	}
}

func (b *Broker) topicList() []*topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].full < out[j].full })
	return out
}

// openConns returns the open client connections, read under b.mu.
func (b *Broker) openConns() []*conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connsLocked()
}

// connsLocked returns the open client connections. The caller holds b.mu.
func (b *Broker) connsLocked() []*conn {
	return slices.Collect(maps.Keys(b.conns))
}

// Close stops serving, disconnects clients, flushes cursors and closes all
// files. It is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	conns := b.connsLocked()
	b.mu.Unlock()
	close(b.stop)
	for _, ln := range []net.Listener{b.ln, b.tlsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	for _, srv := range []*http.Server{b.httpSrv, b.httpsSrv} {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
		}
	}
	for _, c := range conns {
		c.close()
	}
	b.wg.Wait()
	b.closeTopics()
	b.log.Info("broker stopped")
	return nil
}

func (b *Broker) closeTopics() {
	for _, t := range b.topicList() {
		if err := t.close(false); err != nil {
			b.log.Warn("close topic", "topic", t.full, "err", err)
		}
	}
}

func (b *Broker) newProducerName() string {
	return fmt.Sprintf("%s-%s-%d", b.cfg.ClusterName, b.nameSalt, b.producerSeq.Add(1)-1)
}

// dedupEnabled is the effective de-duplication setting of a namespace.
func (b *Broker) dedupEnabled(ns string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.meta.Namespaces[ns]; ok && p.Deduplication != nil {
		return *p.Deduplication
	}
	return b.cfg.DeduplicationDefault
}

// topicDedupEnabled adds the topic-level override.
func (b *Broker) topicDedupEnabled(n topicName) bool {
	b.mu.Lock()
	p, ok := b.meta.Namespaces[n.ns()]
	if ok && p.TopicDedup != nil {
		if v, ok := p.TopicDedup[n.base().String()]; ok {
			b.mu.Unlock()
			return v
		}
	}
	b.mu.Unlock()
	return b.dedupEnabled(n.ns())
}

// partitions returns the partition count of a partitioned topic (0 for a
// non-partitioned one).
func (b *Broker) partitions(n topicName) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.meta.Partitioned[n.base().String()]
}

// getTopic returns the loaded topic, creating it when create is set and
// auto-creation is allowed.
func (b *Broker) getTopic(name string, create bool) (*topic, error) {
	return b.loadTopic(name, create, false)
}

// loadTopic is getTopic; explicit marks a creation asked for through the
// admin API, which auto-creation settings do not restrict.
func (b *Broker) loadTopic(name string, create, explicit bool) (*topic, error) {
	n, err := parseTopic(name)
	if err != nil {
		return nil, errorf(ErrInvalidName, "%v", err)
	}
	full := n.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if t, ok := b.topics[full]; ok {
		return t, nil
	}
	if !create {
		return nil, errorf(ErrTopicNotFound, "topic %s does not exist", full)
	}
	if _, ok := b.meta.Partitioned[full]; ok {
		return nil, errorf(ErrNotAllowed, "topic %s is partitioned; use its partitions", full)
	}
	partitionOfKnown := n.partition >= 0 && b.meta.Partitioned[n.base().String()] > n.partition
	hidden := b.isHeartbeat(n)
	if b.cfg.DisableAutoCreateTopics && !partitionOfKnown && !explicit && !hidden {
		return nil, errorf(ErrTopicNotFound, "topic %s does not exist and auto-creation is disabled", full)
	}
	if !hidden {
		if err := b.ensureNamespaceLocked(n, explicit); err != nil {
			return nil, err
		}
	}
	t, err := openTopic(b, n)
	if err != nil {
		return nil, err
	}
	b.topics[full] = t
	// Replication cursors exist before anything is appended, so a new
	// topic is replicated from its first entry.
	t.setReplication(b.replDesireLocked(n))
	return t, nil
}

// createTopic creates a non-partitioned topic explicitly (admin API).
func (b *Broker) createTopic(name string) error {
	n, err := parseTopic(name)
	if err != nil {
		return errorf(ErrInvalidName, "%v", err)
	}
	b.mu.Lock()
	if _, ok := b.topics[n.String()]; ok {
		b.mu.Unlock()
		return errorf(ErrAlreadyExists, "topic %s", n)
	}
	if _, ok := b.meta.Partitioned[n.String()]; ok {
		b.mu.Unlock()
		return errorf(ErrAlreadyExists, "partitioned topic %s", n)
	}
	if err := b.ensureNamespaceLocked(n, true); err != nil {
		b.mu.Unlock()
		return err
	}
	b.mu.Unlock()
	_, err = b.loadTopic(name, true, true)
	return err
}

// ensureNamespaceLocked checks the topic's tenant and namespace exist; with
// auto-creation on (or for an explicit admin request) a missing namespace
// (and tenant) is created.
func (b *Broker) ensureNamespaceLocked(n topicName, explicit bool) error {
	if _, ok := b.meta.Namespaces[n.ns()]; ok {
		return nil
	}
	if b.cfg.DisableAutoCreateTopics && !explicit {
		return errorf(ErrNamespaceNotFound, "namespace %s does not exist", n.ns())
	}
	if _, ok := b.meta.Tenants[n.tenant]; !ok {
		b.meta.Tenants[n.tenant] = &tenantInfo{AllowedClusters: []string{b.cfg.ClusterName}}
	}
	b.meta.Namespaces[n.ns()] = &nsPolicy{}
	return b.saveMetadataLocked()
}

// topicsOfNamespace lists the persistent topics of ns, partitioned topics
// as their partitions.
func (b *Broker) topicsOfNamespace(ns string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := map[string]struct{}{}
	for full, t := range b.topics {
		if t.name.ns() == ns && t.name.domain == "persistent" && !t.hidden {
			set[full] = struct{}{}
		}
	}
	for base, np := range b.meta.Partitioned {
		n, err := parseTopic(base)
		if err != nil || n.ns() != ns {
			continue
		}
		for i := 0; i < np; i++ {
			set[n.partitionName(i).String()] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// deleteTopic closes a topic and removes its data.
func (b *Broker) deleteTopic(name string, force bool) error {
	n, err := parseTopic(name)
	if err != nil {
		return errorf(ErrInvalidName, "%v", err)
	}
	b.mu.Lock()
	t, ok := b.topics[n.String()]
	b.mu.Unlock()
	if !ok {
		return errorf(ErrTopicNotFound, "topic %s does not exist", n)
	}
	if !force {
		t.mu.Lock()
		busy := len(t.producers) > 0
		for _, s := range t.subs {
			busy = busy || len(s.consumers) > 0
		}
		t.mu.Unlock()
		if busy {
			return errorf(ErrNotEmpty, "topic %s has active producers or consumers", n)
		}
	}
	b.mu.Lock()
	delete(b.topics, n.String())
	b.mu.Unlock()
	return t.close(true)
}

type brokerMetrics struct {
	entriesIn  atomic.Int64
	writes     atomic.Int64
	syncs      atomic.Int64
	bytes      atomic.Int64
	lastAppend atomic.Int64
}

func (m *brokerMetrics) add(n int, bytes int64, synced bool, now time.Time) {
	m.entriesIn.Add(int64(n))
	m.writes.Add(1)
	m.bytes.Add(bytes)
	if synced {
		m.syncs.Add(1)
	}
	m.lastAppend.Store(now.UnixNano())
}

// StorageStats counts the broker's log writes since it started.
type StorageStats struct {
	Entries int64 // entries appended
	Writes  int64 // write calls (one per group commit)
	Syncs   int64 // fsyncs of segment files
	Bytes   int64 // bytes written to segment files
}

// StorageStats returns counters of the log writes done so far.
func (b *Broker) StorageStats() StorageStats {
	return StorageStats{Entries: b.metrics.entriesIn.Load(), Writes: b.metrics.writes.Load(),
		Syncs: b.metrics.syncs.Load(), Bytes: b.metrics.bytes.Load()}
}
