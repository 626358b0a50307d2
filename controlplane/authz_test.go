package controlplane

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

const authzBase = `
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a}
spec: {serviceURL: "pulsar://127.0.0.1:6650"}
---
apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: idle}
spec: {serviceURL: "pulsar://127.0.0.1:6659"}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: acme}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: etl, tenant: acme}
---
apiVersion: meshfed.io/v1
kind: Tenant
metadata: {name: other}
---
apiVersion: meshfed.io/v1
kind: Namespace
metadata: {name: ns, tenant: other}
`

const authzMesh = `
apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: m, tenant: acme, namespace: etl}
spec:
  functions:
    - name: f
      runtime: {builtin: identity}
      input: {cluster: idle, topics: ["persistent://acme/etl/in"]}
      output: {cluster: idle, topic: "persistent://acme/etl/out"}
`

// The mesh runs in cluster idle, which no agent serves, so the scheduler
// never writes assignments while the matrix compares states.

// authzFixture is a server with TLS and authentication, the objects above,
// and one connection per principal of the matrix.
type authzFixture struct {
	t     *testing.T
	srv   *Server
	pki   *TestPKI
	su    *grpc.ClientConn
	conns map[string]*grpc.ClientConn
	// pkg is the digest of a pushed package.
	pkg string
	// victims are ids of tokens to revoke, one per principal.
	victims []string
}

// The principals of the matrix, in the order of the expectation strings.
var matrixKeys = []string{"su", "ta", "dev", "vns", "vg", "other", "agent", "notoken"}

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	pki, srv, boot := secureServer(t)
	cli := pki.Files(security.RoleClient, "cli", "")
	f := &authzFixture{t: t, srv: srv, pki: pki, su: pki.Dial(srv.GRPCAddr(), cli, boot), conns: map[string]*grpc.ClientConn{}}
	ctx := context.Background()
	objs := meshfedv1.NewObjectServiceClient(f.su)
	if _, err := objs.Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(t, authzBase, authzMesh)}); err != nil {
		t.Fatalf("superuser apply: %v", err)
	}
	tokens := map[string]*meshfedv1.CreateTokenRequest{
		"ta":    {Subject: "alice", Role: "tenant-admin", Tenant: "acme"},
		"dev":   {Subject: "dan", Role: "namespace-developer", Tenant: "acme", Namespace: "etl"},
		"vns":   {Subject: "vic", Role: "viewer", Tenant: "acme", Namespace: "etl"},
		"vg":    {Subject: "auditor", Role: "viewer"},
		"other": {Subject: "oscar", Role: "tenant-admin", Tenant: "other"},
	}
	f.conns["su"] = f.su
	for key, req := range tokens {
		resp, err := meshfedv1.NewTokenServiceClient(f.su).CreateToken(ctx, req)
		if err != nil {
			t.Fatalf("create %s token: %v", key, err)
		}
		f.conns[key] = pki.Dial(srv.GRPCAddr(), cli, resp.GetSecret())
	}
	f.conns["agent"] = pki.Dial(srv.GRPCAddr(), pki.Files(security.RoleAgent, "agent-a", "a"), "")
	f.conns["notoken"] = pki.Dial(srv.GRPCAddr(), cli, "")
	up, err := meshfedv1.NewPackageServiceClient(f.su).PushPackage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Send(&meshfedv1.PushPackageRequest{Name: "p", Chunk: []byte("package")}); err != nil {
		t.Fatal(err)
	}
	pr, err := up.CloseAndRecv()
	if err != nil {
		t.Fatalf("push package: %v", err)
	}
	f.pkg = pr.GetDigest()
	// The server records its own member entry (with the log types it
	// applies) after it becomes leader; wait for it, or it could land
	// between a refused call and the check that nothing changed.
	WaitFor(t, 10*time.Second, func() error {
		if m := srv.State().Member(srv.NodeID()); !sameMember(m, srv.selfMember()) {
			return fmt.Errorf("member record %v, want %v", m, srv.selfMember())
		}
		return nil
	})
	for range matrixKeys {
		victim, err := meshfedv1.NewTokenServiceClient(f.su).CreateToken(ctx, &meshfedv1.CreateTokenRequest{Subject: "victim", Role: "viewer", Tenant: "acme", Namespace: "etl"})
		if err != nil {
			t.Fatalf("create a token to revoke: %v", err)
		}
		f.victims = append(f.victims, victim.GetToken().GetId())
	}
	return f
}

