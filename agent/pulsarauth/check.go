package pulsarauth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/meshfed/meshfed/objects"
)

// Check reads every file and variable the credential names and checks
// what can be checked without a broker: a token is not empty and, when it
// is a JWT with an expiry, not expired at now; a client certificate loads
// with its key and is valid at now; the trusted CA file holds a
// certificate; an OAuth2 credentials file is JSON with a client_id. The
// error is a *CredentialError naming the credential.
func (c *Credentials) Check(now time.Time) error {
	a := c.auth
	if a.TrustCertsFile != "" || a.CertFile.Source != objects.SecretNone {
		if _, err := c.TLSConfig(); err != nil {
			return err
		}
	}
	if a.CertFile.Source != objects.SecretNone {
		cert, err := c.clientCertificate()
		if err != nil {
			return err
		}
		if err := certValid(cert, now); err != nil {
			return &CredentialError{Credential: "TLS client certificate " + a.CertFile.String(), Err: err}
		}
	}
	switch a.Plugin {
	case objects.AuthToken:
		t, err := c.token()
		if err != nil {
			return err
		}
		if exp, ok := jwtExpiry(t); ok && !now.Before(exp) {
			return &CredentialError{Credential: c.Describe(), Err: fmt.Errorf("expired at %s", exp.UTC().Format(time.RFC3339))}
		}
	case objects.AuthBasic:
		if _, err := c.read(a.Password); err != nil {
			return err
		}
	case objects.AuthOAuth2:
		if a.PrivateKey.Source == objects.SecretLiteral {
			return nil // a data: URL on a command line
		}
		b, err := c.read(a.PrivateKey)
		if err != nil {
			return err
		}
		var kf struct {
			ClientID string `json:"client_id"`
		}
		if err := json.Unmarshal(b, &kf); err != nil {
			return &CredentialError{Credential: "OAuth2 client credentials " + a.PrivateKey.String(), Err: fmt.Errorf("not JSON: %v", err)}
		}
		if kf.ClientID == "" {
			return &CredentialError{Credential: "OAuth2 client credentials " + a.PrivateKey.String(), Err: errors.New(`no "client_id"`)}
		}
	}
	return nil
}

// certValid checks the leaf certificate's validity period.
func certValid(cert *tls.Certificate, now time.Time) error {
	if len(cert.Certificate) == 0 {
		return errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it (the broker
// verifies; this only names an expired token before the broker refuses
// it). ok is false for tokens that are not JWTs or have no exp.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(b, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 || f > 1<<40 {
		// Not a plausible time: leave it to the broker.
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// Refusal kinds, as Refused reports them.
const (
	// KindCredential: the credential could not be read or is unusable
	// on this host.
	KindCredential = "credential unusable"
	// KindAuthentication: the broker did not accept who the client is.
	KindAuthentication = "authentication refused"
	// KindAuthorization: the broker accepted who the client is but not
	// what it asked.
	KindAuthorization = "authorization refused"
	// KindTLS: the TLS handshake failed on a certificate (the broker's
	// untrusted or misnamed, or the client's refused).
	KindTLS = "TLS handshake failed"
)

// Refused reports whether err is a refusal of the client's credential or
// TLS setup, and which kind. pulsar-client-go reports the broker's binary
// protocol errors as text only ("server error: AuthorizationError: ...",
// or a lookup's bare "AuthorizationError"), so those are recognized by
// the server error names Pulsar's protocol defines; admin API refusals by
// their HTTP status (401, 403).
func Refused(err error) (kind string, ok bool) {
	if err == nil {
		return "", false
	}
	var ce *CredentialError
	if errors.As(err, &ce) {
		return KindCredential, true
	}
	var pe *pulsar.Error
	if errors.As(err, &pe) {
		switch pe.Result() {
		case pulsar.AuthenticationError:
			return KindAuthentication, true
		case pulsar.AuthorizationError:
			return KindAuthorization, true
		}
	}
	var re rest.Error
	if errors.As(err, &re) {
		switch re.Code {
		case 401:
			return KindAuthentication, true
		case 403:
			return KindAuthorization, true
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid) {
		return KindTLS, true
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "remote error: tls: ") && containsAny(s, certAlerts):
		// crypto/tls reports the peer's alerts by text only.
		return KindTLS, true
	case strings.Contains(s, "AuthenticationError"):
		return KindAuthentication, true
	case strings.Contains(s, "AuthorizationError"):
		return KindAuthorization, true
	}
	return "", false
}

// certAlerts are crypto/tls's texts of the alerts a broker sends when it
// refuses the client's certificate.
var certAlerts = []string{"bad certificate", "unsupported certificate", "revoked certificate", "expired certificate",
	"certificate unknown", "unknown certificate authority", "certificate required"}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
