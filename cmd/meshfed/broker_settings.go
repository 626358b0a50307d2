package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshfed/meshfed/broker"
)

// brokerSetting is one broker.conf key the broker command understands,
// also offered as a flag of the same name.
type brokerSetting struct {
	name  string
	help  string
	apply func(cfg *broker.Config, l *listenSettings, v string) error
}

// listenSettings collects the port settings, which combine with
// bindAddress into listener addresses once all are read.
type listenSettings struct {
	bind, port, portTLS, web, webTLS string
	// set records which of them a file or flag gave.
	set map[string]bool
}

func boolSetting(dst func(*broker.Config) *bool) func(*broker.Config, *listenSettings, string) error {
	return func(cfg *broker.Config, _ *listenSettings, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*dst(cfg) = b
		return nil
	}
}

func stringSetting(dst func(*broker.Config) *string) func(*broker.Config, *listenSettings, string) error {
	return func(cfg *broker.Config, _ *listenSettings, v string) error {
		*dst(cfg) = strings.TrimSpace(v)
		return nil
	}
}

func listSetting(dst func(*broker.Config) *[]string) func(*broker.Config, *listenSettings, string) error {
	return func(cfg *broker.Config, _ *listenSettings, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*dst(cfg) = out
		return nil
	}
}

func secondsSetting(dst func(*broker.Config) *time.Duration) func(*broker.Config, *listenSettings, string) error {
	return func(cfg *broker.Config, _ *listenSettings, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("want a number of seconds, got %q", v)
		}
		*dst(cfg) = time.Duration(n) * time.Second
		return nil
	}
}

func portSetting(dst func(*listenSettings) *string, key string) func(*broker.Config, *listenSettings, string) error {
	return func(_ *broker.Config, l *listenSettings, v string) error {
		v = strings.TrimSpace(v)
		if v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("want a port number (0-65535) or empty, got %q", v)
			}
		}
		*dst(l) = v
		l.set[key] = true
		return nil
	}
}

