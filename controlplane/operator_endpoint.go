package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/streams"
	"github.com/meshfed/meshfed/policies"
)

// operatorEndpoint serves OperatorService.
type operatorEndpoint struct {
	meshfedv1.UnimplementedOperatorServiceServer
	srv *Server
}

// snapshotChunk is the size of the chunks a snapshot is streamed in.
const snapshotChunk = 256 << 10

func (e *operatorEndpoint) ListPeers(ctx context.Context, _ *meshfedv1.ListPeersRequest) (*meshfedv1.ListPeersResponse, error) {
	f := e.srv.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, toStatus(err)
	}
	_, leader := e.srv.raft.LeaderWithID()
	st := e.srv.fsm.State()
	resp := &meshfedv1.ListPeersResponse{Index: f.Index()}
	for _, s := range f.Configuration().Servers {
		p := &meshfedv1.Peer{Id: string(s.ID), RaftAddress: string(s.Address), Leader: s.ID == leader, Voter: s.Suffrage == raft.Voter}
		if m := st.Member(string(s.ID)); m != nil {
			p.GrpcAddress = m.GetGrpcAddress()
		}
		resp.Peers = append(resp.Peers, p)
	}
	return resp, nil
}

// AddPeer adds a voter (or updates its address) and records its gRPC
// address. Adding a server that is already a voter at that address only
// refreshes the member record, so joining is idempotent.
func (e *operatorEndpoint) AddPeer(ctx context.Context, req *meshfedv1.AddPeerRequest) (*meshfedv1.AddPeerResponse, error) {
	switch {
	case req.GetId() == "":
		return nil, refuse(ErrInvalidArgument, "id: required")
	case req.GetRaftAddress() == "":
		return nil, refuse(ErrInvalidArgument, "raft_address: required")
	case req.GetGrpcAddress() == "":
		return nil, refuse(ErrInvalidArgument, "grpc_address: required")
	}
	resp := &meshfedv1.AddPeerResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.OperatorService_AddPeer_FullMethodName, req, resp); done {
		return resp, err
	}
	r := e.srv.raft
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, toStatus(err)
	}
	present := false
	for _, s := range f.Configuration().Servers {
		switch {
		case s.ID == raft.ServerID(req.GetId()) && s.Address == raft.ServerAddress(req.GetRaftAddress()):
			present = true
		case s.ID == raft.ServerID(req.GetId()) || s.Address == raft.ServerAddress(req.GetRaftAddress()):
			// Same ID at a new address, or a new ID at an old address:
			// replace the stale entry.
			if err := r.RemoveServer(s.ID, 0, e.srv.cfg.ApplyTimeout).Error(); err != nil {
				return nil, toStatus(fmt.Errorf("remove stale peer %s: %w", s.ID, err))
			}
		}
	}
	if !present {
		if err := r.AddVoter(raft.ServerID(req.GetId()), raft.ServerAddress(req.GetRaftAddress()), 0, e.srv.cfg.ApplyTimeout).Error(); err != nil {
			return nil, toStatus(fmt.Errorf("add voter %s: %w", req.GetId(), err))
		}
		e.srv.logger.Info("added raft voter", "id", req.GetId(), "raft_address", req.GetRaftAddress())
	}
	want := &raftlogv1.Member{Id: req.GetId(), RaftAddress: req.GetRaftAddress(), GrpcAddress: req.GetGrpcAddress(), LogTypes: req.GetLogTypes()}
	if !sameMember(e.srv.fsm.State().Member(req.GetId()), want) {
		want.Audit = e.srv.auditEntry(ctx, meshfedv1.OperatorService_AddPeer_FullMethodName, policies.ActionOperatorWrite, &meshfedv1.AuditTarget{Kind: "Peer", Name: req.GetId()})
		audit := want.Audit
		_, err := e.srv.raftApply(ctx, UpsertMemberType, want)
		e.srv.logWrite(audit, err)
		if err != nil {
			return nil, toStatus(err)
		}
	}
	return resp, nil
}

