// Package httpstatus maps the control plane's gRPC status codes to their
// HTTP meaning, for the HTTP APIs and pages served beside the gRPC API
// (the Pulsar Functions REST API, the mesh pages), so that each answers a
// refusal with the same status.
package httpstatus

import (
	"net/http"

	"google.golang.org/grpc/codes"
)

// FromCode returns the HTTP status for a gRPC code: 500 for codes with no
// closer meaning.
func FromCode(c codes.Code) int {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.Unavailable, codes.ResourceExhausted:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded, codes.Canceled:
		return http.StatusGatewayTimeout
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}
