package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin"
)

// pulsarClients holds one pulsar-client-go client per cluster the agent's
// instances talk to, keyed by service URL, and one pulsaradmin client per
// admin URL.
type pulsarClients struct {
	a *Agent

	// mu guards clients and admins.
	mu      sync.Mutex
	clients map[string]pulsar.Client
	admins  map[string]adminClient
}

// adminClient is the part of pulsaradmin's client the agent uses.
type adminClient interface {
	Brokers() admin.Brokers
	Namespaces() admin.Namespaces
	Subscriptions() admin.Subscriptions
	Topics() admin.Topics
}

var _ adminClient = pulsaradmin.Client(nil)

func newPulsarClients(a *Agent) *pulsarClients {
	return &pulsarClients{a: a, clients: map[string]pulsar.Client{}, admins: map[string]adminClient{}}
}

// adminURL returns the Pulsar admin URL of a cluster (the agent's own
// cluster may be overridden by --pulsar-admin-url).
func (p *pulsarClients) adminURL(cluster string) (string, error) {
	if cluster == p.a.cfg.Cluster && p.a.cfg.PulsarAdminURL != "" {
		return p.a.cfg.PulsarAdminURL, nil
	}
	c, err := p.a.cluster(cluster)
	if err != nil {
		return "", err
	}
	if c.GetSpec().GetAdminUrl() == "" {
		return "", fmt.Errorf("cluster %q: %w", cluster, errNoAdminURL)
	}
	return c.GetSpec().GetAdminUrl(), nil
}

// admin returns the pulsaradmin client of a cluster, creating it on first use.
func (p *pulsarClients) admin(cluster string) (adminClient, error) {
	u, err := p.adminURL(cluster)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.admins[u]; ok {
		return c, nil
	}
	c, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: strings.TrimRight(u, "/")})
	if err != nil {
		return nil, fmt.Errorf("pulsar admin client for cluster %q (%s): %w", cluster, u, err)
	}
	p.admins[u] = c
	return c, nil
}

// serviceURL returns the Pulsar URL of a cluster (the agent's own cluster
// may be overridden by --pulsar-url).
func (p *pulsarClients) serviceURL(cluster string) (string, error) {
	if cluster == p.a.cfg.Cluster && p.a.cfg.PulsarURL != "" {
		return p.a.cfg.PulsarURL, nil
	}
	c, err := p.a.cluster(cluster)
	if err != nil {
		return "", err
	}
	if c.GetSpec().GetServiceUrl() == "" {
		return "", fmt.Errorf("cluster %q has no spec.serviceURL", cluster)
	}
	return c.GetSpec().GetServiceUrl(), nil
}

// get returns the client for a cluster, creating it on first use.
func (p *pulsarClients) get(cluster string) (pulsar.Client, error) {
	u, err := p.serviceURL(cluster)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[u]; ok {
		return c, nil
	}
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:               u,
		ConnectionTimeout: 5 * time.Second,
		OperationTimeout:  30 * time.Second,
		Logger:            plog.NewLoggerWithSlog(slog.New(minLevel{p.a.logger.Handler(), slog.LevelWarn}).With("component", "pulsar-client")),
	})
	if err != nil {
		return nil, fmt.Errorf("pulsar client for cluster %q (%s): %w", cluster, u, err)
	}
	p.clients[u] = c
	return c, nil
}

func (p *pulsarClients) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u, c := range p.clients {
		c.Close()
		delete(p.clients, u)
	}
	clear(p.admins)
}

// minLevel drops records below a level (pulsar-client-go logs every
// connection at info).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
