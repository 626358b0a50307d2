#!/bin/sh
# Reproduce the control-plane benchmark of docs/benchmarks/controlplane.md:
# installs etcd (Debian package etcd-server) when it is missing, builds
# meshfed and runs `meshfed bench apply` against a 3-node meshfed cluster and
# a 3-member etcd cluster on loopback. Not for CI: it may call apt-get.
#
#   scripts/bench-etcd.sh [extra `meshfed bench apply` flags]
set -eu
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1; then
	echo "etcd not found: installing the etcd-server package" >&2
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends etcd-server
	# The package starts a system etcd on the default ports; the benchmark
	# runs its own members on free ports, so stop it if it is running.
	if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop etcd 2>/dev/null || true; fi
fi

mkdir -p bin
go build -o bin/meshfed ./cmd/meshfed
exec bin/meshfed bench apply --etcd "$(command -v etcd)" "$@"
