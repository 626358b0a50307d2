package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const flBase = `
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a, labels: {region: eu}}
spec: {serviceURL: "pulsar://127.0.0.1:6650"}
---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: b, labels: {region: eu}}
spec: {serviceURL: "pulsar://127.0.0.1:6651"}
---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: us, labels: {region: us}}
spec: {serviceURL: "pulsar://127.0.0.1:6652"}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: hospital-a}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: training, tenant: hospital-a}
spec: {residency: {region: eu}}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: lab-b}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: models, tenant: lab-b}
`

const flGrant = `
apiVersion: meshfed.io/v1
kind: Grant
metadata: {name: hospital-updates, tenant: lab-b, namespace: models}
spec: {grantee: {tenant: hospital-a, namespace: training}, actions: [produce]}
`

const flMesh = `
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: train, tenant: hospital-a, namespace: training}
spec:
  functions:
    - name: train
      runtime: {builtin: identity}
      input: {cluster: a, topics: ["persistent://hospital-a/training/records"]}
      output: {cluster: b, topic: "persistent://lab-b/models/updates"}
      failover: {clusters: [us]}
`

func decodeAll(t testing.TB, docs ...string) []*meshfedv1.Object {
	t.Helper()
	objs, err := objects.Decode("test.yaml", []byte(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestPolicyGrantsResidencyAndRevocation(t *testing.T) {
	s := TestServer(t, func(c *Config) { c.SchedulerInterval = 50 * time.Millisecond })
	WaitForLeader(t, s)
	c, _ := TestClient(t, s.GRPCAddr())
	mustApply(t, c, decodeAll(t, flBase)...)

	// Without the grant, writing to lab-b is refused, naming the missing grant.
	_, err := c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: decodeAll(t, flMesh)})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "no Grant in lab-b/models lets hospital-a/training produce") {
		t.Fatalf("mesh without grant: %v", err)
	}
	if !strings.Contains(status.Convert(err).Message(), "doc 1:") {
		t.Fatalf("refusal does not name the document: %v", err)
	}
	// Residency: failover to a non-EU cluster is refused at admission.
	mustApply(t, c, decodeAll(t, flGrant)...)
	_, err = c.Apply(testCtx(t), &meshfedv1.ApplyRequest{Objects: decodeAll(t, flMesh)})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "residency") {
		t.Fatalf("mesh with a non-EU failover cluster: %v", err)
	}
	mustApply(t, c, decodeAll(t, strings.Replace(flMesh, "failover: {clusters: [us]}", "failover: {clusters: []}", 1))...)

	// Revoking the grant marks the mesh Degraded (its instances are not
	// placed); the definition stays.
	if _, err := c.Delete(testCtx(t), &meshfedv1.DeleteRequest{Kind: "Grant", Tenant: "lab-b", Namespace: "models", Name: "hospital-updates"}); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() error {
		o, _, err := s.State().Get("FunctionMesh", "hospital-a", "training", "train")
		if err != nil {
			return err
		}
		for _, cd := range o.GetFunctionMesh().GetStatus().GetConditions() {
			if cd.GetType() == "Degraded" && cd.GetStatus() == "True" && cd.GetReason() == "PolicyViolation" &&
				strings.Contains(cd.GetMessage(), "no Grant") {
				return nil
			}
		}
		return fmt.Errorf("mesh status %v", o.GetFunctionMesh().GetStatus().GetConditions())
	})
}

// TestQuotasAtAdmissionAndScaling: a namespace's mesh and replica quotas
// refuse a new mesh and a scale-up past them, while the write that stays
// within them (and re-applying what is stored) passes.
func TestQuotasAtAdmissionAndScaling(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	objs, _ := TestClient(t, s.GRPCAddr())
	ctx := context.Background()
	apply := func(docs ...string) error {
		_, err := objs.Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, docs...)})
		return err
	}
	mesh := func(name string, replicas int) string {
		return fmt.Sprintf(`
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: %s, tenant: hospital-a, namespace: training}
spec:
  functions:
    - name: f
      replicas: %d
      runtime: {builtin: identity}
      input: {cluster: a, topics: ["persistent://hospital-a/training/in"]}
      output: {cluster: a, topic: "persistent://hospital-a/training/out"}
`, name, replicas)
	}
	if err := apply(flBase); err != nil {
		t.Fatal(err)
	}
	if err := apply(`
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: training, tenant: hospital-a}
spec: {quotas: {meshes: 1, replicasPerFunction: 2}}`); err != nil {
		t.Fatal(err)
	}
	if err := apply(mesh("m1", 2)); err != nil {
		t.Fatalf("within quota: %v", err)
	}
	if err := apply(mesh("m1", 2)); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	err := apply(mesh("m2", 1))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "quotas.meshes") {
		t.Fatalf("second mesh: %v, want FailedPrecondition naming quotas.meshes", err)
	}
	err = apply(mesh("m1", 3))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("scale to 3: %v, want FailedPrecondition naming the replica quota", err)
	}
	if err := apply(mesh("m1", 1)); err != nil {
		t.Fatalf("scale down: %v", err)
	}
}
