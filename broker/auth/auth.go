package auth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Method names, as clients send them in CONNECT's auth_method_name and
// pulsar-client-go's auth providers name themselves.
const (
	MethodToken = "token"
	MethodTLS   = "tls"
	MethodBasic = "basic"
)

// providerClasses maps Pulsar's provider class names (authenticationProviders)
// to method names.
var providerClasses = map[string]string{
	"org.apache.pulsar.broker.authentication.AuthenticationProviderToken": MethodToken,
	"org.apache.pulsar.broker.authentication.AuthenticationProviderTls":   MethodTLS,
	"org.apache.pulsar.broker.authentication.AuthenticationProviderBasic": MethodBasic,
}

// ProviderMethod returns the method of a provider named in
// authenticationProviders: a Pulsar class name or a method name.
func ProviderMethod(name string) (string, error) {
	name = strings.TrimSpace(name)
	if m, ok := providerClasses[name]; ok {
		return m, nil
	}
	switch name {
	case MethodToken, MethodTLS, MethodBasic:
		return name, nil
	}
	return "", fmt.Errorf("%w: authenticationProviders: unknown provider %q (supported: %s, %s, %s or their Pulsar class names)",
		ErrConfig, name, MethodToken, MethodTLS, MethodBasic)
}

// Result is who a set of credentials authenticated.
type Result struct {
	// Role is the principal authorization checks use.
	Role string
	// Expires is when the credentials stop being valid (zero = never). A
	// binary-protocol connection is asked for fresh ones after that.
	Expires time.Time
}

// Provider checks credentials of one method.
type Provider interface {
	// Method is the method name clients send ("token", "tls", "basic").
	Method() string
	// AuthenticateBinary checks the auth_data of CONNECT or AUTH_RESPONSE
	// and the connection's TLS session (nil for plaintext).
	AuthenticateBinary(data []byte, st *tls.ConnectionState) (Result, error)
	// AuthenticateHTTP checks an HTTP request (its Authorization header
	// and TLS session).
	AuthenticateHTTP(r *http.Request) (Result, error)
}

// Config holds the settings of the providers, with Pulsar's broker.conf
// names. The zero value of each field means the default noted beside it.
type Config struct {
	// Providers are the enabled providers, by method or Pulsar class name
	// (authenticationProviders; empty = none).
	Providers []string
	// TokenSecretKey is the HMAC key of HS256/384/512 tokens: "data:"
	// URL, "file:" URL, a file path or base64 (tokenSecretKey).
	TokenSecretKey string
	// TokenPublicKey is the public key of RS*/PS*/ES* tokens, DER or PEM,
	// given like TokenSecretKey (tokenPublicKey). Used when TokenSecretKey
	// is empty.
	TokenPublicKey string
	// TokenPublicAlg is the algorithm family of TokenPublicKey
	// (tokenPublicAlg; "" = RS256).
	TokenPublicAlg string
	// TokenAuthClaim is the claim holding the role (tokenAuthClaim; "" =
	// "sub").
	TokenAuthClaim string
	// TokenAudienceClaim and TokenAudience require tokens to name this
	// broker in that claim (tokenAudienceClaim, tokenAudience; "" = no
	// audience check).
	TokenAudienceClaim string
	TokenAudience      string
	// BasicAuthConf is the htpasswd file: "data:" URL, "file:" URL, a path
	// or base64 of its content (basicAuthConf).
	BasicAuthConf string
	// TrustedClientCert returns a TLS session's client certificate if it
	// chains to the trusted CAs, else nil. Required by the tls provider.
	TrustedClientCert func(*tls.ConnectionState) *x509.Certificate
	// Now is the clock for token expiry (nil = time.Now).
	Now func() time.Time
}

// NewProviders builds the providers cfg enables, in its order.
func NewProviders(cfg Config) ([]Provider, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var out []Provider
	seen := map[string]bool{}
	for _, name := range cfg.Providers {
		if strings.TrimSpace(name) == "" {
			continue
		}
		m, err := ProviderMethod(name)
		if err != nil {
			return nil, err
		}
		if seen[m] {
			continue
		}
		seen[m] = true
		var p Provider
		switch m {
		case MethodToken:
			p, err = NewTokenProvider(cfg)
		case MethodTLS:
			if cfg.TrustedClientCert == nil {
				return nil, fmt.Errorf("%w: the tls provider needs the TLS listeners' trust (tlsTrustCertsFilePath)", ErrConfig)
			}
			p = &tlsProvider{trusted: cfg.TrustedClientCert}
		case MethodBasic:
			p, err = NewBasicProvider(cfg.BasicAuthConf)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// authErr wraps a refusal with its method.
func authErr(method, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrAuthentication, method, fmt.Sprintf(format, args...))
}

// tlsProvider authenticates by TLS client certificate: the role is the
// subject's common name (Pulsar's AuthenticationProviderTls).
type tlsProvider struct {
	trusted func(*tls.ConnectionState) *x509.Certificate
}

func (p *tlsProvider) Method() string { return MethodTLS }

func (p *tlsProvider) AuthenticateBinary(_ []byte, st *tls.ConnectionState) (Result, error) {
	return p.authenticate(st)
}

func (p *tlsProvider) AuthenticateHTTP(r *http.Request) (Result, error) { return p.authenticate(r.TLS) }

func (p *tlsProvider) authenticate(st *tls.ConnectionState) (Result, error) {
	if st == nil || len(st.PeerCertificates) == 0 {
		return Result{}, authErr(MethodTLS, "no client certificate (connect over TLS with a certificate)")
	}
	cert := p.trusted(st)
	if cert == nil {
		return Result{}, authErr(MethodTLS, "client certificate %q is not signed by a trusted CA (tlsTrustCertsFilePath)", st.PeerCertificates[0].Subject.CommonName)
	}
	if cert.Subject.CommonName == "" {
		return Result{}, authErr(MethodTLS, "client certificate has no common name (CN) to use as role")
	}
	// As in Pulsar, a certificate authenticates the connection for its
	// life: the handshake checked its validity.
	return Result{Role: cert.Subject.CommonName}, nil
}
