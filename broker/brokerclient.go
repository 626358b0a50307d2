package broker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/meshfed/meshfed/broker/auth"
)

// BrokerClientConfig is how the broker authenticates when it is itself a
// client of other brokers (geo-replication), with Pulsar's broker.conf
// names. A cluster's own settings (authenticationPlugin,
// authenticationParameters, brokerClientTlsEnabled,
// brokerClientTrustCertsFilePath in its ClusterData) override these for
// that cluster. The zero value connects with no credentials over
// plaintext.
type BrokerClientConfig struct {
	// AuthPlugin is the client authentication plugin
	// (brokerClientAuthenticationPlugin): Pulsar's class name
	// (org.apache.pulsar.client.impl.auth.AuthenticationToken,
	// AuthenticationTls, AuthenticationBasic) or token, tls, basic
	// ("" = no credentials).
	AuthPlugin string
	// AuthParams are the plugin's parameters
	// (brokerClientAuthenticationParameters): for token "token:<jwt>",
	// "file:///path" or {"token":"..."}; for tls
	// {"tlsCertFile":...,"tlsKeyFile":...} or
	// "tlsCertFile:...,tlsKeyFile:..."; for basic
	// {"userId":...,"password":...}.
	AuthParams string
	// TLSEnabled makes replicators use the remote's pulsar+ssl:// and
	// https:// URLs when it has them (brokerClientTlsEnabled; false =
	// plaintext URLs, TLS ones only when a cluster has no other).
	TLSEnabled bool
	// TrustCertsFile holds the CA certificates, PEM, remote brokers'
	// certificates must chain to (brokerClientTrustCertsFilePath; "" = the
	// system's CA pool).
	TrustCertsFile string
	// AllowInsecure skips verifying remote certificates
	// (tlsAllowInsecureConnection as a client; false = verify).
	AllowInsecure bool
	// HostnameVerification checks that a remote's certificate names its
	// host (tlsHostnameVerificationEnabled; false = the chain is verified,
	// the host name is not, as in Pulsar by default).
	HostnameVerification bool
}

// clientCreds are the credentials of one plugin.
type clientCreds struct {
	method string
	data   func() ([]byte, error)
	header func() (string, error) // the HTTP Authorization value; nil = none
	cert   *tls.Certificate       // the tls plugin's client certificate
}

func (c *clientCreds) authMethod() string        { return c.method }
func (c *clientCreds) authData() ([]byte, error) { return c.data() }

var _ clientAuth = (*clientCreds)(nil)

// parseClientAuth builds the credentials a plugin and its parameters name
// (nil, nil for no plugin).
func parseClientAuth(plugin, params string) (*clientCreds, error) {
	plugin = strings.TrimSpace(plugin)
	short := plugin[strings.LastIndexByte(plugin, '.')+1:]
	kv, err := parseAuthParams(params)
	if err != nil {
		return nil, fmt.Errorf("brokerClientAuthenticationParameters: %w", err)
	}
	switch strings.ToLower(strings.TrimPrefix(short, "Authentication")) {
	case "", "disabled":
		return nil, nil
	case "token":
		tok := kv["token"]
		file := kv["file"]
		switch {
		case tok == "" && file == "":
			return nil, errors.New("brokerClientAuthenticationParameters: the token plugin needs token:<jwt>, file:///path or {\"token\":...}")
		case tok != "":
			return &clientCreds{method: auth.MethodToken, data: func() ([]byte, error) { return []byte(tok), nil },
				header: func() (string, error) { return "Bearer " + tok, nil }}, nil
		}
		read := func() (string, error) {
			b, err := os.ReadFile(strings.TrimPrefix(strings.TrimPrefix(file, "file://"), "file:"))
			if err != nil {
				return "", fmt.Errorf("broker client token: %w", err)
			}
			return strings.TrimSpace(string(b)), nil
		}
		return &clientCreds{method: auth.MethodToken,
			data: func() ([]byte, error) { s, err := read(); return []byte(s), err },
			header: func() (string, error) {
				s, err := read()
				return "Bearer " + s, err
			}}, nil
	case "tls":
		certFile, keyFile := kv["tlsCertFile"], kv["tlsKeyFile"]
		if certFile == "" || keyFile == "" {
			return nil, errors.New("brokerClientAuthenticationParameters: the tls plugin needs tlsCertFile and tlsKeyFile")
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("broker client certificate: %w", err)
		}
		return &clientCreds{method: auth.MethodTLS, data: func() ([]byte, error) { return nil, nil }, cert: &cert}, nil
	case "basic":
		user, pw := kv["userId"], kv["password"]
		if user == "" {
			return nil, errors.New("brokerClientAuthenticationParameters: the basic plugin needs userId and password")
		}
		v := user + ":" + pw
		return &clientCreds{method: auth.MethodBasic, data: func() ([]byte, error) { return []byte(v), nil },
			header: func() (string, error) { return "Basic " + base64.StdEncoding.EncodeToString([]byte(v)), nil }}, nil
	}
	return nil, fmt.Errorf("brokerClientAuthenticationPlugin: unsupported plugin %q (use AuthenticationToken, AuthenticationTls or AuthenticationBasic)", plugin)
}