func (e *operatorEndpoint) RemovePeer(ctx context.Context, req *meshfedv1.RemovePeerRequest) (*meshfedv1.RemovePeerResponse, error) {
	if req.GetId() == "" {
		return nil, refuse(ErrInvalidArgument, "id: required")
	}
	resp := &meshfedv1.RemovePeerResponse{}
	if done, err := e.srv.forward(ctx, meshfedv1.OperatorService_RemovePeer_FullMethodName, req, resp); done {
		return resp, err
	}
	f := e.srv.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, toStatus(err)
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || s.ID == raft.ServerID(req.GetId())
	}
	if !found {
		return nil, refusef(ErrNotFound, "peer %q is not in the raft configuration (see `meshfed operator raft list-peers`)", req.GetId())
	}
	if err := e.srv.raft.RemoveServer(raft.ServerID(req.GetId()), 0, e.srv.cfg.ApplyTimeout).Error(); err != nil {
		return nil, toStatus(fmt.Errorf("remove peer %s: %w", req.GetId(), err))
	}
	audit := e.srv.auditEntry(ctx, meshfedv1.OperatorService_RemovePeer_FullMethodName, policies.ActionOperatorWrite, &meshfedv1.AuditTarget{Kind: "Peer", Name: req.GetId()})
	_, err := e.srv.raftApply(ctx, RemoveMemberType, &raftlogv1.RemoveMember{Id: req.GetId(), Audit: audit})
	e.srv.logWrite(audit, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// SaveSnapshot takes a fresh Raft snapshot on the leader (or reuses the
// newest one when nothing changed since) and streams it, so it holds every
// acknowledged write. A follower relays the leader's stream.
func (e *operatorEndpoint) SaveSnapshot(req *meshfedv1.SaveSnapshotRequest, stream meshfedv1.OperatorService_SaveSnapshotServer) error {
	ctx := stream.Context()
	local, addr, err := e.srv.route(ctx)
	if err != nil {
		return err
	}
	if !local {
		return e.srv.relaySnapshot(ctx, addr, req, stream)
	}
	// A snapshot holds the token signing key: every copy taken is audited.
	audit := e.srv.auditEntry(ctx, meshfedv1.OperatorService_SaveSnapshot_FullMethodName, policies.ActionOperatorWrite, &meshfedv1.AuditTarget{Kind: "Snapshot"})
	err = e.streamSnapshot(stream)
	setAuditResult(audit, err)
	e.srv.auditAsync(audit)
	return err
}

func (e *operatorEndpoint) streamSnapshot(stream meshfedv1.OperatorService_SaveSnapshotServer) error {
	rc, err := e.srv.openSnapshot()
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	buf := make([]byte, snapshotChunk)
	for {
		n, err := io.ReadFull(rc, buf)
		if n > 0 {
			if serr := stream.Send(&meshfedv1.SaveSnapshotResponse{Chunk: buf[:n]}); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return toStatus(fmt.Errorf("read snapshot: %w", err))
		}
	}
}

func (s *Server) relaySnapshot(ctx context.Context, addr string, req *meshfedv1.SaveSnapshotRequest, stream meshfedv1.OperatorService_SaveSnapshotServer) error {
	conn, err := s.conn(addr)
	if err != nil {
		return toStatus(err)
	}
	cs, err := meshfedv1.NewOperatorServiceClient(conn).SaveSnapshot(s.forwardContext(ctx, addr), req)
	if err != nil {
		return err
	}
	return streams.Each(cs, stream.Send)
}

func (s *Server) openSnapshot() (io.ReadCloser, error) {
	f := s.raft.Snapshot()
	err := f.Error()
	if err == nil {
		_, rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("open snapshot: %w", err)
		}
		return rc, nil
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, fmt.Errorf("take snapshot: %w", err)
	}
	metas, err := s.snapStore.List()
	if err != nil || len(metas) == 0 {
		return nil, fmt.Errorf("list snapshots: %v", err)
	}
	_, rc, err := s.snapStore.Open(metas[0].ID)
	if err != nil {
		return nil, fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
	}
	return rc, nil
}

