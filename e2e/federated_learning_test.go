//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// The federated-learning acceptance run (docs/federated-learning.md), with
// real processes: one server (mutual TLS, --auth), clusters a and b each
// with its broker and agent. Tenant hospital-a trains on its records in a
// and writes model updates to tenant lab-b's namespace in b — only while
// lab-b grants it. Alice (tenant-admin of hospital-a) and bob
// (tenant-admin of lab-b) act with their own tokens:
//
//   - without the Grant alice's mesh is refused, naming the missing grant,
//     and nothing is stored; alice cannot write the Grant herself;
//   - bob applies the Grant, alice's mesh is admitted, records produced in
//     a arrive as updates in b;
//   - bob deletes the Grant while records keep arriving: the mesh turns
//     Degraded (PolicyViolation) and its writes to b stop within seconds;
//   - the audit log shows bob's Grant apply and delete and alice's refusals.

const (
	flRecords = "persistent://hospital-a/training/records"
	flUpdates = "persistent://lab-b/models/updates"
	// flMissingGrant is how admission and the mesh's Degraded condition
	// name the missing grant.
	flMissingGrant = "no Grant in lab-b/models lets hospital-a/training produce (grant.produce)"
	// flQuiet is how long no update may reach b for its writes to count
	// as stopped.
	flQuiet = 3 * time.Second
	// flStopLimit is "within a few seconds": the most the mesh may take to
	// turn Degraded and to write its last update after the revocation.
	flStopLimit = 5 * time.Second
)

// flSetup is what the superuser applies: both clusters EU-labelled, the
// two tenants and their namespaces. Clusters keep the broker URLs newFed
// gave them (%s).
const flSetup = `apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a, labels: {region: eu}}
spec: {region: eu-west, serviceURL: %q, adminURL: %q}
---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: b, labels: {region: eu}}
spec: {region: eu-central, serviceURL: %q, adminURL: %q}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: hospital-a, labels: {region: eu}}
spec: {admins: [alice], allowedClusters: [a, b]}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: training, tenant: hospital-a}
spec:
  allowedRuntimes: [builtin, wasm]
  flows: [{from: a, to: b}]
  residency: {region: eu}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: lab-b, labels: {region: eu}}
spec: {admins: [bob], allowedClusters: [b]}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: models, tenant: lab-b}
spec:
  residency: {region: eu}
`

// flGrant is bob's Grant: hospital-a/training may produce to lab-b/models.
const flGrant = `apiVersion: meshfed.io/v1
kind: Grant
metadata: {name: hospital-a-updates, tenant: lab-b, namespace: models}
spec:
  grantee: {tenant: hospital-a, namespace: training}
  actions: [produce]
`

// flMesh is alice's training mesh.
const flMesh = `apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: train, tenant: hospital-a, namespace: training}
spec:
  functions:
    - name: train
      runtime: {builtin: identity}
      processingGuarantee: effectively_once
      input:
        cluster: a
        topics: ["persistent://hospital-a/training/records"]
        subscriptionPosition: earliest
      output: {cluster: b, topic: "persistent://lab-b/models/updates"}
`

// updateWatch consumes a topic in the background and remembers what
// arrived and when.
type updateWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	// mu guards the fields below.
	mu sync.Mutex
	// got counts each payload received; ids holds the message IDs seen.
	got map[string]int
	ids map[string]bool
	n   int
	// lastRecv is when the last message arrived here (zero: none yet);
	// lastPublish is the publish time its producer (the agent) gave it.
	lastRecv, lastPublish time.Time
	err                   error
}

