package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Files names a certificate, its key and the CA that verifies peers.
type Files struct {
	Cert, Key, CA string
}

// Enabled reports whether any TLS file is set.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return tls.Certificate{}, nil, errors.New("mutual TLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", f.CA)
	}
	return pair, pool, nil
}

// ServerCredentials requires and verifies a client certificate from every caller.
func (f Files) ServerCredentials() (credentials.TransportCredentials, error) {
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}), nil
}

// ClientCredentials presents the certificate and verifies the server's.
func (f Files) ClientCredentials() (credentials.TransportCredentials, error) {
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}), nil
}

// PeerIdentity returns the identity the caller's verified certificate
// proves. ok is false when the connection is not mutual TLS.
func PeerIdentity(ctx context.Context) (id Identity, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found {
		return Identity{}, false, nil
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return Identity{}, false, nil
	}
	id, err = IdentityOf(info.State.VerifiedChains[0][0])
	return id, true, err
}

// ServerOnlyConfigs are the TLS configurations of a transport only servers
// may speak (Raft): both ends present certificates the CA signed, and both
// must carry a server identity.
func (f Files) ServerOnlyConfigs() (listen, dial *tls.Config, err error) {
	pair, pool, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	onlyServers := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer presented no certificate")
		}
		id, err := IdentityOf(cs.PeerCertificates[0])
		if err != nil {
			return err
		}
		if id.Role != RoleServer {
			return fmt.Errorf("%s certificate %q may not speak Raft: servers only", id.Role, id.Name)
		}
		return nil
	}
	listen = &tls.Config{
		Certificates:     []tls.Certificate{pair},
		ClientCAs:        pool,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		MinVersion:       tls.VersionTLS13,
		VerifyConnection: onlyServers,
	}
	dial = &tls.Config{
		Certificates:     []tls.Certificate{pair},
		RootCAs:          pool,
		MinVersion:       tls.VersionTLS13,
		VerifyConnection: onlyServers,
	}
	return listen, dial, nil
}