// RestoreSnapshot replaces the whole state with an uploaded snapshot. It
// runs on the leader; a follower buffers the upload and forwards it.
func (e *operatorEndpoint) RestoreSnapshot(stream meshfedv1.OperatorService_RestoreSnapshotServer) error {
	var buf bytes.Buffer
	err := streams.Each(stream, func(msg *meshfedv1.RestoreSnapshotRequest) error {
		buf.Write(msg.GetChunk())
		return nil
	})
	if err != nil {
		return err
	}
	snap, err := readSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return refusef(ErrInvalidArgument, "snapshot: %v", err)
	}
	ctx := stream.Context()
	srv := e.srv
	if !srv.IsLeader() {
		resp, err := srv.forwardRestore(ctx, buf.Bytes())
		if err != nil {
			return err
		}
		return stream.SendAndClose(resp)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: snap.GetRevision(), Size: int64(buf.Len())}
	// Revocations are not rolled back with the state: a token revoked
	// since the snapshot was taken stays revoked.
	var revoked []*meshfedv1.Token
	for _, t := range srv.fsm.State().Tokens() {
		if t.GetRevoked() {
			revoked = append(revoked, t)
		}
	}
	err = srv.raft.Restore(meta, bytes.NewReader(buf.Bytes()), srv.cfg.ApplyTimeout)
	if err == nil {
		err = srv.keepRevoked(ctx, revoked)
	}
	// The restore replaces the state, audit log included: record it after.
	audit := srv.auditEntry(ctx, meshfedv1.OperatorService_RestoreSnapshot_FullMethodName, policies.ActionOperatorWrite, &meshfedv1.AuditTarget{Kind: "Snapshot", Name: fmt.Sprint(snap.GetRevision())})
	setAuditResult(audit, err)
	srv.auditAsync(audit)
	if err != nil {
		return toStatus(fmt.Errorf("restore snapshot: %w", err))
	}
	srv.logger.Info("restored snapshot from operator", "objects", len(snap.GetObjects()), "snapshot_revision", snap.GetRevision())
	return stream.SendAndClose(&meshfedv1.RestoreSnapshotResponse{Revision: srv.fsm.State().Revision()})
}

// keepRevoked revokes again, after a restore, the tokens revoked before it.
func (s *Server) keepRevoked(ctx context.Context, revoked []*meshfedv1.Token) error {
	st := s.fsm.State()
	for _, t := range revoked {
		if now := st.Token(t.GetId()); now == nil || now.GetRevoked() {
			continue
		}
		if _, err := s.raftApply(ctx, RevokeTokenType, &raftlogv1.RevokeToken{Id: t.GetId(), Now: t.GetRevokedAt(), By: t.GetRevokedBy()}); err != nil {
			return fmt.Errorf("keep token %s revoked after the restore: %w", t.GetId(), err)
		}
	}
	return nil
}

func (s *Server) forwardRestore(ctx context.Context, data []byte) (*meshfedv1.RestoreSnapshotResponse, error) {
	local, addr, err := s.route(ctx)
	if err != nil {
		return nil, err
	}
	if local {
		return nil, NotAccepted("leadership changed during the restore upload; retry")
	}
	conn, err := s.conn(addr)
	if err != nil {
		return nil, toStatus(err)
	}
	cs, err := meshfedv1.NewOperatorServiceClient(conn).RestoreSnapshot(s.forwardContext(ctx, addr))
	if err != nil {
		return nil, err
	}
	for off := 0; off < len(data); off += snapshotChunk {
		if err := cs.Send(&meshfedv1.RestoreSnapshotRequest{Chunk: data[off:min(off+snapshotChunk, len(data))]}); err != nil {
			return nil, err
		}
	}
	return cs.CloseAndRecv()
}

// TransferLeadership makes this server, if it leads, hand leadership to
// another voter (Raft's leadership transfer) and waits for the outcome.
// `meshfed server` calls it on SIGUSR1.
func (s *Server) TransferLeadership() error {
	if s.raft.State() != raft.Leader {
		return fmt.Errorf("transfer leadership: %w", raft.ErrNotLeader)
	}
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	return nil
}
