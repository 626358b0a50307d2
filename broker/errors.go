package broker

import (
	"errors"
	"fmt"

	"github.com/meshfed/meshfed/broker/auth"
	"github.com/meshfed/meshfed/broker/wire"
)

// Sentinel errors. Each maps to one Pulsar ServerError code in serverError
// (the single place where errors become wire codes) and to an HTTP status in
// the admin API.
var (
	ErrTopicNotFound        = errors.New("topic not found")
	ErrNamespaceNotFound    = errors.New("namespace not found")
	ErrTenantNotFound       = errors.New("tenant not found")
	ErrAlreadyExists        = errors.New("already exists")
	ErrInvalidName          = errors.New("invalid name")
	ErrProducerBusy         = errors.New("producer busy")
	ErrConsumerBusy         = errors.New("consumer busy")
	ErrProducerFenced       = errors.New("producer fenced")
	ErrTopicTerminated      = errors.New("topic terminated")
	ErrSubscriptionNotFound = errors.New("subscription not found")
	ErrIncompatibleSchema   = errors.New("incompatible schema")
	ErrNotEmpty             = errors.New("not empty")
	ErrClosed               = errors.New("broker closed")
	ErrNotAllowed           = errors.New("not allowed")
	ErrClusterNotFound      = errors.New("cluster not found")
	// ErrBadRequest is malformed admin input (HTTP 400).
	ErrBadRequest = errors.New("bad request")
	// ErrPrecondition is a valid request the current state refuses, such
	// as an unknown cluster in a tenant's allowed clusters (HTTP 412).
	ErrPrecondition = errors.New("precondition failed")
	// ErrForbidden is a request policy forbids, such as replicating to a
	// cluster the tenant may not use (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrInUse refuses a change that would strand something still using
	// the object (HTTP 409).
	ErrInUse = errors.New("in use")
	// ErrAuthentication is credentials that are missing or refused (HTTP
	// 401, binary AuthenticationError); the providers' own sentinel.
	ErrAuthentication = auth.ErrAuthentication
	// ErrAuthorization is a role without the permission a request needs
	// (HTTP 403, binary AuthorizationError).
	ErrAuthorization = errors.New("not authorized")
)

// errWaitExclusive tells the connection a WaitForExclusive producer was
// queued; it is not an error the client sees.
var errWaitExclusive = errors.New("waiting for exclusive access")

// serverError maps an error to the protocol's ServerError code.
func serverError(err error) wire.ServerError {
	switch {
	case errors.Is(err, ErrTopicNotFound), errors.Is(err, ErrNamespaceNotFound), errors.Is(err, ErrTenantNotFound):
		return wire.ErrTopicNotFound
	case errors.Is(err, ErrInvalidName):
		return wire.ErrInvalidTopicName
	case errors.Is(err, ErrProducerBusy):
		return wire.ErrProducerBusy
	case errors.Is(err, ErrTopicTerminated):
		return wire.ErrTopicTerminated
	case errors.Is(err, ErrProducerFenced):
		return wire.ErrProducerFenced
	case errors.Is(err, ErrConsumerBusy):
		return wire.ErrConsumerBusy
	case errors.Is(err, ErrSubscriptionNotFound):
		return wire.ErrSubscriptionNotFound
	case errors.Is(err, ErrIncompatibleSchema):
		return wire.ErrIncompatibleSchema
	case errors.Is(err, ErrClosed):
		return wire.ErrServiceNotReady
	case errors.Is(err, ErrNotAllowed):
		return wire.ErrNotAllowed
	case errors.Is(err, ErrAuthentication):
		return wire.ErrAuthentication
	case errors.Is(err, ErrAuthorization):
		return wire.ErrAuthorization
	}
	return wire.ErrUnknown
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
