package dev

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	brokerauth "github.com/meshfed/meshfed/broker/auth"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/security"
)

// A secure dev federation (Config.Secure) runs its brokers as Pulsar
// clusters secured with TLS and tokens are run: TLS listeners only
// (pulsar+ssl://localhost, https://localhost), authenticationEnabled with
// the token and tls providers (tokens signed HS256 with one secret key),
// authorizationEnabled with superuser role "admin". Everything is made in
// <data-dir>/secure on the first start and kept:
//
//	ca/meshfed-ca.pem          the CA of the brokers' certificates
//	broker-<c>.pem, -key.pem   broker certificates (localhost, 127.0.0.1)
//	token-secret.key           the brokers' tokenSecretKey
//	admin.token                a token of role admin (superuser)
//	agent-<c>.token            a token of role agent-<c>, which has
//	                           produce, consume and functions on
//	                           public/default in cluster c
//
// Each Cluster object names its agent's token file and the CA; the
// brokers replicate to each other with the admin token.

// SecureDir is the directory, inside the data dir, of a secure dev
// federation's keys, certificates and tokens.
const SecureDir = "secure"

// SecureInfo is where a secure dev federation's material is, in dev.json.
type SecureInfo struct {
	// CA is the PEM file of the CA that signed the brokers' certificates
	// (--tls-trust-cert-path).
	CA string `json:"ca"`
	// AdminToken is the file of a token of role admin, a superuser of
	// every broker (--auth-token-file).
	AdminToken string `json:"adminToken"`
	// AgentTokens are the agents' token files by cluster.
	AgentTokens map[string]string `json:"agentTokens"`
}

// AdminRole is the brokers' superuser role in a secure dev federation.
const AdminRole = "admin"

// AgentRole is the role of cluster c's agent in a secure dev federation.
func AgentRole(cluster string) string { return "agent-" + cluster }

