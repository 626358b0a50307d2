// Package pulsarauth turns a Cluster's spec.auth (parsed by
// objects.ParseClusterAuth) into what pulsar-client-go needs: the
// pulsar.ClientOptions of the binary protocol and a pulsaradmin client for
// the admin API, with the same credentials and TLS settings. Secrets are
// references (file:///path, env:NAME) resolved here, on the host that
// dials: tokens, passwords and client certificates are read again for every
// new connection, so a credential fixed on disk is picked up without a
// restart. It is the one place agents and the CLI build Pulsar clients.
package pulsarauth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin"
	adminauth "github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/auth"
	"github.com/meshfed/meshfed/objects"
)

// Credentials builds Pulsar clients that present one PulsarAuth.
type Credentials struct {
	auth *objects.PulsarAuth
	// getenv reads environment variables: os.LookupEnv (tests inject one).
	getenv func(string) (string, bool)
	// readFile reads files: os.ReadFile (tests inject one).
	readFile func(string) ([]byte, error)
}

// New returns the Credentials of a; nil a: no authentication, no TLS
// settings.
func New(a *objects.PulsarAuth) *Credentials {
	if a == nil {
		a = &objects.PulsarAuth{VerifyHostname: true}
	}
	return &Credentials{auth: a, getenv: os.LookupEnv, readFile: os.ReadFile}
}

// Auth is the parsed auth the credentials present.
func (c *Credentials) Auth() *objects.PulsarAuth { return c.auth }

// Describe names the credential for errors and logs, never a secret.
func (c *Credentials) Describe() string { return c.auth.Credential() }

// CredentialError is a credential that could not be read or is unusable
// on this host (a missing file, an unset variable, an expired token or
// certificate). Its message names the credential.
type CredentialError struct {
	// Credential names it (PulsarAuth.Credential or the file).
	Credential string
	Err        error
}

func (e *CredentialError) Error() string { return e.Credential + ": " + e.Err.Error() }
func (e *CredentialError) Unwrap() error { return e.Err }

// read resolves a secret reference to its content.
func (c *Credentials) read(r objects.SecretRef) ([]byte, error) {
	switch r.Source {
	case objects.SecretFile:
		b, err := c.readFile(r.Value)
		if err != nil {
			return nil, &CredentialError{Credential: r.String(), Err: unwrapPathError(err)}
		}
		return b, nil
	case objects.SecretEnv:
		v, ok := c.getenv(r.Value)
		if !ok || v == "" {
			return nil, &CredentialError{Credential: r.String(), Err: errors.New("the environment variable is not set on this host")}
		}
		return []byte(v), nil
	case objects.SecretLiteral:
		return []byte(r.Value), nil
	}
	return nil, &CredentialError{Credential: r.String(), Err: errors.New("not set")}
}

// unwrapPathError drops the path an *os.PathError repeats.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// token reads the token now (trimmed, as Pulsar's token plugin does).
func (c *Credentials) token() (string, error) {
	b, err := c.read(c.auth.Token)
	var ce *CredentialError
	if errors.As(err, &ce) {
		return "", &CredentialError{Credential: c.Describe(), Err: ce.Err}
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", &CredentialError{Credential: "token from " + c.auth.Token.String(), Err: errors.New("empty")}
	}
	return t, nil
}

// clientCertificate loads the client certificate and key now.
func (c *Credentials) clientCertificate() (*tls.Certificate, error) {
	certPEM, err := c.read(c.auth.CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := c.read(c.auth.KeyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &CredentialError{Credential: "TLS client certificate " + c.auth.CertFile.String() + " with key " + c.auth.KeyFile.String(), Err: err}
	}
	return &cert, nil
}

// TLSConfig is the TLS configuration of every connection to the brokers
// (binary protocol and admin API): the trusted CAs (system roots when no
// file is named), hostname verification unless turned off, any broker
// certificate with AllowInsecure, and the client certificate, loaded at
// each handshake.
func (c *Credentials) TLSConfig() (*tls.Config, error) {
	a := c.auth
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.TrustCertsFile != "" {
		pem, err := c.readFile(a.TrustCertsFile)
		if err != nil {
			return nil, &CredentialError{Credential: "trusted CA file " + a.TrustCertsFile, Err: unwrapPathError(err)}
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &CredentialError{Credential: "trusted CA file " + a.TrustCertsFile, Err: errors.New("no PEM certificate in it")}
		}
	}
	switch {
	case a.AllowInsecure:
		cfg.InsecureSkipVerify = true
	case !a.VerifyHostname:
		// Verify the chain, not the name: crypto/tls has no switch for
		// that, so skip its check and verify here.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the broker presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	if a.CertFile.Source != objects.SecretNone {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.clientCertificate()
		}
	}
	return cfg, nil
}

// oauth2Params are the parameters of pulsar.NewAuthenticationOAuth2.
func (c *Credentials) oauth2Params() (map[string]string, error) {
	a := c.auth
	key, err := c.oauth2KeyFile()
	if err != nil {
		return nil, err
	}
	p := map[string]string{"type": "client_credentials", "issuerUrl": a.IssuerURL, "privateKey": key}
	for k, v := range map[string]string{"audience": a.Audience, "scope": a.Scope, "clientId": a.ClientID} {
		if v != "" {
			p[k] = v
		}
	}
	return p, nil
}

// oauth2KeyFile is the privateKey parameter of pulsar-client-go's OAuth2
// flow: file:///path as it is, an environment variable's JSON as a data://
// value.
func (c *Credentials) oauth2KeyFile() (string, error) {
	k := c.auth.PrivateKey
	switch k.Source {
	case objects.SecretFile:
		if _, err := c.read(k); err != nil {
			return "", err
		}
		return "file://" + k.Value, nil
	case objects.SecretEnv:
		b, err := c.read(k)
		if err != nil {
			return "", err
		}
		return "data://" + string(b), nil
	case objects.SecretLiteral:
		return k.Value, nil
	}
	return "", &CredentialError{Credential: c.Describe(), Err: errors.New("no client credentials file")}
}

