package controlplane

import (
	"context"
	"fmt"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/security"
	"google.golang.org/grpc"
)

// BenchmarkAuthOverhead measures what authentication and authorization add
// to a write and a read through the gRPC API: the same single-server setup
// with mutual TLS alone (the baseline) and with --auth, a tenant-admin token
// on every call. Run: go test -run '^$' -bench AuthOverhead -benchtime 2000x -count 3 ./controlplane/
func BenchmarkAuthOverhead(b *testing.B) {
	for _, auth := range []bool{false, true} {
		name := "tls"
		if auth {
			name = "tls+auth"
		}
		pki := NewTestPKI(b)
		srv := TestServer(b, func(c *Config) {
			c.TLS = pki.Files(security.RoleServer, c.NodeID, "")
			c.Auth = auth
			c.Logger = testLogger()
		})
		WaitForLeader(b, srv)
		cli := pki.Files(security.RoleClient, "cli", "")
		var conn *grpc.ClientConn
		if auth {
			su := pki.Dial(srv.GRPCAddr(), cli, BootstrapToken(b, srv))
			if _, err := meshfedv1.NewObjectServiceClient(su).Apply(context.Background(), &meshfedv1.ApplyRequest{Objects: decodeAll(b, authzBase)}); err != nil {
				b.Fatal(err)
			}
			tok, err := meshfedv1.NewTokenServiceClient(su).CreateToken(context.Background(), &meshfedv1.CreateTokenRequest{Subject: "alice", Role: "tenant-admin", Tenant: "acme"})
			if err != nil {
				b.Fatal(err)
			}
			conn = pki.Dial(srv.GRPCAddr(), cli, tok.GetSecret())
		} else {
			conn = pki.Dial(srv.GRPCAddr(), cli, "")
			if _, err := meshfedv1.NewObjectServiceClient(conn).Apply(context.Background(), &meshfedv1.ApplyRequest{Objects: decodeAll(b, authzBase)}); err != nil {
				b.Fatal(err)
			}
		}
		objs := meshfedv1.NewObjectServiceClient(conn)
		b.Run(name+"/apply", func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				mesh := decodeAll(b, authzMesh)
				mesh[0].GetFunctionMesh().GetMetadata().Labels = map[string]string{"n": fmt.Sprint(i)}
				if _, err := objs.Apply(context.Background(), &meshfedv1.ApplyRequest{Objects: mesh}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/get", func(b *testing.B) {
			for b.Loop() {
				if _, err := objs.Get(context.Background(), &meshfedv1.GetRequest{Kind: "FunctionMesh", Tenant: "acme", Namespace: "etl", Name: "m"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
