package controlplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"

	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/streams"
	"github.com/meshfed/meshfed/policies"
)

// MaxPackageSize bounds an uploaded package: packages travel through the
// Raft log.
const MaxPackageSize = 64 << 20

// packageEndpoint serves PackageService.
type packageEndpoint struct {
	meshfedv1.UnimplementedPackageServiceServer
	srv *Server
}

// Digest returns the content address of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (e *packageEndpoint) PushPackage(stream meshfedv1.PackageService_PushPackageServer) error {
	var buf bytes.Buffer
	name := ""
	err := streams.Each(stream, func(msg *meshfedv1.PushPackageRequest) error {
		if name == "" {
			name = msg.GetName()
		}
		if buf.Len()+len(msg.GetChunk()) > MaxPackageSize {
			return refusef(ErrInvalidArgument, "package exceeds %d MiB", MaxPackageSize>>20)
		}
		buf.Write(msg.GetChunk())
		return nil
	})
	if err != nil {
		return err
	}
	if buf.Len() == 0 {
		return refuse(ErrInvalidArgument, "package is empty")
	}
	data := buf.Bytes()
	digest := Digest(data)
	resp := &meshfedv1.PushPackageResponse{Digest: digest, Size: int64(len(data))}
	ctx := stream.Context()
	local, addr, err := e.srv.route(ctx)
	if err != nil {
		return err
	}
	if !local {
		if err := e.srv.relayPackage(ctx, addr, name, data); err != nil {
			return err
		}
		return stream.SendAndClose(resp)
	}
	if _, err := e.srv.fsm.State().Package(digest); err != nil {
		audit := e.srv.auditEntry(ctx, meshfedv1.PackageService_PushPackage_FullMethodName, policies.ActionPackagePush, &meshfedv1.AuditTarget{Kind: "Package", Name: digest})
		_, err := e.srv.raftApply(ctx, PutPackageType, &raftlogv1.PutPackage{Digest: digest, Data: data, Name: name, Audit: audit})
		e.srv.logWrite(audit, err)
		if err != nil {
			return toStatus(err)
		}
	}
	return stream.SendAndClose(resp)
}

func (s *Server) relayPackage(ctx context.Context, addr, name string, data []byte) error {
	conn, err := s.conn(addr)
	if err != nil {
		return toStatus(err)
	}
	up, err := meshfedv1.NewPackageServiceClient(conn).PushPackage(s.forwardContext(ctx, addr))
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += snapshotChunk {
		msg := &meshfedv1.PushPackageRequest{Chunk: data[off:min(off+snapshotChunk, len(data))]}
		if off == 0 {
			msg.Name = name
		}
		if err := up.Send(msg); err != nil {
			return err
		}
	}
	_, err = up.CloseAndRecv()
	return err
}

// GetPackage serves a package from the local store: content addressing
// makes a stale read safe (a package is either there, whole, or not).
func (e *packageEndpoint) GetPackage(req *meshfedv1.GetPackageRequest, stream meshfedv1.PackageService_GetPackageServer) error {
	p, err := e.srv.fsm.State().Package(req.GetDigest())
	if err != nil {
		return refusef(ErrNotFound, "package %s not found: push it with `meshfed package push FILE`", req.GetDigest())
	}
	data := p.GetData()
	for off := 0; off < len(data); off += snapshotChunk {
		if err := stream.Send(&meshfedv1.GetPackageResponse{Chunk: data[off:min(off+snapshotChunk, len(data))]}); err != nil {
			return err
		}
	}
	return nil
}
