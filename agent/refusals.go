package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshfed/meshfed/agent/pulsarauth"
)

// refusals tracks the brokers' refusals of the agent's credentials, per
// cluster, level-triggered: each source (the broker probe, an instance, a
// pulsar-client-go consumer or producer reconnecting in the background)
// sets its own slot while it is refused and clears it when it succeeds.
// The agent's own cluster's refusals go out with every heartbeat and make
// the cluster Degraded; the others are logged and shown in the instances'
// lastError.
type refusals struct {
	logger *slog.Logger
	now    func() time.Time

	// mu guards byCluster.
	mu sync.Mutex
	// byCluster[cluster][source] is the source's current refusal.
	byCluster map[string]map[string]refusal
}

type refusal struct {
	msg   string
	since time.Time
	// seen is when the refusal was last reported: client-log slots
	// expire clientRefusalTTL after it (their consumer or producer may
	// have been closed without a success to clear them).
	seen time.Time
}

// clientRefusalTTL: pulsar-client-go retries a refused reconnect with a
// backoff of at most a minute, logging each failure, so a slot not
// refreshed for this long belongs to a closed consumer or producer.
const clientRefusalTTL = 3 * time.Minute

func newRefusals(logger *slog.Logger, now func() time.Time) *refusals {
	return &refusals{logger: logger, now: now, byCluster: map[string]map[string]refusal{}}
}

// set records source's refusal on cluster.
func (r *refusals) set(cluster, source, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byCluster[cluster]
	if m == nil {
		m = map[string]refusal{}
		r.byCluster[cluster] = m
	}
	now := r.now()
	old, had := m[source]
	if !had || old.msg != msg {
		r.logger.Warn("broker refused the credential", "cluster", cluster, "source", source, "refusal", msg)
		old.since = now
	}
	m[source] = refusal{msg: msg, since: old.since, seen: now}
}

// clear forgets source's refusal on cluster.
func (r *refusals) clear(cluster, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byCluster[cluster][source]; ok {
		delete(r.byCluster[cluster], source)
		r.logger.Info("broker accepts the credential again", "cluster", cluster, "source", source)
	}
}

// clearEverywhere forgets source's refusals on every cluster.
func (r *refusals) clearEverywhere(source string) {
	r.mu.Lock()
	var on []string
	for c, m := range r.byCluster {
		if _, ok := m[source]; ok {
			on = append(on, c)
		}
	}
	r.mu.Unlock()
	for _, c := range on {
		r.clear(c, source)
	}
}

// reason is cluster's current refusal, for the heartbeat: the oldest
// one's message, and how many more there are. Empty: none.
func (r *refusals) reason(cluster string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byCluster[cluster]
	now := r.now()
	var srcs []string
	for s, f := range m {
		if strings.HasPrefix(s, sourceClient) && now.Sub(f.seen) > clientRefusalTTL {
			delete(m, s)
			continue
		}
		srcs = append(srcs, s)
	}
	if len(srcs) == 0 {
		return ""
	}
	slices.SortFunc(srcs, func(a, b string) int {
		if c := m[a].since.Compare(m[b].since); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	msg := m[srcs[0]].msg
	if n := len(srcs) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more refusals)", n)
	}
	return msg
}

// Refusal sources.
const (
	sourceProbe    = "probe"
	sourceInstance = "instance/"
	sourceClient   = "client/"
)

// describeRefusal is the text of a refusal: the credential, the kind, the
// cluster and the error (which carries the broker's answer).
// A credential unusable on the agent's host is named by its own error.
func describeRefusal(credential, kind, cluster string, err error) string {
	var ce *pulsarauth.CredentialError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%v (%s on the agent's host, for cluster %s)", ce, kind, cluster)
	}
	switch kind {
	case pulsarauth.KindCredential:
		return fmt.Sprintf("%s: %s, for cluster %s: %v", credential, kind, cluster, err)
	case pulsarauth.KindTLS:
		return fmt.Sprintf("%s: %s with cluster %s: %v", credential, kind, cluster, err)
	}
	return fmt.Sprintf("%s: %s by cluster %s: %v", credential, kind, cluster, err)
}