// brokerSettings are the broker.conf keys understood, by name.
var brokerSettings = []brokerSetting{
	{"bindAddress", "host the port settings listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)",
		func(_ *broker.Config, l *listenSettings, v string) error {
			l.bind = strings.TrimSpace(v)
			l.set["bindAddress"] = true
			return nil
		}},
	{"brokerServicePort", "port of the pulsar:// listener; empty disables it (overrides the port of --listen)",
		portSetting(func(l *listenSettings) *string { return &l.port }, "brokerServicePort")},
	{"brokerServicePortTls", "port of the pulsar+ssl:// listener (empty = none); needs tlsCertificateFilePath and tlsKeyFilePath",
		portSetting(func(l *listenSettings) *string { return &l.portTLS }, "brokerServicePortTls")},
	{"webServicePort", "port of the http:// admin API; empty disables it (overrides the port of --http-addr)",
		portSetting(func(l *listenSettings) *string { return &l.web }, "webServicePort")},
	{"webServicePortTls", "port of the https:// admin API (empty = none); needs tlsCertificateFilePath and tlsKeyFilePath",
		portSetting(func(l *listenSettings) *string { return &l.webTLS }, "webServicePortTls")},
	{"advertisedAddress", "host (or host:port) lookups return to clients (same as --advertised-address)",
		stringSetting(func(c *broker.Config) *string { return &c.AdvertisedAddr })},
	{"clusterName", "this broker's cluster name (same as --cluster-name)",
		stringSetting(func(c *broker.Config) *string { return &c.ClusterName })},
	{"tlsCertificateFilePath", "the broker's TLS certificate chain, PEM",
		stringSetting(func(c *broker.Config) *string { return &c.TLS.CertFile })},
	{"tlsKeyFilePath", "the private key of tlsCertificateFilePath, PEM (PKCS#8, PKCS#1 or SEC 1)",
		stringSetting(func(c *broker.Config) *string { return &c.TLS.KeyFile })},
	{"tlsTrustCertsFilePath", "CA certificates, PEM, that client certificates must chain to (default: the system pool)",
		stringSetting(func(c *broker.Config) *string { return &c.TLS.TrustCertsFile })},
	{"tlsRequireTrustedClientCertOnConnect", "refuse TLS clients without a certificate chaining to tlsTrustCertsFilePath",
		boolSetting(func(c *broker.Config) *bool { return &c.TLS.RequireTrustedClientCert })},
	{"tlsAllowInsecureConnection", "accept untrusted client certificates in the handshake (they never authenticate); as a client, skip verifying remote brokers",
		func(c *broker.Config, l *listenSettings, v string) error {
			if err := boolSetting(func(c *broker.Config) *bool { return &c.TLS.AllowInsecureConnection })(c, l, v); err != nil {
				return err
			}
			c.BrokerClient.AllowInsecure = c.TLS.AllowInsecureConnection
			return nil
		}},
	{"tlsProtocols", "comma-separated TLS versions accepted: TLSv1.2, TLSv1.3 (default both)",
		listSetting(func(c *broker.Config) *[]string { return &c.TLS.Protocols })},
	{"tlsCiphers", "comma-separated TLS 1.2 cipher suites by IANA name (default Go's)",
		listSetting(func(c *broker.Config) *[]string { return &c.TLS.Ciphers })},
	{"tlsCertRefreshCheckDurationSec", "seconds between checks for changed TLS files, reloaded without restart (default 300; negative never)",
		secondsSetting(func(c *broker.Config) *time.Duration { return &c.TLS.CertRefreshCheck })},
	{"tlsHostnameVerificationEnabled", "as a client of remote brokers, check their certificates name their hosts",
		boolSetting(func(c *broker.Config) *bool { return &c.BrokerClient.HostnameVerification })},
	{"authenticationEnabled", "require clients to authenticate with one of authenticationProviders",
		boolSetting(func(c *broker.Config) *bool { return &c.Auth.Enabled })},
	{"authenticationProviders", "comma-separated providers: token, tls, basic or Pulsar's class names (AuthenticationProviderToken, ...Tls, ...Basic)",
		listSetting(func(c *broker.Config) *[]string { return &c.Auth.Providers.Providers })},
	{"anonymousUserRole", "role of clients that send no credentials (empty refuses them)",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.AnonymousUserRole })},
	{"authenticationRefreshCheckSeconds", "seconds between checks for expired credentials; also how long a client has to refresh them (default 60)",
		secondsSetting(func(c *broker.Config) *time.Duration { return &c.Auth.RefreshCheck })},
	{"tokenSecretKey", "HS256 key of tokens: file:///path, data:;base64,..., a path or base64",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.TokenSecretKey })},
	{"tokenPublicKey", "public key (DER or PEM) of RS256/ES256 tokens: file:///path, data:;base64,..., a path or base64",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.TokenPublicKey })},
	{"tokenPublicAlg", "algorithm of tokenPublicKey: RS256 (default), PS256, ES256, ...",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.TokenPublicAlg })},
	{"tokenAuthClaim", "token claim holding the role (default sub)",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.TokenAuthClaim })},
	{"tokenAudienceClaim", "token claim that must name this broker (default: no audience check)",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.TokenAudienceClaim })},
	{"tokenAudience", "this broker's audience, required in tokenAudienceClaim",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.TokenAudience })},
	{"basicAuthConf", "htpasswd file of the basic provider (bcrypt, $apr1$, $1$, {SHA} or crypt hashes): a path, file:///path, data:;base64,... or base64",
		stringSetting(func(c *broker.Config) *string { return &c.Auth.Providers.BasicAuthConf })},
	{"authorizationEnabled", "check namespace permissions and tenant admin roles (needs authenticationEnabled)",
		boolSetting(func(c *broker.Config) *bool { return &c.Authorization.Enabled })},
	{"superUserRoles", "comma-separated roles allowed everything",
		listSetting(func(c *broker.Config) *[]string { return &c.Authorization.SuperUserRoles })},
	{"brokerClientAuthenticationPlugin", "how this broker authenticates to remote brokers when replicating: AuthenticationToken, AuthenticationTls, AuthenticationBasic (Pulsar class names or token, tls, basic)",
		stringSetting(func(c *broker.Config) *string { return &c.BrokerClient.AuthPlugin })},
	{"brokerClientAuthenticationParameters", "parameters of brokerClientAuthenticationPlugin: token:<jwt>, file:///path, or JSON such as {\"tlsCertFile\":...,\"tlsKeyFile\":...}",
		stringSetting(func(c *broker.Config) *string { return &c.BrokerClient.AuthParams })},
	{"brokerClientTlsEnabled", "replicate over the remote clusters' pulsar+ssl:// and https:// URLs",
		boolSetting(func(c *broker.Config) *bool { return &c.BrokerClient.TLSEnabled })},
	{"brokerClientTrustCertsFilePath", "CA certificates, PEM, remote brokers' certificates must chain to (default: the system pool)",
		stringSetting(func(c *broker.Config) *string { return &c.BrokerClient.TrustCertsFile })},
}

