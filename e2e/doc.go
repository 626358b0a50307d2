//go:build e2e

// Package e2e holds end-to-end tests of the built meshfed binary: real
// server processes on real sockets and disks, driven through the CLI, killed
// with SIGKILL and restarted. They run only with the e2e build tag:
//
//	go test -tags e2e ./e2e/ -count=1
//
// See docs/e2e.md for what they cover.
package e2e
