package objects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// Pulsar authentication plugins (Cluster.spec.auth.authPlugin), by the
// short names Pulsar clients take.
const (
	AuthToken  = "token"
	AuthOAuth2 = "oauth2"
	AuthTLS    = "tls"
	AuthBasic  = "basic"
)

// pulsarAuthClasses maps Pulsar's client plugin class names to short names.
var pulsarAuthClasses = map[string]string{
	"org.apache.pulsar.client.impl.auth.AuthenticationToken":         AuthToken,
	"org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2": AuthOAuth2,
	"org.apache.pulsar.client.impl.auth.AuthenticationTls":           AuthTLS,
	"org.apache.pulsar.client.impl.auth.AuthenticationBasic":         AuthBasic,
}

// AuthPlugins are the plugins agents and the CLI support, by short name.
var AuthPlugins = []string{AuthToken, AuthOAuth2, AuthTLS, AuthBasic}

// SecretSource is where a secret (or a file such as a private key) is.
type SecretSource int

const (
	// SecretNone: not set.
	SecretNone SecretSource = iota
	// SecretFile: Value is an absolute path (file:///path, or a plain path
	// where the field names a file).
	SecretFile
	// SecretEnv: Value is the name of an environment variable (env:NAME).
	SecretEnv
	// SecretLiteral: Value is the secret itself. Refused in objects.
	SecretLiteral
)

// SecretRef names a secret without holding it, except for a literal.
type SecretRef struct {
	Source SecretSource
	// Value is the path, the variable name, or the literal secret.
	Value string
}

// String shows the reference, never a literal secret.
func (r SecretRef) String() string {
	switch r.Source {
	case SecretFile:
		return "file://" + r.Value
	case SecretEnv:
		return "env:" + r.Value
	case SecretLiteral:
		return "a value given in clear"
	}
	return "nothing"
}

// AuthUse says where a ClusterAuth comes from, which decides what it may
// hold.
type AuthUse int

const (
	// AuthInObject: a Cluster object. Secrets must be references, paths
	// absolute (they are resolved on agent hosts).
	AuthInObject AuthUse = iota
	// AuthOnCommandLine: a user's own command line (meshfed produce and
	// consume, as pulsar-client): literal secrets and relative paths are
	// accepted.
	AuthOnCommandLine
)

// PulsarAuth is a parsed ClusterAuth: what a Pulsar client needs to
// authenticate and to set up TLS, with every secret still a reference.
type PulsarAuth struct {
	// Plugin is the short plugin name; empty: no authentication.
	Plugin string
	// Token (plugin token).
	Token SecretRef
	// Username and Password (plugin basic).
	Username string
	Password SecretRef
	// OAuth2 client credentials flow (plugin oauth2): IssuerURL, the
	// credentials file PrivateKey (a JSON key file with client_id and
	// client_secret), and the optional Audience, Scope and ClientID.
	IssuerURL, Audience, Scope, ClientID string
	PrivateKey                           SecretRef
	// CertFile and KeyFile are the client certificate and key presented
	// in the TLS handshake (plugin tls, or mutual TLS without a plugin);
	// SecretNone when there is none.
	CertFile, KeyFile SecretRef
	// TrustCertsFile is the PEM file of trusted CAs; empty: system roots.
	TrustCertsFile string
	// AllowInsecure accepts any broker certificate.
	AllowInsecure bool
	// VerifyHostname checks the broker certificate's host name.
	VerifyHostname bool
}

// UsesTLSSettings reports whether anything in a is about TLS.
func (a *PulsarAuth) UsesTLSSettings() bool {
	return a.Plugin == AuthTLS || a.TrustCertsFile != "" || a.AllowInsecure || !a.VerifyHostname || a.CertFile.Source != SecretNone
}

