package auth

import "errors"

// Sentinel errors. Every refusal of credentials wraps ErrAuthentication; a
// configuration the providers cannot start with wraps ErrConfig.
var (
	// ErrAuthentication is credentials that do not authenticate: missing,
	// malformed, badly signed, expired or unknown.
	ErrAuthentication = errors.New("authentication failed")
	// ErrConfig is a provider setting that is missing or invalid; the
	// message names the setting.
	ErrConfig = errors.New("invalid authentication configuration")
)