// parseAuthParams reads plugin parameters: JSON, "k1:v1,k2:v2", or a bare
// token / "token:<jwt>" / "file:///path".
func parseAuthParams(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	out := map[string]string{}
	switch {
	case s == "":
	case strings.HasPrefix(s, "{"):
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("JSON: %v", err)
		}
		for k, v := range m {
			out[k] = fmt.Sprint(v)
		}
	case strings.HasPrefix(s, "token:"):
		out["token"] = strings.TrimPrefix(s, "token:")
	case strings.HasPrefix(s, "file:"):
		out["file"] = s
	case strings.Contains(s, ":"):
		for _, part := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(part, ":")
			if !ok {
				return nil, fmt.Errorf("%q is not key:value", part)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	default:
		out["token"] = s
	}
	return out, nil
}

// remoteTarget is how a replicator reaches one remote cluster.
type remoteTarget struct {
	url      string // pulsar:// or pulsar+ssl://
	adminURL string // http:// or https:// ("" = unknown)
}

// targetOf picks the remote's URLs: the TLS ones when TLS is enabled for
// it (or when it has no plaintext one).
func (b *Broker) targetOf(d *ClusterData) remoteTarget {
	useTLS := b.cfg.BrokerClient.TLSEnabled || d.BrokerClientTLSEnabled
	t := remoteTarget{url: d.BrokerServiceURL, adminURL: d.ServiceURL}
	if (useTLS || t.url == "") && d.BrokerServiceURLTLS != "" {
		t.url = d.BrokerServiceURLTLS
	}
	if (useTLS || t.adminURL == "") && d.ServiceURLTLS != "" {
		t.adminURL = d.ServiceURLTLS
	}
	return t
}

// remoteClient builds the dial options and admin HTTP client for a
// remote cluster from the broker's client settings and the cluster's own.
func (b *Broker) remoteClient(d *ClusterData) (dialOptions, *http.Client, error) {
	cc := b.cfg.BrokerClient
	plugin, params := cc.AuthPlugin, cc.AuthParams
	if d.AuthenticationPlugin != "" {
		plugin, params = d.AuthenticationPlugin, d.AuthenticationParameters
	}
	creds, err := parseClientAuth(plugin, params)
	if err != nil {
		return dialOptions{}, nil, err
	}
	trust := cc.TrustCertsFile
	if d.BrokerClientTrustCertsFilePath != "" {
		trust = d.BrokerClientTrustCertsFilePath
	}
	tc, err := clientTLSConfig(trust, cc.AllowInsecure || d.TLSAllowInsecureConnection, cc.HostnameVerification)
	if err != nil {
		return dialOptions{}, nil, err
	}
	opts := dialOptions{tls: tc}
	if creds != nil {
		opts.auth = creds
		if creds.cert != nil {
			tc.Certificates = []tls.Certificate{*creds.cert}
		}
	}
	hc := &http.Client{Transport: &authTransport{base: &http.Transport{TLSClientConfig: tc}, creds: creds}}
	return opts, hc, nil
}

// clientTLSConfig verifies servers against the CAs in trustFile (or the
// system pool); without hostname verification only the chain is checked.
func clientTLSConfig(trustFile string, insecure, verifyHost bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		c.InsecureSkipVerify = true //nolint:gosec // asked for by tlsAllowInsecureConnection
		return c, nil
	}
	var roots *x509.CertPool
	if trustFile != "" {
		pem, err := os.ReadFile(trustFile)
		if err != nil {
			return nil, fmt.Errorf("brokerClientTrustCertsFilePath: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("brokerClientTrustCertsFilePath: %s holds no PEM certificate", trustFile)
		}
	}
	c.RootCAs = roots
	if verifyHost {
		return c, nil
	}
	c.InsecureSkipVerify = true //nolint:gosec // the chain is verified below; the host name is not, as configured
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			x, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = x
		}
		inter := x509.NewCertPool()
		for _, x := range certs[1:] {
			inter.AddCert(x)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
	return c, nil
}

// authTransport adds the broker client's Authorization header.
type authTransport struct {
	base  http.RoundTripper
	creds *clientCreds // nil = none
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.creds != nil && t.creds.header != nil {
		h, err := t.creds.header()
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", h)
	}
	return t.base.RoundTrip(r)
}
