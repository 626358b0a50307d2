package controlplane

import (
	"errors"

	"github.com/meshfed/meshfed/controlplane/state"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"google.golang.org/grpc/codes"
)

// writeOutcome classifies the error a write ended with by the sentinels of
// the store and of the rules it applies. The FSM uses it to record a
// write's outcome in its audit record, the same on every server; the gRPC
// boundary (toStatus) reuses it. codes.OK: no error; codes.Internal: none
// of them.
func writeOutcome(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, policies.ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, policies.ErrFailedPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, objects.ErrInvalid), errors.Is(err, state.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, state.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, state.ErrConflict):
		return codes.Aborted
	case errors.Is(err, state.ErrFailedPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, state.ErrCompacted):
		return codes.OutOfRange
	}
	return codes.Internal
}

// fillOutcome fills an audit record's outcome from the error an applied
// write ended with.
func fillOutcome(r *meshfedv1.AuditRecord, err error) {
	if err == nil {
		setOutcome(r, codes.OK, "", false)
		return
	}
	setOutcome(r, writeOutcome(err), err.Error(), errors.Is(err, policies.ErrFailedPrecondition))
}

// setOutcome writes code and message into r: "ok", "denied" (refused by a
// role or a policy rule) or "error".
func setOutcome(r *meshfedv1.AuditRecord, code codes.Code, msg string, policyRefusal bool) {
	if code == codes.OK {
		r.Result, r.Code, r.Message = "ok", "", ""
		return
	}
	r.Result = "error"
	if code == codes.PermissionDenied || code == codes.Unauthenticated || policyRefusal {
		r.Result = "denied"
	}
	r.Code = code.String()
	r.Message = msg
	if len(r.Message) > 1024 {
		r.Message = r.Message[:1024] + "…"
	}
}
