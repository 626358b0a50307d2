package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"
)

// TLSConfig is Pulsar's tls* settings for the broker's TLS listeners (the
// pulsar+ssl:// listener and the HTTPS admin listener). The zero value of
// each field means the default noted beside it.
type TLSConfig struct {
	// CertFile is the broker's certificate (chain), PEM
	// (tlsCertificateFilePath). Required when a TLS listener is configured.
	CertFile string
	// KeyFile is the certificate's private key, PEM: PKCS#8, PKCS#1 or SEC 1
	// (tlsKeyFilePath). Required with CertFile.
	KeyFile string
	// TrustCertsFile holds the CA certificates, PEM, that client
	// certificates must chain to (tlsTrustCertsFilePath; "" = the system's
	// CA pool).
	TrustCertsFile string
	// RequireTrustedClientCert refuses TLS connections that present no
	// client certificate chaining to TrustCertsFile
	// (tlsRequireTrustedClientCertOnConnect; false = a client certificate is
	// optional).
	RequireTrustedClientCert bool
	// AllowInsecureConnection accepts a client certificate that does not
	// chain to TrustCertsFile instead of failing the handshake; such a
	// certificate is never used for authentication
	// (tlsAllowInsecureConnection; false = an untrusted certificate fails
	// the handshake).
	AllowInsecureConnection bool
	// Protocols are the TLS versions accepted, as Pulsar names them
	// ("TLSv1.2", "TLSv1.3") (tlsProtocols; empty = TLS 1.2 and 1.3).
	Protocols []string
	// Ciphers are the TLS 1.2 cipher suites accepted, by IANA name
	// (tlsCiphers; empty = Go's defaults). TLS 1.3 suites are not
	// configurable.
	Ciphers []string
	// CertRefreshCheck is how often the three files are checked and
	// reloaded when changed (tlsCertRefreshCheckDurationSec; 0 = 300 s,
	// negative = never).
	CertRefreshCheck time.Duration
}

// enabled reports whether any TLS material is configured.
func (c TLSConfig) enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// tlsMaterial holds the certificate and trust pool read from the files of a
// TLSConfig, reloaded when they change.
type tlsMaterial struct {
	cfg      TLSConfig
	versions [2]uint16 // min, max
	ciphers  []uint16  // nil = defaults
	// internal is a client certificate made at start-up and trusted only by
	// this broker, so its own health check passes a listener that requires
	// trusted client certificates. Never changed after newTLSMaterial.
	internal tls.Certificate

	mu      sync.Mutex
	checked time.Time    // last check of the files; guarded by mu
	stamps  [3]time.Time // modification times of cert, key, trust; guarded by mu
	cert    *tls.Certificate
	pool    *x509.CertPool // client CAs plus the internal certificate; guarded by mu
	roots   *x509.CertPool // client CAs only (authentication); guarded by mu
}

var tlsVersions = map[string]uint16{"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}

func newTLSMaterial(cfg TLSConfig) (*tlsMaterial, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("tlsCertificateFilePath and tlsKeyFilePath are both required for a TLS listener")
	}
	if cfg.CertRefreshCheck == 0 {
		cfg.CertRefreshCheck = 300 * time.Second
	}
	m := &tlsMaterial{cfg: cfg, versions: [2]uint16{tls.VersionTLS12, tls.VersionTLS13}}
	if len(cfg.Protocols) > 0 {
		m.versions = [2]uint16{0, 0}
		for _, p := range cfg.Protocols {
			v, ok := tlsVersions[strings.TrimSpace(p)]
			if !ok {
				return nil, fmt.Errorf("tlsProtocols: unsupported protocol %q (want TLSv1.2 or TLSv1.3)", p)
			}
			if m.versions[0] == 0 || v < m.versions[0] {
				m.versions[0] = v
			}
			if v > m.versions[1] {
				m.versions[1] = v
			}
		}
	}
	if len(cfg.Ciphers) > 0 {
		known := map[string]uint16{}
		for _, s := range tls.CipherSuites() {
			known[s.Name] = s.ID
		}
		for _, c := range cfg.Ciphers {
			id, ok := known[strings.TrimSpace(c)]
			if !ok {
				return nil, fmt.Errorf("tlsCiphers: unknown or insecure cipher suite %q (use IANA names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", c)
			}
			m.ciphers = append(m.ciphers, id)
		}
	}
	internal, err := newInternalCert()
	if err != nil {
		return nil, err
	}
	m.internal = internal
	if err := m.reload(time.Now(), true); err != nil {
		return nil, err
	}
	return m, nil
}