// refusedError is a refusal read from a client's log, with its kind.
type refusedError struct {
	kind string
	err  error
}

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// refusalKind reports whether err is a refusal of a credential, and its
// kind (pulsarauth.Refused, or a refusal read from a client's log).
func refusalKind(err error) (string, bool) {
	var re *refusedError
	if errors.As(err, &re) {
		return re.kind, true
	}
	return pulsarauth.Refused(err)
}

// clusterError ties an error to the cluster whose broker returned it.
type clusterError struct {
	cluster string
	err     error
}

func (e *clusterError) Error() string { return e.err.Error() }
func (e *clusterError) Unwrap() error { return e.err }

// onCluster marks err as coming from cluster's broker (nil stays nil).
func onCluster(cluster string, err error) error {
	if err == nil {
		return nil
	}
	return &clusterError{cluster: cluster, err: err}
}

// errorCluster is the cluster an error came from, if it is marked.
func errorCluster(err error) (string, bool) {
	var ce *clusterError
	if errors.As(err, &ce) {
		return ce.cluster, true
	}
	return "", false
}

// refusalWatch is the slog handler of a cluster's pulsar-client-go
// clients. pulsar-client-go reports a refused handshake, and the refused
// background reconnects of consumers and producers, only in its log, so
// the watch reads the log: a refusal sets a slot per topic (or one for the
// connection), a consumer or producer (re)connected or a connection ready
// clears it. Records then go on to next, filtered at its level.
type refusalWatch struct {
	next    slog.Handler
	min     slog.Level
	onRefer func(source, kind string, err error)
	onOK    func(source string)
	// attrs are the attributes the client logger was built with (the
	// topic of a consumer or producer logger).
	attrs []slog.Attr
}

func (h *refusalWatch) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || (l >= h.min && h.next.Enabled(ctx, l))
}

func (h *refusalWatch) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), attrs...)
	c.next = h.next.WithAttrs(attrs)
	return &c
}

func (h *refusalWatch) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

func (h *refusalWatch) Handle(ctx context.Context, r slog.Record) error {
	h.inspect(r)
	if r.Level >= h.min && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// inspect looks at one pulsar-client-go record for a refusal or a success.
func (h *refusalWatch) inspect(r slog.Record) {
	var topic string
	var logged error
	look := func(a slog.Attr) bool {
		switch a.Key {
		case "topic":
			topic = a.Value.String()
		case "error":
			if e, ok := a.Value.Any().(error); ok {
				logged = e
			} else {
				logged = errors.New(a.Value.String())
			}
		}
		return true
	}
	for _, a := range h.attrs {
		look(a)
	}
	r.Attrs(look)
	source := sourceClient + "connection"
	if topic != "" {
		source = sourceClient + "topic/" + topic
	}
	msg := r.Message
	switch {
	case r.Level <= slog.LevelInfo:
		if topic != "" && (strings.HasPrefix(msg, "Created ") || strings.HasPrefix(msg, "Connected ") || strings.HasPrefix(msg, "Reconnected ")) {
			h.onOK(source)
		} else if topic == "" && msg == "Connection is ready" {
			h.onOK(source)
		}
	case strings.HasPrefix(msg, "Failed to establish connection with broker"):
		// The broker answered CONNECT with an error: Pulsar brokers
		// refuse a handshake for authentication only.
		h.onRefer(sourceClient+"connection", pulsarauth.KindAuthentication, errors.New(strings.TrimPrefix(msg, "Failed to establish connection with broker: ")))
	case strings.HasPrefix(msg, "Failed to load auth credentials") && logged != nil:
		// The client could not produce its credential (a token file, an
		// OAuth2 token the issuer would not give): never the broker's
		// doing.
		h.onRefer(sourceClient+"connection", pulsarauth.KindCredential, logged)
	case logged != nil:
		if kind, ok := pulsarauth.Refused(logged); ok {
			if strings.HasPrefix(msg, "Failed to connect to broker") {
				source = sourceClient + "connection"
			} else if topic != "" {
				// A lookup's refusal is a bare "AuthorizationError":
				// name what was refused.
				logged = fmt.Errorf("%s: %w", topic, logged)
			}
			h.onRefer(source, kind, logged)
		}
	}
}