// digest is the state without the audit log, revision, events and the
// status the control plane itself keeps updating: what a refused call must
// not change.
func (f *authzFixture) digest() []byte {
	p, err := f.srv.State().Snapshot().Proto()
	if err != nil {
		f.t.Fatal(err)
	}
	p.Audit, p.Revision, p.Events, p.CompactRevision = nil, 0, nil, 0
	for i, o := range p.Objects {
		o = proto.Clone(o).(*meshfedv1.Object)
		m := objects.Unwrap(o).ProtoReflect()
		if fd := m.Descriptor().Fields().ByName("status"); fd != nil {
			m.Clear(fd)
		}
		objects.Meta(o).ResourceVersion = 0
		p.Objects[i] = o
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// rpcCase calls one RPC as a principal. ok lists codes that count as
// "allowed" besides success (the call passed authorization and failed on
// its own terms, e.g. NotFound).
type rpcCase struct {
	method string
	// want: one character per matrixKeys entry, y allowed, . refused.
	want string
	ok   []codes.Code
	call func(ctx context.Context, f *authzFixture, conn *grpc.ClientConn) error
}

func matrixCases() []rpcCase {
	meshRef := func() (string, string, string, string) { return "FunctionMesh", "acme", "etl", "m" }
	scope := &meshfedv1.StateScope{Tenant: "acme", Namespace: "etl", Mesh: "m", Function: "f"}
	return []rpcCase{
		{meshfedv1.ObjectService_Apply_FullMethodName, "yyy.....", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewObjectServiceClient(c).Apply(ctx, &meshfedv1.ApplyRequest{Objects: decodeAll(f.t, authzMesh)})
			return err
		}},
		{meshfedv1.ObjectService_Get_FullMethodName, "yyyyy...", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			k, t, n, name := meshRef()
			_, err := meshfedv1.NewObjectServiceClient(c).Get(ctx, &meshfedv1.GetRequest{Kind: k, Tenant: t, Namespace: n, Name: name})
			return err
		}},
		{meshfedv1.ObjectService_List_FullMethodName, "yyyyy...", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewObjectServiceClient(c).List(ctx, &meshfedv1.ListRequest{Kind: "FunctionMesh", Tenant: "acme", Namespace: "etl"})
			return err
		}},
		{meshfedv1.ObjectService_Delete_FullMethodName, "yyy.....", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			k, t, n, name := meshRef()
			_, err := meshfedv1.NewObjectServiceClient(c).Delete(ctx, &meshfedv1.DeleteRequest{Kind: k, Tenant: t, Namespace: n, Name: name, DryRun: true})
			return err
		}},
		{meshfedv1.ObjectService_Watch_FullMethodName, "yyyyy...", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			w, err := meshfedv1.NewObjectServiceClient(c).Watch(ctx, &meshfedv1.WatchRequest{Kind: "FunctionMesh", Tenant: "acme", Namespace: "etl", StartRevision: 1})
			if err != nil {
				return err
			}
			resp, err := w.Recv()
			if err == nil && len(resp.GetEvents()) == 0 {
				return fmt.Errorf("watch from revision 1 sent no events")
			}
			return err
		}},
		{meshfedv1.OperatorService_ListPeers_FullMethodName, "y...y...", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewOperatorServiceClient(c).ListPeers(ctx, &meshfedv1.ListPeersRequest{})
			return err
		}},
		{meshfedv1.OperatorService_AddPeer_FullMethodName, "y.......", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			// Re-adding the server itself, as its own join does (with the
			// log types it applies), changes nothing.
			self := f.srv.selfMember()
			_, err := meshfedv1.NewOperatorServiceClient(c).AddPeer(ctx, &meshfedv1.AddPeerRequest{Id: self.GetId(), RaftAddress: self.GetRaftAddress(), GrpcAddress: self.GetGrpcAddress(), LogTypes: self.GetLogTypes()})
			return err
		}},
		{meshfedv1.OperatorService_RemovePeer_FullMethodName, "y.......", []codes.Code{codes.NotFound}, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewOperatorServiceClient(c).RemovePeer(ctx, &meshfedv1.RemovePeerRequest{Id: "no-such-peer"})
			return err
		}},
		{meshfedv1.OperatorService_SaveSnapshot_FullMethodName, "y.......", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			s, err := meshfedv1.NewOperatorServiceClient(c).SaveSnapshot(ctx, &meshfedv1.SaveSnapshotRequest{})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
			}
		}},
		{meshfedv1.OperatorService_RestoreSnapshot_FullMethodName, "y.......", []codes.Code{codes.InvalidArgument}, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			// A malformed snapshot: allowed callers get InvalidArgument,
			// refused ones are stopped before the upload is read.
			s, err := meshfedv1.NewOperatorServiceClient(c).RestoreSnapshot(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(&meshfedv1.RestoreSnapshotRequest{Chunk: []byte("not a snapshot")})
			_, err = s.CloseAndRecv()
			return err
		}},
		{meshfedv1.AgentService_Register_FullMethodName, "......y.", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(c).Register(ctx, &meshfedv1.RegisterRequest{Name: "agent-a", Cluster: "a"})
			return err
		}},
		{meshfedv1.AgentService_Heartbeat_FullMethodName, "......y.", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(c).Heartbeat(ctx, &meshfedv1.HeartbeatRequest{Name: "agent-a", BrokerReachable: true})
			return err
		}},
		{meshfedv1.AgentService_ReportStatus_FullMethodName, "......y.", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(c).ReportStatus(ctx, &meshfedv1.ReportStatusRequest{Agent: "agent-a"})
			return err
		}},
		// State: users as for reading or writing the mesh (the Functions
		// REST API's state calls reach the leader so); the agent passes the
		// role check but has no assignment of the function, so its state is
		// refused (TestAgentStateScope has the allowed case).
		{meshfedv1.AgentService_GetState_FullMethodName, "yyyyy...", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(c).GetState(ctx, &meshfedv1.GetStateRequest{Scope: scope, Keys: []string{"k"}})
			return err
		}},
		{meshfedv1.AgentService_CommitState_FullMethodName, "yyy.....", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAgentServiceClient(c).CommitState(ctx, &meshfedv1.CommitStateRequest{Scope: scope,
				Ops: []*meshfedv1.StateOp{{Key: "k", Op: &meshfedv1.StateOp_Incr{Incr: 1}}}})
			return err
		}},
		{meshfedv1.PackageService_PushPackage_FullMethodName, "yyy..y..", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			up, err := meshfedv1.NewPackageServiceClient(c).PushPackage(ctx)
			if err != nil {
				return err
			}
			_ = up.Send(&meshfedv1.PushPackageRequest{Name: "p", Chunk: []byte("package")})
			_, err = up.CloseAndRecv()
			return err
		}},
		{meshfedv1.PackageService_GetPackage_FullMethodName, "yyyyyyy.", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			s, err := meshfedv1.NewPackageServiceClient(c).GetPackage(ctx, &meshfedv1.GetPackageRequest{Digest: f.pkg})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
			}
		}},
		{meshfedv1.TokenService_CreateToken_FullMethodName, "yy......", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewTokenServiceClient(c).CreateToken(ctx, &meshfedv1.CreateTokenRequest{Subject: "new", Role: "viewer", Tenant: "acme", Namespace: "etl", Ttl: durationpb.New(time.Hour)})
			return err
		}},
		{meshfedv1.TokenService_RevokeToken_FullMethodName, "yy......", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			victim := f.victims[0]
			f.victims = f.victims[1:]
			_, err := meshfedv1.NewTokenServiceClient(c).RevokeToken(ctx, &meshfedv1.RevokeTokenRequest{Id: victim})
			return err
		}},
		{meshfedv1.TokenService_ListTokens_FullMethodName, "yy......", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewTokenServiceClient(c).ListTokens(ctx, &meshfedv1.ListTokensRequest{Tenant: "acme"})
			return err
		}},
		{meshfedv1.AuditService_ListAudit_FullMethodName, "yy..y...", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAuditServiceClient(c).ListAudit(ctx, &meshfedv1.ListAuditRequest{Tenant: "acme"})
			return err
		}},
		{meshfedv1.AuditService_AppendAudit_FullMethodName, "........", nil, func(ctx context.Context, f *authzFixture, c *grpc.ClientConn) error {
			_, err := meshfedv1.NewAuditServiceClient(c).AppendAudit(ctx, &meshfedv1.AppendAuditRequest{Records: []*meshfedv1.AuditRecord{{Principal: "forged"}}})
			return err
		}},
	}
}

