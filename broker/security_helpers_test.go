package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"golang.org/x/crypto/bcrypt"

	"github.com/meshfed/meshfed/broker/auth"
)

// testPKI is a CA with a server certificate for localhost/127.0.0.1 and
// client certificates, written as PEM files in a temporary directory.
type testPKI struct {
	dir              string
	ca               string // CA certificate file
	serverCert, srvK string
	caCert           *x509.Certificate
	caKey            *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, "ca key", err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meshfed test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, "ca cert", err)
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.ca = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert, p.srvK = p.issue(t, "server", "localhost", x509.ExtKeyUsageServerAuth)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	must(t, "write "+name, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// issue makes a certificate with common name cn signed by the CA and
// returns its certificate and key files.
func (p *testPKI) issue(t *testing.T, file, cn string, usage x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, "key", err)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	must(t, "cert", err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, "key", err)
	return p.write(t, file+"-cert.pem", "CERTIFICATE", der), p.write(t, file+"-key.pem", "PRIVATE KEY", kder)
}

// testSecret is the HS256 key of the secured test brokers.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

func testToken(t *testing.T, role string, expires time.Time) string {
	t.Helper()
	tok, err := auth.NewTokenHS256(testSecret, role, expires)
	must(t, "token", err)
	return tok
}

// secureBroker starts a broker with plaintext, TLS and HTTPS listeners,
// token, tls and basic authentication (user "carol", password
// "carol-pw"), authorization with superuser "admin".
func secureBroker(t *testing.T, pki *testPKI, mod func(*Config)) *Broker {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("carol-pw"), bcrypt.MinCost)
	must(t, "bcrypt", err)
	htpasswd := "data:;base64," + base64.StdEncoding.EncodeToString([]byte("carol:"+string(hash)+"\n"))
	return TestBroker(t, func(c *Config) {
		c.TLSListenAddr, c.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
		c.TLS = TLSConfig{CertFile: pki.serverCert, KeyFile: pki.srvK, TrustCertsFile: pki.ca}
		c.Auth = AuthConfig{Enabled: true, Providers: auth.Config{Providers: []string{"token", "tls",
			"org.apache.pulsar.broker.authentication.AuthenticationProviderBasic"},
			TokenSecretKey: "data:;base64," + base64.StdEncoding.EncodeToString(testSecret), BasicAuthConf: htpasswd}}
		c.Authorization = AuthorizationConfig{Enabled: true, SuperUserRoles: []string{"admin"}}
		if mod != nil {
			mod(c)
		}
	})
}

// secureClient connects to url with the test CA trusted.
func secureClient(t *testing.T, url string, pki *testPKI, a pulsar.Authentication) pulsar.Client {
	t.Helper()
	return secureClientTimeout(t, url, pki, a, 5*time.Second)
}

// secureClientTimeout is secureClient with an operation timeout (how long
// a refused connection is retried).
func secureClientTimeout(t *testing.T, url string, pki *testPKI, a pulsar.Authentication, timeout time.Duration) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, TLSTrustCertsFilePath: pki.ca, TLSValidateHostname: true,
		Authentication: a, OperationTimeout: timeout, ConnectionTimeout: 5 * time.Second,
		Logger: plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	must(t, "client", err)
	t.Cleanup(c.Close)
	return c
}

// secureAdmin is a pulsaradmin client of the HTTPS admin API with token.
func secureAdmin(t *testing.T, b *Broker, pki *testPKI, token string) pulsaradmin.Client {
	t.Helper()
	a, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: b.AdminURLTLS(), TLSTrustCertsFilePath: pki.ca,
		Token: token})
	must(t, "admin client", err)
	return a
}
