#!/usr/bin/env bash
# Runs RUNS failover drills (default 20) of cluster a against a fresh
# `meshfed dev --clusters 3` and prints every report's line and the summary:
# p50/p99 of detection, failover and the first output from the fallback,
# failback, and the totals of messages produced, lost, duplicated and
# unreplicated, with what became of the stranded tail.
#
#   scripts/drill-bench.sh                         # 20 crash drills, 5 s out each, 50 msg/s
#   MODE=cordon scripts/drill-bench.sh             # cordon drills instead
#   RUNS=5 DURATION=10s RATE=100 scripts/drill-bench.sh
#   HOLD_DOWN=30s scripts/drill-bench.sh           # dev's default failback hold-down
#   STRAND=1s RUNS=5 scripts/drill-bench.sh        # strand 1 s of input in a before each crash
#
# A crash drill kills a's broker and agent with SIGKILL through meshfed dev's
# control API and starts them again after DURATION; each drill waits for
# failback, held down HOLD_DOWN (10 s here), so 20 drills take about 8
# minutes. Reports stay in $REPORTS_DIR (default: a temporary directory,
# printed at the end) for `meshfed drill show|summary`; dev's own logs and
# each broker's and agent's are in the work directory printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
DURATION=${DURATION:-5s}
RATE=${RATE:-50}
MODE=${MODE:-crash}
HOLD_DOWN=${HOLD_DOWN:-10s}
STRAND=${STRAND:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/drill-bench.XXXXXX")
REPORTS_DIR=${REPORTS_DIR:-$work/reports}
bin=${MESHFED_BIN:-}
if [ -z "$bin" ]; then
  go build -o "$work/meshfed" ./cmd/meshfed
  bin=$work/meshfed
fi

"$bin" dev --clusters 3 --data-dir "$work/dev" --grpc-addr 127.0.0.1:0 --broker-port 0 --admin-port 0 \
  --failback-hold-down "$HOLD_DOWN" --runtimes builtin \
  >"$work/dev.out" 2>"$work/dev.log" &
devpid=$!
cleanup() { kill "$devpid" 2>/dev/null || true; wait "$devpid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for _ in $(seq 300); do
  [ -s "$work/dev/dev.json" ] && break
  kill -0 "$devpid" 2>/dev/null || { echo "meshfed dev exited:" >&2; cat "$work/dev.log" >&2; exit 1; }
  sleep 0.1
done
server=$(sed -n 's/.*"server": *"\([^"]*\)".*/\1/p' "$work/dev/dev.json")
[ -n "$server" ] || { echo "no server address in $work/dev/dev.json" >&2; exit 1; }
grep -q '"replication": true' "$work/dev/dev.json" ||
  echo "warning: meshfed dev did not configure geo-replication; the drills simulate it: $(sed -n 's/.*"replicationError": *"\(.*\)",*$/\1/p' "$work/dev/dev.json")" >&2
echo "meshfed dev running, server $server; $RUNS $MODE drills of cluster a, ${DURATION} out, ${RATE} msg/s, failback hold-down $HOLD_DOWN${STRAND:+, ${STRAND} of input stranded before each crash}"

extra=()
[ -z "$STRAND" ] || extra=(--strand "$STRAND")
failed=0
for i in $(seq "$RUNS"); do
  if "$bin" --server "$server" drill run --fail-cluster a --mode "$MODE" --dev-dir "$work/dev" "${extra[@]}" \
    --duration "$DURATION" --rate "$RATE" --failback-timeout 3m --reports-dir "$REPORTS_DIR" >"$work/run-$i.txt" 2>&1; then
    result=passed
  else
    result=FAILED
    failed=$((failed + 1))
  fi
  printf 'drill %2d/%d %s: %s\n' "$i" "$RUNS" "$result" \
    "$(grep -E '^  (detection|first output|replicated|messages|unreplicated|stranded tail|problem) ' "$work/run-$i.txt" | tr -s ' ' | tr '\n' ' ')"
done

echo
"$bin" drill list --reports-dir "$REPORTS_DIR"
echo
"$bin" drill summary --reports-dir "$REPORTS_DIR"
echo
echo "reports in $REPORTS_DIR; drill outputs and dev logs in $work"
[ "$failed" -eq 0 ] || { echo "$failed of $RUNS drills failed" >&2; exit 1; }