// watchUpdates subscribes to topic on cluster from its earliest message.
func (f *fed) watchUpdates(cluster, topic string) *updateWatch {
	f.t.Helper()
	c, err := f.pulsar(cluster).Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "fl-observer",
		Type: pulsar.Exclusive, SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		f.t.Fatalf("subscribe to %s on %s: %v", topic, cluster, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &updateWatch{cancel: cancel, done: make(chan struct{}), got: map[string]int{}, ids: map[string]bool{}}
	go func() {
		defer close(w.done)
		defer c.Close()
		for {
			m, err := c.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
				return
			}
			c.Ack(m)
			w.mu.Lock()
			if id := m.ID().String(); w.ids[id] {
				// Redelivered to this consumer (after a reconnect): not
				// a second message on the topic.
				w.mu.Unlock()
				continue
			} else {
				w.ids[id] = true
			}
			w.got[string(m.Payload())]++
			w.n++
			w.lastRecv, w.lastPublish = time.Now(), m.PublishTime()
			w.mu.Unlock()
		}
	}()
	f.t.Cleanup(w.stop)
	return w
}

func (w *updateWatch) stop() { w.cancel(); <-w.done }

// snapshot returns the count so far, the last arrival and its publish time.
func (w *updateWatch) snapshot() (n int, lastRecv, lastPublish time.Time, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.lastRecv, w.lastPublish, w.err
}

// waitCount waits until at least n updates have arrived.
func (w *updateWatch) waitCount(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, fmt.Sprintf("%d updates on %s", n, flUpdates), func() (bool, string) {
		got, _, _, err := w.snapshot()
		if err != nil {
			t.Fatalf("consume %s: %v", flUpdates, err)
		}
		return got >= n, fmt.Sprintf("%d arrived", got)
	})
}

// as runs the CLI against the federation with a user's token file (the
// flag beats the bootstrap token envFor puts in the environment).
func (f *fed) as(tokenFile string, args ...string) result {
	f.t.Helper()
	return cli(f.t, append([]string{"--server", f.srv(), "--token-file", tokenFile}, args...)...)
}

// mustAs is as, failing the test unless the command exits 0; it returns
// standard output.
func (f *fed) mustAs(tokenFile string, args ...string) string {
	f.t.Helper()
	r := f.as(tokenFile, args...)
	if r.code != 0 {
		f.t.Fatalf("want exit 0, got %s", r)
	}
	return r.stdout
}

// writeYAML writes a file in the test's directory and returns its path.
func (f *fed) writeYAML(name, yaml string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// createToken issues a tenant-admin token of tenant for subject, as the
// superuser, and stores its secret in a 0600 file.
func (f *fed) createToken(subject, tenant string) (file, secret string) {
	f.t.Helper()
	secret = strings.TrimSpace(mustCLI(f.t, f.srv(), "token", "create", "--role", "tenant-admin", "--tenant", tenant, "--subject", subject, "-o", "secret"))
	if !strings.HasPrefix(secret, "mft1.") {
		f.t.Fatalf("token create -o secret printed %q, want a mft1. secret", secret)
	}
	file = filepath.Join(f.dir, subject+".token")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return file, secret
}

// trainMesh reads alice's mesh through the API (as the superuser).
func (f *fed) trainMesh() (*meshfedv1.FunctionMesh, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.api.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: "hospital-a", Namespace: "training", Name: "train"})
	if err != nil {
		return nil, err
	}
	return resp.GetObject().GetFunctionMesh(), nil
}

// auditRecords runs `meshfed audit ARGS -o json` as the superuser.
func (f *fed) auditRecords(args ...string) []*meshfedv1.AuditRecord {
	f.t.Helper()
	out := mustCLI(f.t, f.srv(), append([]string{"audit", "-o", "json"}, args...)...)
	// A JSON list is one array of records.
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		f.t.Fatalf("audit -o json: %v\n%s", err, out)
	}
	recs := make([]*meshfedv1.AuditRecord, len(raw))
	for i, r := range raw {
		recs[i] = &meshfedv1.AuditRecord{}
		if err := protojson.Unmarshal(r, recs[i]); err != nil {
			f.t.Fatalf("audit -o json record %d: %v\n%s", i, err, r)
		}
	}
	return recs
}