// boolSettings are the settings that take true or false.
var boolSettings = map[string]bool{"tlsRequireTrustedClientCertOnConnect": true, "tlsAllowInsecureConnection": true,
	"tlsHostnameVerificationEnabled": true, "authenticationEnabled": true, "authorizationEnabled": true,
	"brokerClientTlsEnabled": true}

// addBrokerSettingFlags registers one string flag per setting; vals holds
// their values.
func addBrokerSettingFlags(f *pflag.FlagSet) map[string]*string {
	vals := map[string]*string{}
	for _, s := range brokerSettings {
		vals[s.name] = f.String(s.name, "", s.help+" (broker.conf "+s.name+")")
		if boolSettings[s.name] {
			// --authenticationEnabled alone means true, as a bool flag would.
			f.Lookup(s.name).NoOptDefVal = "true"
		}
	}
	return vals
}

// readBrokerConf reads a broker.conf-style file: key=value lines, '#'
// comments. Keys this broker does not know are returned in ignored.
func readBrokerConf(path string) (vals map[string]string, ignored []string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--config: %w", err)
	}
	known := map[string]bool{}
	for _, s := range brokerSettings {
		known[s.name] = true
	}
	vals = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--config %s: line %d: want key=value", path, n)
		}
		k = strings.TrimSpace(k)
		if !known[k] {
			if strings.TrimSpace(v) != "" {
				ignored = append(ignored, k)
			}
			continue
		}
		vals[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("--config %s: %w", path, err)
	}
	sort.Strings(ignored)
	return vals, ignored, nil
}

// applyBrokerSettings applies file values, then the setting flags given on
// the command line, to cfg; the listener addresses are then derived from
// bindAddress and the ports.
func applyBrokerSettings(cfg *broker.Config, file map[string]string, flags *pflag.FlagSet, flagVals map[string]*string) error {
	l := &listenSettings{set: map[string]bool{}}
	for _, s := range brokerSettings {
		v, ok := file[s.name]
		source := "--config"
		if flags.Changed(s.name) {
			v, ok, source = *flagVals[s.name], true, "--"+s.name
		}
		if !ok {
			continue
		}
		if err := s.apply(cfg, l, v); err != nil {
			return fmt.Errorf("%s %s: %w", source, s.name, err)
		}
	}
	bind := l.bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	addr := func(port string) string {
		if port == "" {
			return ""
		}
		return net.JoinHostPort(bind, port)
	}
	if l.set["brokerServicePort"] && !flags.Changed("listen") {
		if l.port == "" {
			cfg.DisablePlaintext = true
		} else {
			cfg.ListenAddr = addr(l.port)
		}
	}
	if l.set["webServicePort"] && !flags.Changed("http-addr") {
		cfg.HTTPAddr = addr(l.web)
	}
	cfg.TLSListenAddr = addr(l.portTLS)
	cfg.HTTPSAddr = addr(l.webTLS)
	if l.set["bindAddress"] && !l.set["brokerServicePort"] && !flags.Changed("listen") {
		_, port, _ := net.SplitHostPort(cfg.ListenAddr)
		cfg.ListenAddr = net.JoinHostPort(bind, port)
	}
	if l.set["bindAddress"] && !l.set["webServicePort"] && !flags.Changed("http-addr") && cfg.HTTPAddr != "" {
		_, port, _ := net.SplitHostPort(cfg.HTTPAddr)
		cfg.HTTPAddr = net.JoinHostPort(bind, port)
	}
	return nil
}
