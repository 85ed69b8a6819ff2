#!/usr/bin/env bash
# Runs vitest files N times in a row, optionally beside busy-loop processes (one per core by
# default), and prints one line per round. Stops at the first failure unless --keep-going.
# Usage: scripts/loop-tests.sh [--rounds N] [--hogs N] [--keep-going] FILE...
# Example (the flake hunt of docs/testing.md): scripts/loop-tests.sh --rounds 20 --hogs 2 \
#   test/integration/placement.test.ts test/integration/split.test.ts
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=20 hogs=0 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --hogs) hogs="$2"; shift 2 ;;
    --keep-going) keep=1; shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--rounds N] [--hogs N] [--keep-going] FILE..." >&2; exit 2; }
hog_pids=() run_pid=""
cleanup() { for pid in "${hog_pids[@]}" $run_pid; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 "$hogs"); do
  # A bounded busy loop (an hour at most), ended by PID on exit.
  timeout 3600 node -e 'for(;;){}' & hog_pids+=($!)
done
logs="${LOOP_LOG_DIR:-$(mktemp -d)}"
passed=0 failed=0
for round in $(seq 1 "$rounds"); do
  start=$(date +%s)
  timeout --kill-after=30 1200 npx vitest run "$@" > "$logs/round-$round.log" 2>&1 &
  run_pid=$!
  if wait "$run_pid"; then
    passed=$((passed + 1)); verdict=pass
  else
    failed=$((failed + 1)); verdict=FAIL
  fi
  echo "round $round: $verdict in $(( $(date +%s) - start )) s (log $logs/round-$round.log)"
  [ "$verdict" = FAIL ] && [ "$keep" = 0 ] && break
done
echo "loop: $passed passed, $failed failed of $rounds rounds"
[ "$failed" -eq 0 ]
