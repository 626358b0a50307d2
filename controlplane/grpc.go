package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// forwardedKey marks a request a follower already forwarded, so it is never
// forwarded twice (two nodes that disagree about the leader cannot bounce it).
const forwardedKey = "meshfed-forwarded"

// LeaderHeader is the response header in which a follower that forwarded a
// call names the leader's gRPC address, so clients send the next calls
// there directly (package client reads it).
const LeaderHeader = "meshfed-leader"

// streamWorkers is how many goroutines serve calls (see startGRPC): about
// the writes one group-committed batch answers at once.
const streamWorkers = 256

func (s *Server) startGRPC() {
	s.grpcServer = grpc.NewServer(
		s.serverCreds,
		grpc.ChainUnaryInterceptor(mapUnaryErrors, s.unaryAuth),
		grpc.ChainStreamInterceptor(mapStreamErrors, s.streamAuth),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithMeterProvider(s.telemetry.meterProvider))),
		// Calls run on reused goroutines whose stacks have already grown
		// to what a call needs, instead of a new goroutine per call that
		// grows (copies) its stack several times; gRPC starts a new
		// goroutine when every worker is busy (writes wait for Raft).
		grpc.NumStreamWorkers(streamWorkers),
		// Servers and clients ping every few seconds to detect frozen peers.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
	)
	meshfedv1.RegisterObjectServiceServer(s.grpcServer, &objectEndpoint{srv: s})
	meshfedv1.RegisterOperatorServiceServer(s.grpcServer, &operatorEndpoint{srv: s})
	meshfedv1.RegisterAgentServiceServer(s.grpcServer, &agentEndpoint{srv: s})
	meshfedv1.RegisterPackageServiceServer(s.grpcServer, &packageEndpoint{srv: s})
	meshfedv1.RegisterTokenServiceServer(s.grpcServer, &tokenEndpoint{srv: s})
	meshfedv1.RegisterAuditServiceServer(s.grpcServer, &auditEndpoint{srv: s})
	go func() {
		if err := s.grpcServer.Serve(s.grpcLis); err != nil {
			s.logger.Error("grpc server stopped", "err", err)
		}
	}()
}

// forward sends the call to the leader unless this node is the ready leader.
// It returns done=true when the call was forwarded (resp then holds the
// leader's answer) or could not be.
func (s *Server) forward(ctx context.Context, method string, req, resp proto.Message) (bool, error) {
	for {
		local, addr, err := s.route(ctx)
		if local {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		// Tell the caller where the leader is; a call made by this server
		// itself has no gRPC stream to carry the header, which is fine.
		_ = grpc.SetHeader(ctx, metadata.Pairs(LeaderHeader, addr))
		err = s.forwardWatched(ctx, addr, method, req, resp)
		if errors.Is(err, errLeaderMoved) || status.Code(err) == codes.Unavailable {
			// The call never got an answer from the leader it was sent to,
			// because Raft elected another one (a frozen or partitioned
			// leader keeps its sockets open, so only Raft notices) or the
			// connection broke. A read is safe to route again; a write
			// may or may not have been accepted.
			if readOnlyMethods[method] {
				if ctx.Err() != nil {
					return true, toStatus(ctx.Err())
				}
				s.logger.Debug("forwarded read got no answer; routing again", "method", method, "to", addr, "err", err)
				continue
			}
			if errors.Is(err, errLeaderMoved) || !notAcceptedStatus(err) {
				// A write the connection dropped may have been accepted:
				// never report it as a clean refusal.
				return true, toStatus(fmt.Errorf("%w (forwarded to the leader at %s, which gave no answer: %v)", ErrOutcomeUnknown, addr, err))
			}
		}
		return true, err
	}
}

// errLeaderMoved cancels a forwarded call whose target stopped being the leader.
var errLeaderMoved = errors.New("raft elected a new leader while the request was forwarded")

// forwardWatched forwards a call and cancels it if Raft elects a leader
// other than the one it was sent to.
func (s *Server) forwardWatched(ctx context.Context, addr, method string, req, resp proto.Message) error {
	target := s.memberAt(addr)
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, id := s.raft.LeaderWithID(); id != "" && string(id) != target {
					cancel(errLeaderMoved)
					return
				}
			}
		}
	}()
	err := s.forwardTo(cctx, addr, method, req, resp)
	if err != nil && context.Cause(cctx) == errLeaderMoved && ctx.Err() == nil {
		return errLeaderMoved
	}
	return err
}

// memberAt returns the ID of the member serving gRPC at addr, or "".
func (s *Server) memberAt(addr string) string {
	for _, m := range s.fsm.State().Members() {
		if m.GetGrpcAddress() == addr {
			return m.GetId()
		}
	}
	return ""
}

