package controlplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors of this package; toStatus maps them (and the store's) to gRPC codes.
var (
	// ErrNoLeader: no leader is known within the forward hold time.
	ErrNoLeader = errors.New("no raft leader; the cluster may be electing one or may have lost its majority")
	// ErrOutcomeUnknown: the write may or may not have been applied (it was
	// handed to Raft and leadership was lost before it committed, or the
	// connection to the leader it was forwarded to broke).
	ErrOutcomeUnknown = errors.New("write outcome unknown: it may or may not have been applied; read the object before retrying")
	// ErrReadNotServed: a linearizable read could not be confirmed (this
	// server lost leadership or is shutting down); nothing changed, so the
	// read may be sent to another server.
	ErrReadNotServed = errors.New("linearizable read not served: this server could not confirm it still leads; retry on another server")
	// ErrShuttingDown: this server is shutting down and took nothing on.
	ErrShuttingDown = errors.New("server is shutting down; send the request to another server")
	// ErrInvalidArgument: a request field is missing or malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnauthenticated: the caller proved no identity the server accepts.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the caller's role or certificate does not allow it.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotFound: a named object, peer or token does not exist.
	ErrNotFound = errors.New("not found")
	// ErrFailedPrecondition: the state does not allow the request yet.
	ErrFailedPrecondition = errors.New("failed precondition")
	// errTokenUnknown: a token's record did not reach this server in time.
	errTokenUnknown = errors.New("not known to the control plane")
)

// toStatus is the one place errors become gRPC status codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if c := writeOutcome(err); c != codes.Internal {
		return status.Error(c, err.Error())
	}
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrFailedPrecondition):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrReadNotServed), errors.Is(err, ErrShuttingDown):
		return NotAccepted(err.Error())
	case errors.Is(err, ErrOutcomeUnknown):
		return status.Error(codes.Unknown, err.Error())
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
		// Raft answers these also for an entry already in the log, which
		// may commit later: never a clean refusal.
		return status.Error(codes.Unknown, fmt.Sprintf("%v: %v", ErrOutcomeUnknown, err))
	case errors.Is(err, ErrNoLeader), errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Raft gives these only for an entry it did not take into the log.
		return NotAccepted(err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// NotAcceptedReason marks an Unavailable answer as a clean refusal: the
// server did not accept the request, so a client may send it elsewhere. An
// Unavailable without it (a connection that broke mid-call) may hide an
// accepted write.
const NotAcceptedReason = "NOT_ACCEPTED"

// NotAccepted is the Unavailable status of a request this server refused
// before accepting it.
func NotAccepted(msg string) error {
	st, err := status.New(codes.Unavailable, msg).WithDetails(&errdetails.ErrorInfo{Reason: NotAcceptedReason, Domain: "meshfed.io"})
	if err != nil {
		return status.Error(codes.Unavailable, msg)
	}
	return st.Err()
}

// notAcceptedStatus reports whether err is a status made by NotAccepted.
func notAcceptedStatus(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == NotAcceptedReason {
			return true
		}
	}
	return false
}

// refusal is an endpoint's refusal of a request: its message as the caller
// sees it, and the sentinel that gives it its code in toStatus.
type refusal struct {
	msg  string
	kind error
}

func (r refusal) Error() string { return r.msg }
func (r refusal) Unwrap() error { return r.kind }

// refuse returns a refusal of kind (ErrInvalidArgument, ...) with msg.
func refuse(kind error, msg string) error { return refusal{msg: msg, kind: kind} }

// refusef is refuse with a formatted message.
func refusef(kind error, format string, a ...any) error {
	return refusal{msg: fmt.Sprintf(format, a...), kind: kind}
}

// mapUnaryErrors makes toStatus the boundary of every unary call: whatever
// a handler (or an interceptor inside this one) returns leaves as a status.
func mapUnaryErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(err)
}

// mapStreamErrors is mapUnaryErrors for streams.
func mapStreamErrors(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return toStatus(handler(srv, ss))
}
