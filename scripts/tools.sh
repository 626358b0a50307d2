#!/usr/bin/env bash
# Installs the pinned code-generation tools into .bin/ (buf, protoc-gen-go,
# protoc-gen-go-grpc). Needs only the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOBIN="$PWD/.bin"
mkdir -p "$GOBIN"
go install github.com/bufbuild/buf/cmd/buf@v1.75.0
go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