// readOnlyMethods may be forwarded again after a failure.
var readOnlyMethods = map[string]bool{
	meshfedv1.ObjectService_Get_FullMethodName:     true,
	meshfedv1.ObjectService_List_FullMethodName:    true,
	meshfedv1.AgentService_GetState_FullMethodName: true,
}

// route decides where a leader-only request runs: here (local) or at the
// leader's gRPC address. It waits up to the forward hold time for a leader to
// be known, and holds requests at a new leader until it is ready.
func (s *Server) route(ctx context.Context) (local bool, addr string, err error) {
	deadline := time.Now().Add(s.cfg.ForwardHold)
	for {
		if s.raft.State() == raft.Leader {
			if s.ready.Load() {
				return true, "", nil
			}
		} else if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(forwardedKey)) > 0 {
			return false, "", toStatus(fmt.Errorf("%w (request already forwarded once)", raft.ErrNotLeader))
		} else if _, id := s.raft.LeaderWithID(); id != "" {
			// Only send to a leader we can connect to: a request that never
			// left this node is safe to route again once Raft elects anew.
			if m := s.fsm.State().Member(string(id)); m != nil && m.GetGrpcAddress() != "" && s.connReady(ctx, m.GetGrpcAddress()) {
				return false, m.GetGrpcAddress(), nil
			}
		}
		if time.Now().After(deadline) {
			return false, "", toStatus(ErrNoLeader)
		}
		select {
		case <-ctx.Done():
			return false, "", toStatus(ctx.Err())
		case <-s.shutdownCh:
			return false, "", toStatus(ErrShuttingDown)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) forwardTo(ctx context.Context, addr, method string, req, resp proto.Message) error {
	conn, err := s.conn(addr)
	if err != nil {
		return toStatus(err)
	}
	return conn.Invoke(s.forwardContext(ctx, addr), method, req, resp)
}

// forwardContext carries the caller's metadata on, marked as forwarded.
func (s *Server) forwardContext(ctx context.Context, addr string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	md.Set(forwardedKey, s.cfg.NodeID)
	// Drop transport-level keys the incoming context carries, and the
	// caller's credentials: the leader trusts the principal this server
	// authenticated, carried under this server's certificate.
	for _, k := range []string{":authority", "content-type", "user-agent", "grpc-accept-encoding", "grpc-timeout", authorizationKey, principalKey} {
		delete(md, k)
	}
	if c := callerFrom(ctx); s.cfg.Auth && !c.server {
		md.Set(principalKey, principalMetadata(c))
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("meshfed.forwarded_to", addr))
	return metadata.NewOutgoingContext(ctx, md)
}

// connReady connects to addr if needed and reports whether the connection
// became ready within a short wait.
func (s *Server) connReady(ctx context.Context, addr string) bool {
	conn, err := s.conn(addr)
	if err != nil {
		return false
	}
	conn.Connect()
	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	for {
		st := conn.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		}
		if !conn.WaitForStateChange(ctx, st) {
			return false
		}
	}
}

// raftApply proposes one typed entry and waits for the FSM's answer.
func (s *Server) raftApply(ctx context.Context, t MessageType, body proto.Message) (*applyResponse, error) {
	ctx, span := s.telemetry.tracer.Start(ctx, "raft.apply", trace.WithAttributes(attribute.String("meshfed.entry", t.String())))
	defer span.End()
	buf, err := encodeEntry(t, body)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var (
		answer interface{}
		index  uint64
	)
	if keys := entryKeys(t, body); keys != nil {
		answer, index, err = s.commits.propose(buf, keys)
	} else {
		f := s.raft.Apply(buf, s.cfg.ApplyTimeout)
		if err = f.Error(); err == nil {
			answer, index = f.Response(), f.Index()
		}
	}
	if err != nil {
		span.RecordError(err)
		if err == raft.ErrLeadershipLost || err == raft.ErrRaftShutdown {
			// The entry may already be in the log and commit later.
			return nil, fmt.Errorf("%w (raft: %v)", ErrOutcomeUnknown, err)
		}
		return nil, fmt.Errorf("raft apply: %w", err)
	}
	s.telemetry.applyLatency.Record(ctx, time.Since(start).Seconds())
	span.SetAttributes(attribute.Int64("meshfed.revision", int64(index)))
	resp, _ := answer.(*applyResponse)
	if resp == nil {
		return &applyResponse{}, nil
	}
	return resp, resp.err
}

// consistentRead waits until this leader may serve a linearizable read.
func (s *Server) consistentRead(ctx context.Context) error {
	if err := s.reads.wait(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("linearizable read: %w", err)
		}
		return fmt.Errorf("%w: %w", ErrReadNotServed, err)
	}
	return nil
}
