#!/usr/bin/env bash
# Runs a local three-server control plane on loopback (data in .data/dev,
# kept across runs) and applies the examples. Ctrl-C stops everything.
#   gRPC: 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
#   metrics/health: http://127.0.0.1:7201 .. 7203
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bin .data/dev
go build -o .bin/meshfed ./cmd/meshfed
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
peers="s1=127.0.0.1:7001,s2=127.0.0.1:7002,s3=127.0.0.1:7003"
for i in 1 2 3; do
  .bin/meshfed server --node-id "s$i" --data-dir ".data/dev/s$i" \
    --raft-addr "127.0.0.1:700$i" --grpc-addr "127.0.0.1:710$i" --http-addr "127.0.0.1:720$i" \
    --initial-cluster "$peers" 2>".data/dev/s$i.log" &
  pids+=($!)
done
export MESHFED_SERVER=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:7201/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
.bin/meshfed apply -f examples/word-count.yaml
.bin/meshfed operator raft list-peers
echo
echo "control plane running: export MESHFED_SERVER=$MESHFED_SERVER"
echo "try: .bin/meshfed get meshes; logs in .data/dev/*.log; Ctrl-C stops"
wait
