package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func clusterObj(name string) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.Cluster{
		ApiVersion: objects.APIVersion, Kind: "Cluster",
		Metadata: &meshfedv1.ObjectMeta{Name: name, Labels: map[string]string{"region": "eu"}},
		Spec:     &meshfedv1.ClusterSpec{Region: "eu-west-1", ServiceUrl: "pulsar://127.0.0.1:6650", AdminUrl: "http://127.0.0.1:8080"},
	})
}

func tenantObj(name string, admins ...string) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.Tenant{
		ApiVersion: objects.APIVersion, Kind: "Tenant",
		Metadata: &meshfedv1.ObjectMeta{Name: name},
		Spec:     &meshfedv1.TenantSpec{Admins: admins},
	})
}

// identityMesh is a federation of cluster a, tenant t and namespace t/ns
// running mesh m: replicas of the identity function f reading
// persistent://t/ns/in on a and, with out, writing persistent://t/ns/out.
func identityMesh(replicas int32, out bool) []*meshfedv1.Object {
	outTopic := ""
	if out {
		outTopic = "persistent://t/ns/out"
	}
	f := testkit.Builtin("f", "identity", "a", "persistent://t/ns/in", "a", outTopic)
	f.Replicas = replicas
	return append(testkit.Federation("a", "t", "ns"), testkit.Mesh("t", "ns", "m", f))
}

// secureServer starts a server with TLS and --auth and returns its PKI,
// the server once it leads, and the bootstrap token.
func secureServer(t *testing.T) (*TestPKI, *Server, string) {
	t.Helper()
	pki := NewTestPKI(t)
	s := TestServer(t, pki.SecureConfig)
	WaitForLeader(t, s)
	return pki, s, BootstrapToken(t, s)
}

// plainAdminServer starts a server without TLS or --auth holding the
// objects of authzBase, and returns it with its object client and Pulsar's
// admin client over plain HTTP.
func plainAdminServer(t *testing.T) (*Server, meshfedv1.ObjectServiceClient, pulsaradmin.Client) {
	t.Helper()
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	objs, _ := TestClient(t, s.GRPCAddr())
	mustApply(t, objs, decodeAll(t, authzBase)...)
	admin, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: "http://" + s.HTTPAddr(), PulsarAPIVersion: config.V3})
	if err != nil {
		t.Fatal(err)
	}
	return s, objs, admin
}

// httpsClient is an HTTP client that trusts the CA in caFile.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// httpGet GETs url with c, presenting token as a bearer token when it is
// set, and returns the status and the body.
func httpGet(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// followers returns the servers other than leader, in order.
func followers(leader *Server, servers []*Server) []*Server {
	var out []*Server
	for _, s := range servers {
		if s != leader {
			out = append(out, s)
		}
	}
	return out
}

func mustApply(t *testing.T, c meshfedv1.ObjectServiceClient, objs ...*meshfedv1.Object) *meshfedv1.ApplyResponse {
	t.Helper()
	resp, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: objs})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return resp
}