// Credential describes, for errors and logs, the credential a presents —
// never a secret.
func (a *PulsarAuth) Credential() string {
	switch a.Plugin {
	case AuthToken:
		return "token from " + a.Token.String()
	case AuthBasic:
		return fmt.Sprintf("basic credentials of user %q (password from %s)", a.Username, a.Password)
	case AuthOAuth2:
		return fmt.Sprintf("OAuth2 client credentials from %s (issuer %s)", a.PrivateKey, a.IssuerURL)
	case AuthTLS:
		return "TLS client certificate " + a.CertFile.String()
	}
	if a.CertFile.Source != SecretNone {
		return "no authentication plugin, TLS client certificate " + a.CertFile.String()
	}
	return "no credential (anonymous)"
}

// ParseClusterAuth parses a ClusterAuth for use. Errors are FieldErrors
// whose paths are the ClusterAuth's JSON field names (authParams, ...).
// With AuthInObject, secrets in clear and relative paths are errors that
// say what to write instead.
func ParseClusterAuth(a *meshfedv1.ClusterAuth, use AuthUse) (*PulsarAuth, error) {
	var e errs
	p := parseClusterAuth(&e, "", a, use)
	if err := e.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// secretAdvice ends every refusal of a secret in clear.
const secretAdvice = "the control plane keeps objects in clear and shows them to every reader; put it in a file on the agent hosts and write file:///path/to/it, or in an environment variable of the agents and write env:NAME"

func parseClusterAuth(e *errs, path string, a *meshfedv1.ClusterAuth, use AuthUse) *PulsarAuth {
	p := &PulsarAuth{VerifyHostname: true}
	if a == nil {
		return p
	}
	if a.TlsEnableHostnameVerification != nil {
		p.VerifyHostname = a.GetTlsEnableHostnameVerification()
	}
	p.AllowInsecure = a.GetTlsAllowInsecureConnection()
	if t := a.GetTlsTrustCertsFilePath(); t != "" {
		ref := parseFileRef(e, join(path, "tlsTrustCertsFilePath"), t, use, false)
		p.TrustCertsFile = ref.Value
	}
	if c := a.GetTlsCertificateFilePath(); c != "" {
		p.CertFile = parseFileRef(e, join(path, "tlsCertificateFilePath"), c, use, true)
	}
	if k := a.GetTlsKeyFilePath(); k != "" {
		p.KeyFile = parseFileRef(e, join(path, "tlsKeyFilePath"), k, use, true)
	}
	if c, k := a.GetTlsCertificateFilePath(), a.GetTlsKeyFilePath(); (c == "") != (k == "") {
		if c == "" {
			e.add(join(path, "tlsCertificateFilePath"), "required with tlsKeyFilePath: mutual TLS needs the certificate and its key")
		} else {
			e.add(join(path, "tlsKeyFilePath"), "required with tlsCertificateFilePath: mutual TLS needs the certificate and its key")
		}
	}
	plugin, params := a.GetAuthPlugin(), a.GetAuthParams()
	pp, ap := join(path, "authPlugin"), join(path, "authParams")
	if plugin == "" {
		if params != "" {
			e.add(pp, "required when authParams is set: one of %s (or Pulsar's class name of one)", strings.Join(AuthPlugins, ", "))
		}
		return p
	}
	short, ok := canonicalPlugin(plugin)
	if !ok {
		e.add(pp, "%q is not a supported plugin: use one of %s, or Pulsar's class name of one", truncate(plugin), strings.Join(AuthPlugins, ", "))
		return p
	}
	p.Plugin = short
	switch short {
	case AuthToken:
		p.Token = parseTokenParams(e, ap, params, use)
	case AuthBasic:
		m := authParamMap(e, ap, params, []string{"username", "userId", "password"})
		if m == nil {
			return p
		}
		p.Username = m["username"]
		if u := m["userId"]; u != "" {
			if p.Username != "" && p.Username != u {
				e.add(ap, "username and userId differ: give one")
			}
			p.Username = u
		}
		if p.Username == "" {
			e.add(ap, `basic needs "username" (or Pulsar's "userId") and "password"`)
		}
		if m["password"] == "" {
			e.add(ap, `basic needs "password": file:///path or env:NAME`)
		} else {
			p.Password = parseSecretRef(e, ap+" password", m["password"], use, "a password")
		}
	case AuthOAuth2:
		m := authParamMap(e, ap, params, []string{"type", "issuerUrl", "audience", "scope", "privateKey", "clientId"})
		if m == nil {
			return p
		}
		if t := m["type"]; t != "" && t != "client_credentials" {
			e.add(ap, "type %q: only client_credentials is supported", truncate(t))
		}
		p.IssuerURL, p.Audience, p.Scope, p.ClientID = m["issuerUrl"], m["audience"], m["scope"], m["clientId"]
		if p.IssuerURL == "" {
			e.add(ap, `oauth2 needs "issuerUrl", the OAuth2 server's URL`)
		} else if r := checkURL(p.IssuerURL, []string{"https", "http"}, false); r != "" {
			e.add(ap, "issuerUrl: %s", r)
		}
		switch k := m["privateKey"]; {
		case k == "":
			e.add(ap, `oauth2 needs "privateKey", the client credentials file (JSON with client_id and client_secret): file:///path or env:NAME`)
		case strings.HasPrefix(k, "data:"):
			if use == AuthInObject {
				e.add(ap, "privateKey: a data: URL holds the client credentials in clear; %s", secretAdvice)
			}
			p.PrivateKey = SecretRef{Source: SecretLiteral, Value: k}
		default:
			p.PrivateKey = parseSecretRef(e, ap+" privateKey", k, use, "client credentials")
		}
	case AuthTLS:
		m := authParamMap(e, ap, params, []string{"tlsCertFile", "tlsKeyFile"})
		if m == nil {
			return p
		}
		c, k := m["tlsCertFile"], m["tlsKeyFile"]
		switch {
		case c == "" && k == "":
			if p.CertFile.Source == SecretNone {
				e.add(ap, "tls needs a client certificate and key: tlsCertFile and tlsKeyFile here, or tlsCertificateFilePath and tlsKeyFilePath")
			}
		case c == "" || k == "":
			e.add(ap, "tls needs both tlsCertFile and tlsKeyFile")
		default:
			if p.CertFile.Source != SecretNone && (a.GetTlsCertificateFilePath() != c || a.GetTlsKeyFilePath() != k) {
				e.add(ap, "names other certificate files than tlsCertificateFilePath and tlsKeyFilePath: give them once")
			}
			p.CertFile = parseFileRef(e, ap+" tlsCertFile", c, use, true)
			p.KeyFile = parseFileRef(e, ap+" tlsKeyFile", k, use, true)
		}
	}
	return p
}

// canonicalPlugin maps a plugin name (short or Pulsar class name) to its
// short name.
func canonicalPlugin(name string) (string, bool) {
	if slices.Contains(AuthPlugins, name) {
		return name, true
	}
	s, ok := pulsarAuthClasses[name]
	return s, ok
}

// parseTokenParams reads a token plugin's parameters as Pulsar's token
// plugin does: token:LITERAL, file:///path, a JSON object with "token" or
// "file", or a bare token; and env:NAME.
func parseTokenParams(e *errs, path, params string, use AuthUse) SecretRef {
	s := strings.TrimSpace(params)
	switch {
	case s == "":
		e.add(path, "token needs the token's location: file:///path or env:NAME")
		return SecretRef{}
	case strings.HasPrefix(s, "{"):
		m := authParamMap(e, path, s, []string{"token", "file"})
		switch {
		case m == nil:
			return SecretRef{}
		case m["token"] != "" && m["file"] != "":
			e.add(path, `give "token" or "file", not both`)
			return SecretRef{}
		case m["file"] != "":
			return parseFileRef(e, path+" file", m["file"], use, true)
		case m["token"] != "":
			return parseSecretRef(e, path+" token", m["token"], use, "a token")
		}
		e.add(path, `token needs "file" (or "token")`)
		return SecretRef{}
	case strings.HasPrefix(s, "token:"):
		return literal(e, path, strings.TrimPrefix(s, "token:"), use, "a token")
	}
	return parseSecretRef(e, path, s, use, "a token")
}

// parseSecretRef reads file:///path, env:NAME, or a literal secret (what
// names it for errors).
func parseSecretRef(e *errs, path, s string, use AuthUse, what string) SecretRef {
	switch {
	case strings.HasPrefix(s, "file:"):
		return parseFileRef(e, path, s, use, true)
	case strings.HasPrefix(s, "env:"):
		name := strings.TrimPrefix(s, "env:")
		if !envName.MatchString(name) {
			e.add(path, "env:%s: %q is not an environment variable name", truncate(name), truncate(name))
			return SecretRef{}
		}
		return SecretRef{Source: SecretEnv, Value: name}
	}
	return literal(e, path, s, use, what)
}

func literal(e *errs, path, s string, use AuthUse, what string) SecretRef {
	if s == "" {
		e.add(path, "empty: give %s's location, file:///path or env:NAME", what)
		return SecretRef{}
	}
	if use == AuthInObject {
		e.add(path, "%s in clear is not accepted: %s", what, secretAdvice)
	}
	return SecretRef{Source: SecretLiteral, Value: s}
}

// parseFileRef reads a file named by a plain path or file:///path; with
// allowEnv, env:NAME (the file's content in a variable) too. In objects
// paths must be absolute, and PEM content in clear is refused.
func parseFileRef(e *errs, path, s string, use AuthUse, allowEnv bool) SecretRef {
	switch {
	case strings.Contains(s, "-----BEGIN"):
		if use == AuthInObject {
			e.add(path, "PEM content in clear is not accepted: give the file's path; "+secretAdvice)
			return SecretRef{Source: SecretLiteral, Value: s}
		}
		e.add(path, "give the path of the PEM file, not its content")
		return SecretRef{}
	case strings.HasPrefix(s, "env:"):
		if !allowEnv {
			e.add(path, "%q: give a file path (file:///path or /path)", truncate(s))
			return SecretRef{}
		}
		return parseSecretRef(e, path, s, use, "")
	case strings.HasPrefix(s, "file:"):
		u, err := url.Parse(s)
		if err != nil || u.Host != "" || u.Opaque != "" || u.Path == "" || u.RawQuery != "" || u.Fragment != "" {
			e.add(path, "%q is not a file URL: write file:///absolute/path", truncate(s))
			return SecretRef{}
		}
		return SecretRef{Source: SecretFile, Value: u.Path}
	}
	if s == "" {
		e.add(path, "empty: give a file path")
		return SecretRef{}
	}
	if use == AuthInObject && !filepath.IsAbs(s) {
		e.add(path, "%q is not an absolute path: the agent resolves it on its host, from no particular directory", truncate(s))
		return SecretRef{}
	}
	return SecretRef{Source: SecretFile, Value: s}
}

// authParamMap parses a plugin's parameters and checks their keys.
func authParamMap(e *errs, path, params string, known []string) map[string]string {
	m, err := ParseAuthParams(params)
	if err != nil {
		e.add(path, "%v", err)
		return nil
	}
	keys := slices.Sorted(maps.Keys(m))
	for _, k := range keys {
		if !slices.Contains(known, k) {
			e.add(path, "unknown parameter %q (known: %s)", truncate(k), strings.Join(known, ", "))
		}
	}
	return m
}

// maxAuthParams bounds the parameter string ParseAuthParams reads.
const maxAuthParams = 64 << 10

// ParseAuthParams parses a Pulsar authentication parameter string: a JSON
// object of strings, or key:value pairs separated by commas (the value is
// everything after the first colon, so file:///path values work). Empty:
// no parameters.
func ParseAuthParams(s string) (map[string]string, error) {
	if len(s) > maxAuthParams {
		return nil, fmt.Errorf("longer than %d bytes", maxAuthParams)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("not UTF-8 text")
	}
	s = strings.TrimSpace(s)
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if strings.HasPrefix(s, "{") {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("not a JSON object: %v", err)
		}
		if dec.More() {
			return nil, fmt.Errorf("text after the JSON object")
		}
		for k, v := range raw {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("parameter %q: the value must be a string", truncate(k))
			}
			m[k] = str
		}
		return m, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key:value (write key:value,key:value or a JSON object)", truncate(strings.TrimSpace(part)))
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("parameter %q given twice", truncate(k))
		}
		m[k] = strings.TrimSpace(v)
	}
	return m, nil
}
