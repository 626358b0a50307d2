package controlplane

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func benchAuditRecord() *meshfedv1.AuditRecord {
	return &meshfedv1.AuditRecord{Principal: "alice", Role: "tenant-admin", PrincipalTenant: "acme",
		Method: "/meshfed.v1.ObjectService/Apply", Action: "functionmesh.write",
		Targets: []*meshfedv1.AuditTarget{{Kind: "FunctionMesh", Tenant: "acme", Namespace: "x", Name: "wc"}},
		Result:  "ok", Peer: "10.0.0.7:53122"}
}

// BenchmarkLogAudit is the cost of one audit line, which the server
// handling a write pays per write:
//
//	go test ./controlplane -run '^$' -bench LogAudit -benchmem
func BenchmarkLogAudit(b *testing.B) {
	r := benchAuditRecord()
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"json", slog.NewJSONHandler(io.Discard, nil)}, {"text", slog.NewTextHandler(io.Discard, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			logger := slog.New(h.h)
			b.ReportAllocs()
			for b.Loop() {
				logAuditRecord(context.Background(), logger, r)
			}
		})
	}
}

// TestLogAuditLine pins the audit line's fields, which log pipelines parse.
func TestLogAuditLine(t *testing.T) {
	var buf bytes.Buffer
	logAuditRecord(context.Background(), slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})), benchAuditRecord())
	want := `{"level":"INFO","msg":"audit","principal":"alice","role":"tenant-admin","tenant":"acme","method":"/meshfed.v1.ObjectService/Apply","action":"functionmesh.write","targets":["FunctionMesh/acme/x/wc"],"result":"ok","code":"","message":"","peer":"10.0.0.7:53122"}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("audit line\n got %s\nwant %s", got, want)
	}
}