// ClientOptions returns pulsar-client-go options for serviceURL that
// present the credential and apply the TLS settings. Connection and
// operation timeouts and the logger are the caller's.
func (c *Credentials) ClientOptions(serviceURL string) (pulsar.ClientOptions, error) {
	o := pulsar.ClientOptions{URL: serviceURL}
	a := c.auth
	switch a.Plugin {
	case objects.AuthToken:
		o.Authentication = pulsar.NewAuthenticationTokenFromSupplier(c.token)
	case objects.AuthBasic:
		pw, err := c.read(a.Password)
		if err != nil {
			return o, err
		}
		auth, err := pulsar.NewAuthenticationBasic(a.Username, strings.TrimSpace(string(pw)))
		if err != nil {
			return o, &CredentialError{Credential: c.Describe(), Err: err}
		}
		o.Authentication = auth
	case objects.AuthOAuth2:
		p, err := c.oauth2Params()
		if err != nil {
			return o, err
		}
		auth := pulsar.NewAuthenticationOAuth2(p)
		if auth == nil {
			return o, &CredentialError{Credential: c.Describe(), Err: errors.New("pulsar-client-go refused the OAuth2 parameters")}
		}
		o.Authentication = auth
	case objects.AuthTLS:
		// The certificate itself comes from TLSConfig; the plugin names
		// the method ("tls") in the handshake.
		o.Authentication = pulsar.NewAuthenticationFromTLSCertSupplier(c.clientCertificate)
	}
	if strings.HasPrefix(serviceURL, "pulsar+ssl://") {
		cfg, err := c.TLSConfig()
		if err != nil {
			return o, err
		}
		o.TLSConfig = cfg
		o.TLSTrustCertsFilePath = a.TrustCertsFile
		o.TLSAllowInsecureConnection = a.AllowInsecure
		o.TLSValidateHostname = a.VerifyHostname && !a.AllowInsecure
	}
	return o, nil
}

// AdminConfig is the pulsaradmin configuration for webServiceURL with the
// same TLS settings. The credential itself is applied by AdminClient's
// transport (pulsaradmin's own providers read a token file only once and
// ignore hostname verification).
func (c *Credentials) AdminConfig(webServiceURL string) *pulsaradmin.Config {
	a := c.auth
	cfg := &pulsaradmin.Config{
		WebServiceURL:                 strings.TrimRight(webServiceURL, "/"),
		TLSTrustCertsFilePath:         a.TrustCertsFile,
		TLSAllowInsecureConnection:    a.AllowInsecure,
		TLSEnableHostnameVerification: a.VerifyHostname,
		AuthPlugin:                    a.Plugin,
	}
	if a.Plugin == objects.AuthOAuth2 {
		cfg.IssuerEndpoint, cfg.ClientID, cfg.Audience, cfg.Scope = a.IssuerURL, a.ClientID, a.Audience, a.Scope
	}
	if a.CertFile.Source == objects.SecretFile && a.KeyFile.Source == objects.SecretFile {
		cfg.TLSCertFile, cfg.TLSKeyFile = a.CertFile.Value, a.KeyFile.Value
	}
	return cfg
}

// AdminClient returns a pulsaradmin client for webServiceURL presenting
// the credential: a bearer token (read for every request), basic
// credentials, OAuth2 client credentials (pulsaradmin's OAuth2 provider),
// or the client certificate in the TLS handshake.
func (c *Credentials) AdminClient(webServiceURL string) (pulsaradmin.Client, error) {
	cfg := c.AdminConfig(webServiceURL)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 10
	if strings.HasPrefix(cfg.WebServiceURL, "https://") {
		tc, err := c.TLSConfig()
		if err != nil {
			return nil, err
		}
		base.TLSClientConfig = tc
	}
	var provider adminauth.Provider
	a := c.auth
	switch a.Plugin {
	case objects.AuthToken:
		provider = &headerAuth{base: base, header: func() (string, error) {
			t, err := c.token()
			return "Bearer " + t, err
		}}
	case objects.AuthBasic:
		provider = &headerAuth{base: base, header: func() (string, error) {
			pw, err := c.read(a.Password)
			if err != nil {
				return "", err
			}
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+strings.TrimSpace(string(pw)))), nil
		}}
	case objects.AuthOAuth2:
		key, err := c.oauth2KeyFile()
		if err != nil {
			return nil, err
		}
		p, err := adminauth.NewAuthenticationOAuth2WithParams(a.IssuerURL, a.ClientID, a.Audience, key, base)
		if err != nil {
			return nil, &CredentialError{Credential: c.Describe(), Err: err}
		}
		provider = p
	default:
		provider = adminauth.NewDefaultProvider(base)
	}
	cl, err := admin.NewPulsarClientWithAuthProvider(cfg, provider)
	if err != nil {
		return nil, fmt.Errorf("pulsar admin client for %s: %w", cfg.WebServiceURL, err)
	}
	return cl, nil
}

// headerAuth adds an Authorization header computed for each request.
type headerAuth struct {
	base   http.RoundTripper
	header func() (string, error)
}

var _ adminauth.Provider = (*headerAuth)(nil)

func (h *headerAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	v, err := h.header()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", v)
	return h.base.RoundTrip(r)
}

func (h *headerAuth) Transport() http.RoundTripper      { return h.base }
func (h *headerAuth) WithTransport(t http.RoundTripper) { h.base = t }
