package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Role is what a certificate is for.
type Role string

// Certificate roles.
const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
	RoleClient Role = "client"
)

// CA file names inside a CA directory.
const (
	CACertFile = "meshfed-ca.pem"
	CAKeyFile  = "meshfed-ca-key.pem"
)

// CreateCA writes a new CA certificate and key into dir, valid for validity.
// It refuses to overwrite an existing CA.
func CreateCA(dir string, validity time.Duration) error {
	if _, err := os.Stat(filepath.Join(dir, CACertFile)); err == nil {
		return fmt.Errorf("%s already holds a CA (%s); refusing to overwrite it", dir, CACertFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "meshfed CA", Organization: []string{"meshfed"}},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writePair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), der, key)
}

// CertRequest describes a certificate to issue.
type CertRequest struct {
	Role Role
	// Name is the server's node ID, the agent's name or the client's name.
	Name string
	// Cluster binds an agent certificate to its cluster. Required for agents.
	Cluster string
	// Hosts are DNS names or IPs the server (or agent) is reached at.
	Hosts    []string
	Validity time.Duration
}

// IssueCert signs a certificate with the CA in caDir and writes
// <out>.pem and <out>-key.pem.
func IssueCert(caDir, out string, req CertRequest) error {
	if req.Name == "" {
		return errors.New("a certificate needs a name")
	}
	if req.Role == RoleAgent && req.Cluster == "" {
		return errors.New("an agent certificate needs the cluster it serves (--cluster)")
	}
	caCert, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	u := &url.URL{Scheme: "meshfed", Host: string(req.Role), Path: "/" + req.Name}
	if req.Role == RoleAgent {
		u.Path = "/" + req.Cluster + "/" + req.Name
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.Name, Organization: []string{"meshfed"}, OrganizationalUnit: []string{string(req.Role)}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(req.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
	if req.Role == RoleServer {
		// Servers also call each other (forwarding), so they are clients too.
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1))
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sign certificate: %w", err)
	}
	return writePair(out+".pem", out+"-key.pem", der, key)
}

// Identity is what a verified peer certificate proves.
type Identity struct {
	Role    Role
	Name    string
	Cluster string // agents only
}

// IdentityOf reads the meshfed identity of a verified certificate.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != "meshfed" {
			continue
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		switch Role(u.Host) {
		case RoleServer, RoleClient:
			if len(parts) == 1 && parts[0] != "" {
				return Identity{Role: Role(u.Host), Name: parts[0]}, nil
			}
		case RoleAgent:
			if len(parts) == 2 && parts[0] != "" && parts[1] != "" {
				return Identity{Role: RoleAgent, Cluster: parts[0], Name: parts[1]}, nil
			}
		}
		return Identity{}, fmt.Errorf("certificate %q has a malformed meshfed identity %q", cert.Subject.CommonName, u.String())
	}
	return Identity{}, fmt.Errorf("certificate %q carries no meshfed identity (issue it with `meshfed tls cert create`)", cert.Subject.CommonName)
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA certificate: %w (create one with `meshfed tls ca create`)", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("%s: CA files are not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA key: %w", err)
	}
	return cert, key, nil
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}