// TestAuthzMatrix calls every RPC as every kind of principal: allowed calls
// succeed, refused ones get PermissionDenied (Unauthenticated without a
// token) and leave the state as it was.
func TestAuthzMatrix(t *testing.T) {
	f := newAuthzFixture(t)
	cases := matrixCases()
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.method] = true
	}
	for _, svc := range []grpc.ServiceDesc{meshfedv1.ObjectService_ServiceDesc, meshfedv1.OperatorService_ServiceDesc,
		meshfedv1.AgentService_ServiceDesc, meshfedv1.PackageService_ServiceDesc, meshfedv1.TokenService_ServiceDesc, meshfedv1.AuditService_ServiceDesc} {
		for _, m := range svc.Methods {
			if name := "/" + svc.ServiceName + "/" + m.MethodName; !covered[name] {
				t.Errorf("RPC %s is not in the matrix", name)
			}
		}
		for _, m := range svc.Streams {
			if name := "/" + svc.ServiceName + "/" + m.StreamName; !covered[name] {
				t.Errorf("RPC %s is not in the matrix", name)
			}
		}
	}
	for m := range methodRules {
		if !covered[m] {
			t.Errorf("rule for %s has no matrix row", m)
		}
	}
	denials := 0
	for _, c := range cases {
		if len(c.want) < len(matrixKeys) {
			c.want += strings.Repeat(".", len(matrixKeys)-len(c.want))
		}
		got := ""
		for i, key := range matrixKeys {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			before := f.digest()
			err := c.call(ctx, f, f.conns[key])
			cancel()
			code := status.Code(err)
			allowed := err == nil
			for _, ok := range c.ok {
				allowed = allowed || code == ok
			}
			switch {
			case allowed:
				got += "y"
			case code == codes.PermissionDenied || code == codes.Unauthenticated:
				got += "."
				denials++
				if key == "notoken" && code != codes.Unauthenticated {
					t.Errorf("%s without a token: %v, want Unauthenticated", c.method, err)
				}
				if after := f.digest(); string(after) != string(before) {
					t.Errorf("%s refused for %s but the state changed", c.method, key)
				}
			default:
				got += "?"
				t.Errorf("%s as %s: unexpected %v", c.method, key, err)
			}
			if c.want[i] == 'y' && !allowed {
				t.Errorf("%s as %s refused: %v", c.method, key, err)
			}
		}
		if got != c.want {
			t.Errorf("%s: got %s, want %s (%s)", c.method, got, c.want, strings.Join(matrixKeys, " "))
		}
	}
	t.Logf("%d RPCs × %d principals, %d refusals", len(cases), len(matrixKeys), denials)
	// Every refusal reaches the audit log.
	WaitFor(t, 10*time.Second, func() error {
		resp, err := meshfedv1.NewAuditServiceClient(f.su).ListAudit(context.Background(), &meshfedv1.ListAuditRequest{Result: "denied", Limit: 100000})
		if err != nil {
			return err
		}
		if n := len(resp.GetRecords()); n < denials {
			return fmt.Errorf("%d denied records, want %d", n, denials)
		}
		return nil
	})
}
