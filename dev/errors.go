package dev

import "errors"

// Sentinel errors of package dev.
var (
	// ErrUnknownCluster: the name is not one of the dev federation's clusters.
	ErrUnknownCluster = errors.New("no such cluster in this dev federation")
	// ErrUnknownPart: a part other than broker or agent was named.
	ErrUnknownPart = errors.New("unknown part: use broker or agent")
	// ErrStopped: the federation is stopping or stopped.
	ErrStopped = errors.New("dev federation stopped")
	// ErrNoFederation: no dev.json in the data dir, or its control API does
	// not answer.
	ErrNoFederation = errors.New("no dev federation")
)