// findAudit returns the first record with the method's short name, a
// target of the given kind/tenant/namespace/name and the result.
func findAudit(recs []*meshfedv1.AuditRecord, method, target, result string) *meshfedv1.AuditRecord {
	for _, r := range recs {
		if !strings.HasSuffix(r.GetMethod(), "/"+method) || r.GetResult() != result {
			continue
		}
		for _, tg := range r.GetTargets() {
			if strings.EqualFold(tg.GetKind()+"/"+tg.GetTenant()+"/"+tg.GetNamespace()+"/"+tg.GetName(), target) {
				return r
			}
		}
	}
	return nil
}

func describeAudit(recs []*meshfedv1.AuditRecord) string {
	var b strings.Builder
	for _, r := range recs {
		var ts []string
		for _, tg := range r.GetTargets() {
			ts = append(ts, tg.GetKind()+"/"+tg.GetTenant()+"/"+tg.GetNamespace()+"/"+tg.GetName())
		}
		fmt.Fprintf(&b, "\n  %s %s %v %s %s %q", r.GetPrincipal(), r.GetMethod(), ts, r.GetResult(), r.GetCode(), r.GetMessage())
	}
	return b.String()
}

func TestFederatedLearningGrant(t *testing.T) {
	began := time.Now()
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a", "b"}})
	ba, bb := f.brokers["a"], f.brokers["b"]
	f.apply(fmt.Sprintf(flSetup, ba.serviceURL(), ba.adminURL(), bb.serviceURL(), bb.adminURL()))
	alice, aliceSecret := f.createToken("alice", "hospital-a")
	bob, _ := f.createToken("bob", "lab-b")
	meshFile, grantFile := f.writeYAML("train.yaml", flMesh), f.writeYAML("grant.yaml", flGrant)
	t.Logf("federation, tenants and tokens ready %v after the start", time.Since(began).Round(time.Millisecond))

	// Without the Grant: refused, naming the missing grant; nothing stored.
	r := f.as(alice, "apply", "-f", meshFile)
	if r.code != 1 || !strings.Contains(r.stderr, `spec.functions[0].output.topic "persistent://lab-b/models/updates" is in tenant lab-b: `+flMissingGrant) {
		t.Fatalf("alice applies the mesh without a Grant: want exit 1 naming the missing grant, got %s", r)
	}
	t.Logf("refusal without the Grant (exit %d): %s", r.code, strings.TrimSpace(r.stderr))
	if _, err := f.trainMesh(); status.Code(err) != codes.NotFound {
		t.Fatalf("the refused mesh: want NotFound, got %v", err)
	}

	// Alice cannot grant herself access to lab-b.
	r = f.as(alice, "apply", "-f", grantFile)
	if r.code != 1 || !strings.Contains(r.stderr, `tenant-admin "alice" of hospital-a may not grant.write in lab-b/models`) {
		t.Fatalf("alice applies lab-b's Grant: want exit 1, refused for her scope, got %s", r)
	}
	t.Logf("alice's own Grant (exit %d): %s", r.code, strings.TrimSpace(r.stderr))
	// The API says PermissionDenied, to the CLI and to any client.
	{
		creds, err := clientFiles().ClientCredentials()
		if err != nil {
			t.Fatal(err)
		}
		ac, err := client.New(client.ParseAddrs(f.srv()), grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(security.BearerToken(aliceSecret)))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := objects.Decode("grant.yaml", []byte(flGrant))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = ac.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs})
		cancel()
		ac.Close()
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("alice's Grant through the API: want PermissionDenied, got %v", err)
		}
	}

	// Bob grants; alice's mesh is admitted and runs in a.
	t.Logf("bob: %s", f.mustAs(bob, "apply", "-f", grantFile))
	t.Logf("alice: %s", f.mustAs(alice, "apply", "-f", meshFile))
	updates := f.watchUpdates("b", flUpdates)
	f.waitRunning("train", convergeTimeout, map[string]int{"train": 1}, map[string]string{"train": "a"})

	// Records produced in a arrive as updates in b, each once.
	const batch = 200
	f.produce(flRecords, 0, batch, "a")
	updates.waitCount(t, batch, convergeTimeout)
	// Records keep arriving from here to the end.
	stream := f.startStream(flRecords, batch, 1_000_000, 1, "a")
	updates.waitCount(t, batch+100, convergeTimeout)

	// Bob revokes the Grant.
	revoked := time.Now()
	before, _, _, _ := updates.snapshot()
	out := f.mustAs(bob, "delete", "grant", "hospital-a-updates", "--tenant", "lab-b", "-n", "models")
	deleted := time.Since(revoked)
	t.Logf("bob: %s", out)
	var degradedMsg string
	testkit.Eventually(t, convergeTimeout, "train to be Degraded (PolicyViolation) naming the missing grant", func() (bool, string) {
		m, err := f.trainMesh()
		if err != nil {
			return false, err.Error()
		}
		st, reason, msg := condition(m, federation.ConditionDegraded)
		degradedMsg = msg
		return st == "True" && reason == "PolicyViolation" && strings.Contains(msg, flMissingGrant), st + " " + reason + ": " + msg
	})
	toDegraded := time.Since(revoked)
	t.Logf("Degraded: %s", degradedMsg)

	// Writes to b stop: nothing arrives for flQuiet while records keep
	// being produced in a.
	var sentAtStop int
	testkit.Eventually(t, convergeTimeout, fmt.Sprintf("no update on b for %v", flQuiet), func() (bool, string) {
		n, last, _, err := updates.snapshot()
		if err != nil {
			t.Fatalf("consume %s: %v", flUpdates, err)
		}
		if sentAtStop == 0 && time.Since(last) > 500*time.Millisecond {
			sentAtStop = stream.progress()
		}
		quiet := time.Since(last)
		return quiet >= flQuiet, fmt.Sprintf("%d updates, the last %v ago", n, quiet.Round(time.Millisecond))
	})
	total, _, lastPublish, _ := updates.snapshot()
	sentAfter := stream.progress()
	if sentAfter-sentAtStop < 100 {
		t.Errorf("only %d records produced in a during the quiet window: the stop proves little", sentAfter-sentAtStop)
	}
	toLastWrite := lastPublish.Sub(revoked)
	t.Logf("FIGURES: %d updates had arrived on b when bob revoked the Grant (%d more after it, %d in all); delete grant returned after %v; Degraded %v after the revocation; last update written %v after it; then none for %v while %d more records arrived in a",
		before, total-before, total, deleted.Round(time.Millisecond), toDegraded.Round(time.Millisecond), toLastWrite.Round(time.Millisecond), flQuiet, sentAfter-sentAtStop)
	if toDegraded > flStopLimit {
		t.Errorf("Degraded %v after the revocation, want within %v", toDegraded, flStopLimit)
	}
	if toLastWrite > flStopLimit {
		t.Errorf("last update written %v after the revocation, want within %v", toLastWrite, flStopLimit)
	}
	// The instance is gone, not merely failing: nobody reads hospital-a's
	// records any more (they wait in the subscription) and nobody holds a
	// producer on lab-b's topic.
	sub := "meshfed-hospital-a-training-train-train"
	testkit.Eventually(t, convergeTimeout, "the instance to have left both brokers", func() (bool, string) {
		in, err := ba.stats(flRecords)
		if err != nil {
			return false, err.Error()
		}
		out, err := bb.stats(flUpdates)
		if err != nil {
			return false, err.Error()
		}
		s, ok := in.Subscriptions[sub]
		return ok && len(s.Consumers) == 0 && s.MsgBacklog > 0 && len(out.Publishers) == 0,
			fmt.Sprintf("%s on a: %+v; publishers of %s on b: %+v", sub, s, flUpdates, out.Publishers)
	})
	// The mesh stays defined, its instance unplaced.
	as, err := f.assignments("train")
	if err != nil {
		t.Fatal(err)
	}
	if a := as["train#0"]; a == nil || a.GetSpec().GetAgent() != "" {
		t.Errorf("after the revocation: want train#0 kept and unplaced: %s", describeAssignments(as))
	}
	if r := f.as(alice, "get", "mesh", "train", "--tenant", "hospital-a", "-n", "training"); r.code != 0 {
		t.Errorf("alice reads her Degraded mesh: %s", r)
	} else {
		t.Logf("alice: meshfed get mesh train:\n%s", r.stdout)
	}
	stream.halt()
	stream.wait(time.Second)

	// Bob grants again: the mesh recovers and writes what waited in a,
	// each record once.
	f.mustAs(bob, "apply", "-f", grantFile)
	regranted := time.Now()
	produced := stream.progress()
	updates.waitCount(t, produced, convergeTimeout)
	testkit.Eventually(t, convergeTimeout, "train not Degraded", func() (bool, string) {
		m, err := f.trainMesh()
		if err != nil {
			return false, err.Error()
		}
		st, reason, msg := condition(m, federation.ConditionDegraded)
		return st == "False", st + " " + reason + ": " + msg
	})
	t.Logf("Grant restored: all %d records arrived as updates %v later", produced, time.Since(regranted).Round(time.Millisecond))
	updates.mu.Lock()
	for i := range produced {
		if n := updates.got[sentence(i)]; n != 1 {
			t.Errorf("record %d (%q) arrived %d times as an update, want once", i, sentence(i), n)
			break
		}
	}
	if updates.n != produced {
		t.Errorf("%d updates for %d records", updates.n, produced)
	}
	updates.mu.Unlock()

	// The audit log: bob's Grant apply and delete, alice's refusals.
	grant := "grant/lab-b/models/hospital-a-updates"
	bobRecs := f.auditRecords("--principal", "bob")
	if findAudit(bobRecs, "Apply", grant, "ok") == nil || findAudit(bobRecs, "Delete", grant, "ok") == nil {
		t.Errorf("audit --principal bob: want his Apply and Delete of %s, ok; got:%s", grant, describeAudit(bobRecs))
	}
	t.Logf("meshfed audit --principal bob:\n%s", mustCLI(t, f.srv(), "audit", "--principal", "bob"))
	var aliceRecs []*meshfedv1.AuditRecord
	testkit.Eventually(t, convergeTimeout, "alice's two refusals in the audit log", func() (bool, string) {
		aliceRecs = f.auditRecords("--principal", "alice", "--result", "denied")
		ok := findAudit(aliceRecs, "Apply", "functionmesh/hospital-a/training/train", "denied") != nil &&
			findAudit(aliceRecs, "Apply", grant, "denied") != nil
		return ok, describeAudit(aliceRecs)
	})
	if r := findAudit(aliceRecs, "Apply", "functionmesh/hospital-a/training/train", "denied"); !strings.Contains(r.GetMessage(), flMissingGrant) || r.GetCode() != "PermissionDenied" {
		t.Errorf("audit of alice's refused mesh: code %q, message %q; want PermissionDenied naming the missing grant", r.GetCode(), r.GetMessage())
	}
	if r := findAudit(aliceRecs, "Apply", grant, "denied"); r.GetCode() != "PermissionDenied" {
		t.Errorf("audit of alice's Grant: code %q, want PermissionDenied", r.GetCode())
	}
	for _, r := range aliceRecs {
		if r.GetResult() != "denied" {
			t.Errorf("audit --result denied shows a %q record: %s", r.GetResult(), describeAudit([]*meshfedv1.AuditRecord{r}))
		}
	}
	// Bob, tenant-admin of lab-b, sees who tried to write his namespace's grants.
	if r := f.as(bob, "audit", "--result", "denied"); r.code != 0 || !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, grant) {
		t.Errorf("bob's audit --result denied: want alice's refused %s, got %s", grant, r)
	}
	t.Logf("meshfed audit --principal alice --result denied:\n%s", mustCLI(t, f.srv(), "audit", "--principal", "alice", "--result", "denied"))
	t.Logf("whole run %v", time.Since(began).Round(time.Millisecond))
}