// secureMaterial creates (or finds) the CA, certificates, secret key and
// tokens of a secure dev federation.
func secureMaterial(dataDir string, clusters []string) (*SecureInfo, error) {
	dir, err := filepath.Abs(filepath.Join(dataDir, SecureDir))
	if err != nil {
		return nil, err
	}
	caDir := filepath.Join(dir, "ca")
	info := &SecureInfo{CA: filepath.Join(caDir, security.CACertFile), AdminToken: filepath.Join(dir, "admin.token"), AgentTokens: map[string]string{}}
	if _, err := os.Stat(info.CA); errors.Is(err, os.ErrNotExist) {
		if err := security.CreateCA(caDir, 10*365*24*time.Hour); err != nil {
			return nil, fmt.Errorf("create the dev CA: %w", err)
		}
	}
	secretFile := filepath.Join(dir, "token-secret.key")
	secret, err := os.ReadFile(secretFile)
	if errors.Is(err, os.ErrNotExist) {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	writeToken := func(file, role string) error {
		if _, err := os.Stat(file); err == nil {
			return nil
		}
		tok, err := brokerauth.NewTokenHS256(secret, role, time.Time{})
		if err != nil {
			return err
		}
		return os.WriteFile(file, []byte(tok+"\n"), 0o600)
	}
	if err := writeToken(info.AdminToken, AdminRole); err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	for _, c := range clusters {
		out := filepath.Join(dir, "broker-"+c)
		if _, err := os.Stat(out + ".pem"); errors.Is(err, os.ErrNotExist) {
			if err := security.IssueCert(caDir, out, security.CertRequest{Role: security.RoleServer, Name: "broker-" + c,
				Hosts: []string{"localhost", "127.0.0.1"}, Validity: 10 * 365 * 24 * time.Hour}); err != nil {
				return nil, fmt.Errorf("certificate of the broker of cluster %s: %w", c, err)
			}
		}
		info.AgentTokens[c] = filepath.Join(dir, "agent-"+c+".token")
		if err := writeToken(info.AgentTokens[c], AgentRole(c)); err != nil {
			return nil, fmt.Errorf("token of agent %s: %w", AgentRole(c), err)
		}
	}
	return info, nil
}

// secureBrokerArgs are the broker.conf-named flags of a secure broker.
func secureBrokerArgs(s *SecureInfo, cluster, brokerPort, adminPort string) []string {
	dir := filepath.Dir(s.AdminToken)
	return []string{
		"--bindAddress", "127.0.0.1", "--brokerServicePort=", "--webServicePort=",
		"--brokerServicePortTls", brokerPort, "--webServicePortTls", adminPort,
		"--advertisedAddress", "localhost",
		"--tlsCertificateFilePath", filepath.Join(dir, "broker-"+cluster+".pem"),
		"--tlsKeyFilePath", filepath.Join(dir, "broker-"+cluster+"-key.pem"),
		"--tlsTrustCertsFilePath", s.CA,
		"--authenticationEnabled=true", "--authenticationProviders", "token,tls",
		"--tokenSecretKey", "file://" + filepath.Join(dir, "token-secret.key"),
		"--authorizationEnabled=true", "--superUserRoles", AdminRole,
		"--brokerClientTlsEnabled=true", "--brokerClientTrustCertsFilePath", s.CA,
		"--brokerClientAuthenticationPlugin", "token", "--brokerClientAuthenticationParameters", "file://" + s.AdminToken,
	}
}

// clusterAuth is the spec.auth of cluster c: its agent's token and the CA.
func (s *SecureInfo) clusterAuth(c string) *meshfedv1.ClusterAuth {
	return &meshfedv1.ClusterAuth{AuthPlugin: objects.AuthToken, AuthParams: "file://" + s.AgentTokens[c], TlsTrustCertsFilePath: s.CA}
}

// AdminCredentials are the superuser's credentials.
func (s *SecureInfo) AdminCredentials() (*pulsarauth.Credentials, error) {
	a, err := objects.ParseClusterAuth(&meshfedv1.ClusterAuth{AuthPlugin: objects.AuthToken, AuthParams: "file://" + s.AdminToken, TlsTrustCertsFilePath: s.CA}, objects.AuthInObject)
	if err != nil {
		return nil, err
	}
	return pulsarauth.New(a), nil
}

// adminClient is the pulsaradmin client of a broker: the superuser's on a
// secure federation, anonymous otherwise.
func adminClient(s *SecureInfo, adminURL string) (pulsaradmin.Client, error) {
	if s == nil {
		return pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: adminURL})
	}
	creds, err := s.AdminCredentials()
	if err != nil {
		return nil, err
	}
	return creds.AdminClient(adminURL)
}

// grantAgents creates namespace public/default on every broker if needed
// and grants the role of the cluster's agent produce, consume and
// functions there (agents of other clusters present the cluster's own
// credential, the Cluster object's).
func grantAgents(ctx context.Context, s *SecureInfo, clusters []ClusterInfo) error {
	for _, c := range clusters {
		adm, err := adminClient(s, c.AdminURL)
		if err != nil {
			return err
		}
		if _, err := adm.Tenants().GetWithContext(ctx, "public"); httpCode(err) == http.StatusNotFound {
			err = adm.Tenants().CreateWithContext(ctx, utils.TenantData{Name: "public", AllowedClusters: []string{c.Name}})
			if err != nil && httpCode(err) != http.StatusConflict {
				return fmt.Errorf("create tenant public on cluster %s: %w", c.Name, err)
			}
		}
		if err := adm.Namespaces().CreateNamespaceWithContext(ctx, ReplicatedNamespace); err != nil && httpCode(err) != http.StatusConflict {
			return fmt.Errorf("create namespace %s on cluster %s: %w", ReplicatedNamespace, c.Name, err)
		}
		ns, _ := utils.GetNamespaceName(ReplicatedNamespace)
		if err := adm.Namespaces().GrantNamespacePermissionWithContext(ctx, *ns, AgentRole(c.Name),
			[]utils.AuthAction{"produce", "consume", "functions"}); err != nil {
			return fmt.Errorf("grant %s on %s in cluster %s: %w", AgentRole(c.Name), ReplicatedNamespace, c.Name, err)
		}
	}
	return nil
}
