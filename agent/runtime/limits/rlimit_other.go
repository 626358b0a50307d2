//go:build !linux

package limits

import "errors"

func detectRlimit() (*Enforcer, error) {
	return nil, errors.New("rlimits are applied with prlimit(2), which only Linux has")
}

func setRlimits(int, Limits) error { return nil }
