package httpstatus

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestFromCode(t *testing.T) {
	for c, want := range map[codes.Code]int{
		codes.InvalidArgument:    http.StatusBadRequest,
		codes.FailedPrecondition: http.StatusBadRequest,
		codes.Unauthenticated:    http.StatusUnauthorized,
		codes.PermissionDenied:   http.StatusForbidden,
		codes.NotFound:           http.StatusNotFound,
		codes.Aborted:            http.StatusConflict,
		codes.Unavailable:        http.StatusServiceUnavailable,
		codes.DeadlineExceeded:   http.StatusGatewayTimeout,
		codes.Unimplemented:      http.StatusNotImplemented,
		codes.Internal:           http.StatusInternalServerError,
		codes.Unknown:            http.StatusInternalServerError,
	} {
		if got := FromCode(c); got != want {
			t.Errorf("FromCode(%v) = %d, want %d", c, got, want)
		}
	}
}
