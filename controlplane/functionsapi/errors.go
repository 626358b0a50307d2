package functionsapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/meshfed/meshfed/internal/httpstatus"
	"google.golang.org/grpc/status"
)

// Errors of this package.
var (
	// ErrUnsupported: a FunctionConfig field has a value meshfed cannot honour.
	ErrUnsupported = errors.New("not supported by meshfed")
	// ErrBadRequest: the request is malformed (a missing or undecodable part).
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound: the function, instance or state key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotImplemented: the endpoint exists in Pulsar but not here.
	ErrNotImplemented = errors.New("not implemented")
)

// httpError is an error with the HTTP status it is answered with.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// badRequest is a 400 naming what is wrong.
func badRequest(format string, a ...any) error {
	return &httpError{code: http.StatusBadRequest, err: fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, a...)...)}
}

// unsupported is a 400 naming a field meshfed cannot honour and why.
func unsupported(field, why string) error {
	return &httpError{code: http.StatusBadRequest, err: fmt.Errorf("%s: %w: %s", field, ErrUnsupported, why)}
}

func notFound(format string, a ...any) error {
	return &httpError{code: http.StatusNotFound, err: fmt.Errorf(format, a...)}
}

// httpStatus is the HTTP status and reason an error is answered with:
// gRPC status codes of the control plane map to their HTTP meaning.
func httpStatus(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.code, he.Error()
	}
	st, ok := status.FromError(err)
	if !ok {
		return http.StatusInternalServerError, err.Error()
	}
	return httpstatus.FromCode(st.Code()), st.Message()
}
