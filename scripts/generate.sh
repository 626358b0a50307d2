#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the pinned tools (run scripts/tools.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.bin:$PATH"
buf lint
rm -rf gen
buf generate
