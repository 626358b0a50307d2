#!/usr/bin/env bash
# The whole test suite, as CI runs it: tools, generated-code check, lint,
# unit tests, race tests of the concurrent packages, fuzz smoke runs and the
# end-to-end tests of the built binary. Needs Go and the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "download modules"
go mod download
go mod verify

step "install code-generation tools"
scripts/tools.sh

step "check generated code is up to date and buf lint is clean"
scripts/generate.sh
if [ -n "$(git status --porcelain -- gen)" ]; then
  git status --porcelain -- gen
  echo "gen/ differs from what proto/ generates: run scripts/generate.sh and commit" >&2
  exit 1
fi

step "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go vet -tags e2e ./e2e/...

step "unit and in-process tests"
go test -count=1 -timeout 15m ./...

step "race detector on the concurrent packages"
go test -race -count=1 -timeout 20m ./controlplane/... ./client/... ./broker/... ./agent/... ./drill/... ./federation/... ./policies/...

step "fuzz smoke runs of every fuzz target, 20,000 inputs each (count-based: a time limit can end a run with a spurious deadline error)"
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./e2e/' | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  for f in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz $pkg $f"
    go test -run='^$' -fuzz="^$f\$" -fuzztime=20000x -fuzzminimizetime=100x "$pkg"
  done
done

step "end-to-end tests of the built binary"
go test -tags e2e -count=1 -timeout 20m ./e2e/...

step "pulsar-client-go's own tests against meshfed broker configured as the client's CI broker (TLS, authentication and the compatibility list)"
SECURE=1 RETRY_FAILED=1 COMPAT_RESULTS="${TMPDIR:-/tmp}/meshfed-client-compat.txt" scripts/client-compat.sh

step "all tests passed"
