package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func createToken(t *testing.T, conn *grpc.ClientConn, req *meshfedv1.CreateTokenRequest) *meshfedv1.CreateTokenResponse {
	t.Helper()
	resp, err := meshfedv1.NewTokenServiceClient(conn).CreateToken(context.Background(), req)
	if err != nil {
		t.Fatalf("create token %v: %v", req, err)
	}
	return resp
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), contains) {
		t.Fatalf("err = %v, want %s containing %q", err, code, contains)
	}
}

// TestAuthRefusals: without a certificate, without a token, with an
// expired, revoked, forged or other tenant's token, the caller is refused.
func TestAuthRefusals(t *testing.T) {
	f := newAuthzFixture(t)
	ctx := context.Background()
	addr := f.srv.GRPCAddr()
	cli := f.pki.Files(security.RoleClient, "cli", "")
	get := func(conn *grpc.ClientConn) error {
		_, err := meshfedv1.NewObjectServiceClient(conn).Get(ctx, &meshfedv1.GetRequest{Kind: "FunctionMesh", Tenant: "acme", Namespace: "etl", Name: "m"})
		return err
	}

	// Plaintext: the TLS handshake fails.
	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := get(plain); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext: %v, want Unavailable", err)
	}
	// TLS without a client certificate: the server requires one.
	noCert, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	if err := get(noCert); err == nil || status.Code(err) == codes.OK {
		t.Fatal("a client without a certificate was served")
	}
	// Certificate, no token.
	wantCode(t, get(f.conns["notoken"]), codes.Unauthenticated, "--token")
	// Other tenant's token.
	wantCode(t, get(f.conns["other"]), codes.PermissionDenied, "outside the principal's scope")
	// Expired.
	short := createToken(t, f.su, &meshfedv1.CreateTokenRequest{Subject: "brief", Role: "viewer", Tenant: "acme", Ttl: durationpb.New(time.Second)})
	shortConn := f.pki.Dial(addr, cli, short.GetSecret())
	if err := get(shortConn); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	WaitFor(t, 5*time.Second, func() error {
		if err := get(shortConn); status.Code(err) != codes.Unauthenticated {
			return fmt.Errorf("after its TTL: %v", err)
		}
		return nil
	})
	wantCode(t, get(shortConn), codes.Unauthenticated, "expired")
	// Revoked.
	tok := createToken(t, f.su, &meshfedv1.CreateTokenRequest{Subject: "soon-revoked", Role: "viewer", Tenant: "acme"})
	conn := f.pki.Dial(addr, cli, tok.GetSecret())
	if err := get(conn); err != nil {
		t.Fatal(err)
	}
	if _, err := meshfedv1.NewTokenServiceClient(f.su).RevokeToken(ctx, &meshfedv1.RevokeTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, get(conn), codes.Unauthenticated, "revoked")
	// Forged: a token signed by another key, and one with its role changed.
	_, otherKey, _ := security.NewSigningKey()
	forged, _ := security.SignToken("k", otherKey, &meshfedv1.TokenClaims{Id: "x", Subject: "root", Role: "superuser"})
	wantCode(t, get(f.pki.Dial(addr, cli, forged)), codes.Unauthenticated, "token refused")
	parts := strings.Split(tok.GetSecret(), ".")
	wantCode(t, get(f.pki.Dial(addr, cli, parts[0]+"."+parts[1]+".AAAA")), codes.Unauthenticated, "malformed")
	// A tenant-admin may not issue a superuser token or one for another tenant.
	ta := meshfedv1.NewTokenServiceClient(f.conns["ta"])
	_, err = ta.CreateToken(ctx, &meshfedv1.CreateTokenRequest{Subject: "x", Role: "superuser"})
	wantCode(t, err, codes.PermissionDenied, "token.create")
	_, err = ta.CreateToken(ctx, &meshfedv1.CreateTokenRequest{Subject: "x", Role: "viewer", Tenant: "other"})
	wantCode(t, err, codes.PermissionDenied, "outside the principal's scope")
	// An agent certificate for cluster a cannot register as cluster b's agent.
	f.su.Connect()
	if _, err := meshfedv1.NewObjectServiceClient(f.su).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, `
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: b}
spec: {serviceURL: "pulsar://127.0.0.1:6651"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = meshfedv1.NewAgentServiceClient(f.conns["agent"]).Register(ctx, &meshfedv1.RegisterRequest{Name: "agent-a", Cluster: "b"})
	wantCode(t, err, codes.PermissionDenied, `not "b"`)
}

// TestRevocationEndsOpenWatch: a watch opened with a token ends within a
// second of the token's revocation, with Unauthenticated.
func TestRevocationEndsOpenWatch(t *testing.T) {
	f := newAuthzFixture(t)
	cli := f.pki.Files(security.RoleClient, "cli", "")
	tok := createToken(t, f.su, &meshfedv1.CreateTokenRequest{Subject: "watcher", Role: "viewer", Tenant: "acme", Namespace: "etl"})
	conn := f.pki.Dial(f.srv.GRPCAddr(), cli, tok.GetSecret())
	w, err := meshfedv1.NewObjectServiceClient(conn).Watch(context.Background(), &meshfedv1.WatchRequest{Kind: "FunctionMesh", Tenant: "acme", Namespace: "etl", StartRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatalf("first watch response: %v", err)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	start := time.Now()
	if _, err := meshfedv1.NewTokenServiceClient(f.su).RevokeToken(context.Background(), &meshfedv1.RevokeTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		wantCode(t, err, codes.Unauthenticated, "revoked")
		t.Logf("watch ended %s after the revocation", time.Since(start).Round(time.Millisecond))
		if d := time.Since(start); d > time.Second {
			t.Fatalf("watch ended %s after the revocation, want within 1s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch still open 5s after its token was revoked")
	}
}

// TestAuthThroughFollowers: in a 3-server group, a token created at the
// leader works at a follower at once, a write through a follower is
// authorized and audited with the user's identity, and a revocation
// reaches every server.
func TestAuthThroughFollowers(t *testing.T) {
	pki := NewTestPKI(t)
	servers := TestCluster(t, 3, pki.SecureConfig)
	leader := WaitForLeader(t, servers...)
	follower := followers(leader, servers)[0]
	boot := BootstrapToken(t, servers...)
	cli := pki.Files(security.RoleClient, "cli", "")
	su := pki.Dial(follower.GRPCAddr(), cli, boot)
	ctx := context.Background()
	if _, err := meshfedv1.NewObjectServiceClient(su).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, authzBase)}); err != nil {
		t.Fatalf("apply through a follower: %v", err)
	}
	tok := createToken(t, pki.Dial(leader.GRPCAddr(), cli, boot), &meshfedv1.CreateTokenRequest{Subject: "dan", Role: "namespace-developer", Tenant: "acme", Namespace: "etl"})
	dev := pki.Dial(follower.GRPCAddr(), cli, tok.GetSecret())
	if _, err := meshfedv1.NewObjectServiceClient(dev).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, authzMesh)}); err != nil {
		t.Fatalf("developer apply through a follower right after the token was issued: %v", err)
	}
	_, err := meshfedv1.NewObjectServiceClient(dev).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, strings.ReplaceAll(authzMesh, "namespace: etl", "namespace: other"))})
	wantCode(t, err, codes.PermissionDenied, "outside the principal's scope")
	WaitFor(t, 10*time.Second, func() error {
		resp, err := meshfedv1.NewAuditServiceClient(su).ListAudit(ctx, &meshfedv1.ListAuditRequest{Principal: "dan"})
		if err != nil {
			return err
		}
		var results []string
		for _, r := range resp.GetRecords() {
			results = append(results, r.GetResult()+":"+r.GetNode())
		}
		if len(results) != 2 || !strings.HasPrefix(results[0], "ok:") || !strings.HasPrefix(results[1], "denied:"+follower.NodeID()) {
			return fmt.Errorf("dan's audit records: %v", results)
		}
		return nil
	})
	if _, err := meshfedv1.NewTokenServiceClient(su).RevokeToken(ctx, &meshfedv1.RevokeTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		conn := pki.Dial(s.GRPCAddr(), cli, tok.GetSecret())
		WaitFor(t, 2*time.Second, func() error {
			_, err := meshfedv1.NewObjectServiceClient(conn).List(ctx, &meshfedv1.ListRequest{Kind: "FunctionMesh", Tenant: "acme", Namespace: "etl"})
			if status.Code(err) != codes.Unauthenticated {
				return fmt.Errorf("%s after revocation: %v", s.NodeID(), err)
			}
			return nil
		})
	}
}

// TestAuditRecordsPolicyDenialAtomically: an apply refused by a policy
// inside the Raft apply is recorded with its refusal by the same entry.
func TestAuditRecordsPolicyDenialAtomically(t *testing.T) {
	f := newAuthzFixture(t)
	ctx := context.Background()
	// A namespace quota of one mesh refuses a second one at admission.
	quota := `
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: ns, tenant: other}
spec: {quotas: {meshes: 1}}`
	if _, err := meshfedv1.NewObjectServiceClient(f.su).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, quota)}); err != nil {
		t.Fatalf("apply quota: %v", err)
	}
	mesh := strings.NewReplacer("tenant: acme, namespace: etl", "tenant: other, namespace: ns", "acme/etl", "other/ns").Replace(authzMesh)
	if _, err := meshfedv1.NewObjectServiceClient(f.conns["other"]).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, mesh)}); err != nil {
		t.Fatalf("first mesh: %v", err)
	}
	_, err := meshfedv1.NewObjectServiceClient(f.conns["other"]).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, strings.Replace(mesh, "name: m,", "name: m2,", 1))})
	if c := status.Code(err); c != codes.PermissionDenied && c != codes.FailedPrecondition {
		t.Fatalf("apply over quota: %v", err)
	}
	resp, err := meshfedv1.NewAuditServiceClient(f.su).ListAudit(ctx, &meshfedv1.ListAuditRequest{Principal: "oscar"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetRecords()); n != 2 {
		t.Fatalf("oscar has %d audit records, want 2: %v", n, resp.GetRecords())
	}
	if r := resp.GetRecords()[0]; r.GetResult() != "ok" {
		t.Fatalf("first record = %v", r)
	}
	r := resp.GetRecords()[1]
	if r.GetResult() != "denied" || r.GetAction() != "functionmesh.write" || len(r.GetTargets()) != 1 || r.GetTargets()[0].GetName() != "m2" || r.GetRevision() == 0 {
		t.Fatalf("record = %v", r)
	}
	t.Logf("audit: %s %s %s %s: %s", r.GetPrincipal(), r.GetAction(), r.GetResult(), r.GetCode(), r.GetMessage())
	// A tenant admin reads its tenant's records only.
	own, err := meshfedv1.NewAuditServiceClient(f.conns["other"]).ListAudit(ctx, &meshfedv1.ListAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range own.GetRecords() {
		if !touchesTenant(r, "other") {
			t.Fatalf("tenant-admin of other sees %v", r)
		}
	}
	_, err = meshfedv1.NewAuditServiceClient(f.conns["other"]).ListAudit(ctx, &meshfedv1.ListAuditRequest{Tenant: "acme"})
	wantCode(t, err, codes.PermissionDenied, "audit.read")
}

// TestRestoreKeepsRevocations: restoring a snapshot taken before a token
// was revoked does not bring the token back.
func TestRestoreKeepsRevocations(t *testing.T) {
	f := newAuthzFixture(t)
	ctx := context.Background()
	cli := f.pki.Files(security.RoleClient, "cli", "")
	tok := createToken(t, f.su, &meshfedv1.CreateTokenRequest{Subject: "leaver", Role: "viewer", Tenant: "acme"})
	ops := meshfedv1.NewOperatorServiceClient(f.su)
	save, err := ops.SaveSnapshot(ctx, &meshfedv1.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var snap []byte
	for {
		msg, err := save.Recv()
		if err != nil {
			break
		}
		snap = append(snap, msg.GetChunk()...)
	}
	if _, err := meshfedv1.NewTokenServiceClient(f.su).RevokeToken(ctx, &meshfedv1.RevokeTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	up, err := ops.RestoreSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Send(&meshfedv1.RestoreSnapshotRequest{Chunk: snap}); err != nil {
		t.Fatal(err)
	}
	if _, err := up.CloseAndRecv(); err != nil {
		t.Fatalf("restore: %v", err)
	}
	_, err = meshfedv1.NewObjectServiceClient(f.pki.Dial(f.srv.GRPCAddr(), cli, tok.GetSecret())).List(ctx, &meshfedv1.ListRequest{Kind: "Tenant"})
	wantCode(t, err, codes.Unauthenticated, "revoked")
}

// TestRaftNeedsServerCertificate: with TLS on, the Raft port speaks mutual
// TLS and accepts server certificates only.
func TestRaftNeedsServerCertificate(t *testing.T) {
	pki := NewTestPKI(t)
	srv := TestServer(t, pki.SecureConfig)
	WaitForLeader(t, srv)
	for _, files := range []security.Files{
		pki.Files(security.RoleClient, "cli", ""),
		pki.Files(security.RoleAgent, "agent-a", "a"),
	} {
		pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", srv.RaftAddr(), &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err == nil {
			// TLS 1.3 reports the server's refusal of the client
			// certificate on the first read.
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Write([]byte{0})
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "tls") {
			t.Fatalf("%s reached Raft: %v", files.Cert, err)
		}
	}
	// Plaintext gets nowhere either.
	raw, err := net.DialTimeout("tcp", srv.RaftAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = raw.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Fatal("plaintext Raft connection answered")
	}
}

// TestAuditRetention: the leader trims the audit log to its retention by a
// log entry, so every server keeps the same newest records.
func TestAuditRetention(t *testing.T) {
	old := auditTrimInterval
	auditTrimInterval = 20 * time.Millisecond
	t.Cleanup(func() { auditTrimInterval = old })
	servers := TestCluster(t, 3, func(c *Config) { c.AuditRetention = 10 })
	leader := WaitForLeader(t, servers...)
	objs, _ := TestClient(t, leader.GRPCAddr())
	for i := range 40 {
		doc := fmt.Sprintf("apiVersion: meshfed.io/v1\nkind: Cluster\nmetadata: {name: c%d}\nspec: {serviceURL: \"pulsar://127.0.0.1:6650\"}\n", i)
		if _, err := objs.Apply(context.Background(), &meshfedv1.ApplyRequest{Objects: decodeAll(t, doc)}); err != nil {
			t.Fatal(err)
		}
	}
	WaitFor(t, 10*time.Second, func() error {
		var sets []string
		for _, s := range servers {
			recs := s.State().Audit(func(*meshfedv1.AuditRecord) bool { return true }, 1000)
			if len(recs) > 11 {
				return fmt.Errorf("%s keeps %d records, want at most 11", s.NodeID(), len(recs))
			}
			var names []string
			for _, r := range recs {
				names = append(names, r.GetTargets()[0].GetName())
			}
			sets = append(sets, strings.Join(names, ","))
		}
		if sets[0] != sets[1] || sets[1] != sets[2] {
			return fmt.Errorf("servers keep different records: %v", sets)
		}
		if !strings.HasSuffix(sets[0], ",c39") {
			return fmt.Errorf("the newest record is not kept: %s", sets[0])
		}
		return nil
	})
}

// TestAgentStateScope: an agent reads and commits the state of a function
// only while the function is assigned to it.
func TestAgentStateScope(t *testing.T) {
	pki, srv, boot := secureServer(t)
	su := pki.Dial(srv.GRPCAddr(), pki.Files(security.RoleClient, "cli", ""), boot)
	ctx := context.Background()
	mesh := strings.ReplaceAll(authzMesh, "cluster: idle", "cluster: a")
	if _, err := meshfedv1.NewObjectServiceClient(su).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, authzBase)}); err != nil {
		t.Fatal(err)
	}
	agents := map[string]meshfedv1.AgentServiceClient{}
	for _, name := range []string{"agent-1", "agent-2"} {
		agents[name] = meshfedv1.NewAgentServiceClient(pki.Dial(srv.GRPCAddr(), pki.Files(security.RoleAgent, name, "a"), ""))
		if _, err := agents[name].Register(ctx, &meshfedv1.RegisterRequest{Name: name, Cluster: "a", Capacity: 10}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	if _, err := meshfedv1.NewObjectServiceClient(su).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, mesh)}); err != nil {
		t.Fatal(err)
	}
	var owner string
	WaitFor(t, 10*time.Second, func() error {
		for _, name := range []string{"agent-1", "agent-2"} {
			if _, err := agents[name].Heartbeat(ctx, &meshfedv1.HeartbeatRequest{Name: name, BrokerReachable: true}); err != nil {
				return err
			}
		}
		as, _, err := srv.State().List(state.Filter{Kind: "Assignment", Tenant: "acme", Namespace: "etl"})
		if err != nil || len(as) != 1 || as[0].GetAssignment().GetSpec().GetAgent() == "" {
			return fmt.Errorf("assignments: %v %v", as, err)
		}
		owner = as[0].GetAssignment().GetSpec().GetAgent()
		return nil
	})
	other := "agent-1"
	if owner == other {
		other = "agent-2"
	}
	scope := &meshfedv1.StateScope{Tenant: "acme", Namespace: "etl", Mesh: "m", Function: "f"}
	commit := &meshfedv1.CommitStateRequest{Scope: scope, Ops: []*meshfedv1.StateOp{{Key: "k", Op: &meshfedv1.StateOp_Incr{Incr: 1}}}}
	if _, err := agents[owner].CommitState(ctx, commit); err != nil {
		t.Fatalf("%s commits the state of its function: %v", owner, err)
	}
	if _, err := agents[owner].GetState(ctx, &meshfedv1.GetStateRequest{Scope: scope, Keys: []string{"k"}}); err != nil {
		t.Fatalf("%s reads the state of its function: %v", owner, err)
	}
	_, err := agents[other].CommitState(ctx, commit)
	wantCode(t, err, codes.PermissionDenied, "has no assignment")
	_, err = agents[other].GetState(ctx, &meshfedv1.GetStateRequest{Scope: scope, Keys: []string{"k"}})
	wantCode(t, err, codes.PermissionDenied, "has no assignment")
	if v := srv.State().GetState(scope, []string{"k"}); len(v) != 1 || v[0].GetCounter() != 1 {
		t.Fatalf("state after one allowed and one refused commit: %v", v)
	}
}
