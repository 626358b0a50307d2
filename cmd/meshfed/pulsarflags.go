package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/spf13/pflag"
)

// pulsarClientFlags are the authentication and TLS flags of the commands
// that talk to a Pulsar broker (produce, consume), named as pulsar-client's.
// They build a ClusterAuth, parsed as a Cluster's spec.auth is (but taking
// secrets in clear and relative paths: it is the user's own command line),
// and pulsarauth turns it into client options.
type pulsarClientFlags struct {
	authPlugin, authParams   string
	authToken, authTokenFile string
	trustCerts               string
	allowInsecure            bool
	verifyHostname           bool
	certFile, keyFile        string
	// creds are the parsed flags; set by clientOptions.
	creds *pulsarauth.Credentials
}

func (p *pulsarClientFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.authPlugin, "auth-plugin", "", "Pulsar authentication plugin: token, oauth2, tls or basic, or Pulsar's class name of one (org.apache.pulsar.client.impl.auth.AuthenticationToken, ...)")
	f.StringVar(&p.authParams, "auth-params", "", `parameters of --auth-plugin, as pulsar-client takes them: key:value,key:value or a JSON object; token: "token:SECRET", "file:///path" or "env:NAME"; oauth2: {"issuerUrl":...,"audience":...,"privateKey":"file:///creds.json"}; tls: tlsCertFile:PATH,tlsKeyFile:PATH; basic: {"username":...,"password":...}`)
	f.StringVar(&p.authToken, "auth-token", "", "authenticate with this token (plugin token; a flag is visible to other local users in ps: prefer --auth-token-file)")
	f.StringVar(&p.authTokenFile, "auth-token-file", "", "authenticate with the token in this file (plugin token)")
	f.StringVar(&p.trustCerts, "tls-trust-cert-path", "", "PEM file of the CAs trusted for the broker's TLS certificate (pulsar+ssl:// URLs; default: the system's roots)")
	f.BoolVar(&p.allowInsecure, "tls-allow-insecure", false, "accept any broker TLS certificate without verifying it (tests only)")
	f.BoolVar(&p.verifyHostname, "tls-enable-hostname-verification", true, "check that the broker's TLS certificate names the host in --service-url (pulsar-client's default is false; meshfed verifies unless given =false)")
	f.StringVar(&p.certFile, "tls-cert-file", "", "client certificate (PEM) presented to a broker that requires mutual TLS; with --tls-key-file")
	f.StringVar(&p.keyFile, "tls-key-file", "", "private key (PEM) of --tls-cert-file")
}

// flagOfField names the flag behind a ClusterAuth field in errors.
var flagOfField = map[string]string{
	"authPlugin":             "--auth-plugin",
	"authParams":             "--auth-params",
	"tlsTrustCertsFilePath":  "--tls-trust-cert-path",
	"tlsCertificateFilePath": "--tls-cert-file",
	"tlsKeyFilePath":         "--tls-key-file",
}

// clusterAuth is the ClusterAuth the flags describe.
func (p *pulsarClientFlags) clusterAuth() (*meshfedv1.ClusterAuth, error) {
	a := &meshfedv1.ClusterAuth{
		AuthPlugin: p.authPlugin, AuthParams: p.authParams,
		TlsTrustCertsFilePath: p.trustCerts, TlsAllowInsecureConnection: p.allowInsecure,
		TlsCertificateFilePath: p.certFile, TlsKeyFilePath: p.keyFile,
	}
	verify := p.verifyHostname
	a.TlsEnableHostnameVerification = &verify
	switch {
	case p.authToken != "" && p.authTokenFile != "":
		return nil, errors.New("give --auth-token or --auth-token-file, not both")
	case (p.authToken != "" || p.authTokenFile != "") && (p.authPlugin != "" || p.authParams != ""):
		return nil, errors.New("--auth-token and --auth-token-file stand for --auth-plugin token --auth-params ...: give one or the other")
	case p.authToken != "":
		a.AuthPlugin, a.AuthParams = objects.AuthToken, "token:"+p.authToken
	case p.authTokenFile != "":
		abs, err := filepath.Abs(p.authTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--auth-token-file: %w", err)
		}
		a.AuthPlugin, a.AuthParams = objects.AuthToken, "file://"+abs
	}
	return a, nil
}

// credentials parses the flags.
func (p *pulsarClientFlags) credentials() (*pulsarauth.Credentials, error) {
	a, err := p.clusterAuth()
	if err != nil {
		return nil, usageError{err}
	}
	parsed, err := objects.ParseClusterAuth(a, objects.AuthOnCommandLine)
	if err != nil {
		var fe objects.FieldErrors
		if errors.As(err, &fe) {
			msgs := make([]string, len(fe))
			for i, e := range fe {
				field, rest, _ := strings.Cut(e.Path, " ")
				name := flagOfField[field]
				if name == "" {
					name = field
				}
				if rest != "" {
					name += " " + rest
				}
				msgs[i] = name + ": " + e.Reason
			}
			return nil, usageError{errors.New(strings.Join(msgs, "\n"))}
		}
		return nil, usageError{err}
	}
	return pulsarauth.New(parsed), nil
}

// clientOptions are the pulsar-client-go options for serviceURL.
func (p *pulsarClientFlags) clientOptions(serviceURL string) (pulsar.ClientOptions, error) {
	creds, err := p.credentials()
	if err != nil {
		return pulsar.ClientOptions{}, err
	}
	if creds.Auth().UsesTLSSettings() && !strings.HasPrefix(serviceURL, "pulsar+ssl://") && (p.trustCerts != "" || p.allowInsecure || p.certFile != "") {
		return pulsar.ClientOptions{}, usageError{fmt.Errorf("--service-url %s is not a pulsar+ssl:// URL: the --tls-* flags would have no effect", serviceURL)}
	}
	// pulsar-client-go only logs why a handshake failed: check what can
	// be checked here, so an unreadable file or an expired token is named.
	if err := creds.Check(time.Now()); err != nil {
		return pulsar.ClientOptions{}, err
	}
	o, err := creds.ClientOptions(serviceURL)
	if err != nil {
		return o, err
	}
	o.Logger = quietPulsarLogger()
	p.creds = creds
	return o, nil
}

// newClient connects a pulsar-client-go client to serviceURL with the
// flags' credentials.
func (p *pulsarClientFlags) newClient(serviceURL string) (pulsar.Client, error) {
	opts, err := p.clientOptions(serviceURL)
	if err != nil {
		return nil, err
	}
	return pulsar.NewClient(opts)
}

// explain adds to a refused operation's error which credential the broker
// refused (pulsar-client-go reports only the server error's name).
func (p *pulsarClientFlags) explain(err error) error {
	kind, ok := pulsarauth.Refused(err)
	if !ok || p.creds == nil {
		return err
	}
	return fmt.Errorf("%w (%s: %s)", err, kind, p.creds.Describe())
}
