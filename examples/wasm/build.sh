#!/bin/sh
# Builds the example WebAssembly functions into DIR (default: examples/wasm/bin):
#   examples/wasm/build.sh [DIR]
# Each is a wasip1 reactor module using meshfed's wasm ABI (docs/wasm-abi.md).
set -eu
cd "$(dirname "$0")"
out=${1:-bin}
mkdir -p "$out"
for fn in wordsplit wordcount; do
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$out/$fn.wasm" "./$fn"
	echo "$out/$fn.wasm"
done
