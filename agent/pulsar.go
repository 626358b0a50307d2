package agent

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/encoding/protojson"
)

// pulsarClients holds one pulsar-client-go client per cluster the agent's
// instances talk to, and one pulsaradmin client per cluster, each keyed by
// cluster, URL and spec.auth (a changed Cluster object gets new clients),
// all presenting the credentials the cluster's spec.auth names
// (pulsarauth).
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

// credentials parses a cluster's spec.auth (the Cluster object passed
// admission, so errors here are unexpected) and returns the credentials
// and a key naming them.
func (p *pulsarClients) credentials(cluster string) (*pulsarauth.Credentials, string, error) {
	c, err := p.a.cluster(cluster)
	if err != nil {
		return nil, "", err
	}
	auth, err := objects.ParseClusterAuth(c.GetSpec().GetAuth(), objects.AuthInObject)
	if err != nil {
		return nil, "", fmt.Errorf("cluster %q spec.auth: %w", cluster, err)
	}
	key, _ := protojson.Marshal(c.GetSpec().GetAuth())
	return pulsarauth.New(auth), string(key), nil
}

// endpoint resolves a cluster's URL (by urlOf) and credentials, and the
// cache key of a client made from both: a change of either makes a new one.
func (p *pulsarClients) endpoint(cluster string, urlOf func(string) (string, error)) (string, *pulsarauth.Credentials, string, error) {
	u, err := urlOf(cluster)
	if err != nil {
		return "", nil, "", err
	}
	creds, authKey, err := p.credentials(cluster)
	if err != nil {
		return "", nil, "", err
	}
	return u, creds, cluster + "\x00" + u + "\x00" + authKey, nil
}

// admin returns the pulsaradmin client of a cluster, creating it on first use.
func (p *pulsarClients) admin(cluster string) (adminClient, error) {
	u, creds, key, err := p.endpoint(cluster, p.adminURL)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.admins[key]; ok {
		return c, nil
	}
	c, err := creds.AdminClient(u)
	if err != nil {
		return nil, onCluster(cluster, fmt.Errorf("pulsar admin client for cluster %q (%s): %w", cluster, u, err))
	}
	p.admins[key] = c
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
	u, creds, key, err := p.endpoint(cluster, p.serviceURL)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	opts, err := creds.ClientOptions(u)
	if err != nil {
		return nil, onCluster(cluster, fmt.Errorf("pulsar client for cluster %q (%s): %w", cluster, u, err))
	}
	opts.ConnectionTimeout = 5 * time.Second
	opts.OperationTimeout = 30 * time.Second
	opts.Logger = plog.NewLoggerWithSlog(slog.New(p.watch(cluster, creds, slog.LevelWarn)).With("component", "pulsar-client"))
	c, err := pulsar.NewClient(opts)
	if err != nil {
		return nil, onCluster(cluster, fmt.Errorf("pulsar client for cluster %q (%s): %w", cluster, u, err))
	}
	p.clients[key] = c
	return c, nil
}

// watch is the log handler of a cluster's clients: it records the
// broker's refusals of the credential (refusalWatch) and passes records
// at min and above to the agent's log.
func (p *pulsarClients) watch(cluster string, creds *pulsarauth.Credentials, min slog.Level) slog.Handler {
	r := p.a.refusals
	return &refusalWatch{next: p.a.logger.Handler(), min: min,
		onRefer: func(source, kind string, err error) {
			r.set(cluster, source, describeRefusal(creds.Describe(), kind, cluster, err))
		},
		onOK: func(source string) { r.clear(cluster, source) },
	}
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