// reload reads the files again if force is set, or if the refresh period
// has passed and a file's modification time changed. A failed reload keeps
// the previous material (and is returned).
func (m *tlsMaterial) reload(now time.Time, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !force && (m.cfg.CertRefreshCheck < 0 || now.Sub(m.checked) < m.cfg.CertRefreshCheck) {
		return nil
	}
	m.checked = now
	var stamps [3]time.Time
	for i, p := range []string{m.cfg.CertFile, m.cfg.KeyFile, m.cfg.TrustCertsFile} {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		stamps[i] = st.ModTime()
	}
	if !force && stamps == m.stamps {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(m.cfg.CertFile, m.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tlsCertificateFilePath/tlsKeyFilePath: %w", err)
	}
	var roots *x509.CertPool
	if m.cfg.TrustCertsFile != "" {
		pem, err := os.ReadFile(m.cfg.TrustCertsFile)
		if err != nil {
			return fmt.Errorf("tlsTrustCertsFilePath: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tlsTrustCertsFilePath: %s holds no PEM certificate", m.cfg.TrustCertsFile)
		}
	} else if roots, err = x509.SystemCertPool(); err != nil {
		return fmt.Errorf("tls: system CA pool: %w", err)
	}
	pool := roots.Clone()
	pool.AddCert(m.internal.Leaf)
	m.cert, m.roots, m.pool, m.stamps = &cert, roots, pool, stamps
	return nil
}

// serverConfig is the tls.Config of a listener: every handshake takes the
// current material.
func (m *tlsMaterial) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: m.versions[0],
		MaxVersion: m.versions[1],
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			_ = m.reload(time.Now(), false) // a failed reload keeps serving the old files
			m.mu.Lock()
			defer m.mu.Unlock()
			c := &tls.Config{
				MinVersion:   m.versions[0],
				MaxVersion:   m.versions[1],
				CipherSuites: m.ciphers,
				Certificates: []tls.Certificate{*m.cert},
				ClientCAs:    m.pool,
			}
			switch {
			case m.cfg.RequireTrustedClientCert:
				c.ClientAuth = tls.RequireAndVerifyClientCert
			case m.cfg.AllowInsecureConnection:
				c.ClientAuth = tls.RequestClientCert
			default:
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
			return c, nil
		},
	}
}

// trustedClientCert returns the client's leaf certificate if it chains to
// the trusted CAs (with the client-authentication key usage), else nil.
// Handshakes that did not verify the certificate (AllowInsecureConnection)
// are verified here, so an untrusted certificate never authenticates.
func (m *tlsMaterial) trustedClientCert(st *tls.ConnectionState) *x509.Certificate {
	if st == nil || len(st.PeerCertificates) == 0 {
		return nil
	}
	leaf := st.PeerCertificates[0]
	m.mu.Lock()
	roots := m.roots
	m.mu.Unlock()
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil
	}
	return leaf
}

// internalClientConfig is what the broker's own health check dials its TLS
// listener with: the listener is itself, so its certificate is not
// verified, and the internal certificate satisfies a listener that requires
// client certificates.
func (m *tlsMaterial) internalClientConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{m.internal}, MinVersion: m.versions[0]} //nolint:gosec // dialing itself
}

// newInternalCert makes a self-signed client certificate; it lives only in
// this process's memory.
func newInternalCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: internal key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "meshfed-broker-internal-" + serial.Text(36)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: internal certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
