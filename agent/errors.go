package agent

import "errors"

// Sentinel errors of the agent.
var (
	// ErrReservedStateKey refuses a function's access to a state key under
	// reservedStatePrefix, which meshfed keeps for itself.
	ErrReservedStateKey = errors.New(`keys starting with "` + reservedStatePrefix + `" are reserved for meshfed; use another key`)
	// errLookBackMissed: a look-back's time seek landed after the message
	// it was for, so the producer's earlier entries could not be read.
	errLookBackMissed = errors.New("time seek landed after the message")
	// errNoAdminURL: a cluster has no Pulsar admin URL.
	errNoAdminURL = errors.New("no spec.adminURL: set one so the agent can manage subscriptions and de-duplication there")
	// errStateUnavailable: the control plane could not answer a state call
	// (no leader, no server reachable). The input is not the function's
	// failure: it is processed again, never acknowledged without its
	// outputs and state change.
	errStateUnavailable = errors.New("function state unavailable")
	// errInstanceExited: the consumer loop ended on its own.
	errInstanceExited = errors.New("instance exited unexpectedly")
)
