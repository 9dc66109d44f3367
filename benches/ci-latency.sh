#!/usr/bin/env bash
# CI latency smoke: fixed-rate latency of percore against nats-server on this
# machine, and against the committed baseline, compared with histcmp.
# Fails only on a regression beyond noise (benches/policy/ci.json: per
# percentile a ratio AND an absolute floor), found in two measurements in a
# row (a failing one is measured again once). Throughput never gates.
#
# Usage: benches/ci-latency.sh [PERCORE_BIN]
# Env:   PERCORE_BIN (default target/release/percore), PERCORE_ARGS ("": the
#        default shard count, one shard on a 2-CPU CI machine),
#        NATS_BIN (/usr/sbin/nats-server), ROUNDS (3), RATE (20000), SIZE (128),
#        DURATION (12s), WARMUP (3s), BASELINE (benches/baselines/latency-20k.json),
#        POLICY (benches/policy/ci.json), OUT (temp dir), NO_BUILD=1 to skip the build,
#        CI_LATENCY_REQUIRED=1 to fail (not skip) when the percore binary is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PERCORE_BIN="${1:-${PERCORE_BIN:-$ROOT/target/release/percore}}"
PERCORE_ARGS="${PERCORE_ARGS-}"
NATS_BIN="${NATS_BIN:-/usr/sbin/nats-server}"
ROUNDS="${ROUNDS:-3}"
RATE="${RATE:-20000}"
SIZE="${SIZE:-128}"
DURATION="${DURATION:-12s}"
WARMUP="${WARMUP:-3s}"
BASELINE="${BASELINE:-$ROOT/benches/baselines/latency-20k.json}"
POLICY="${POLICY:-$ROOT/benches/policy/ci.json}"
PORT="${CI_LATENCY_PORT:-14522}"
OUT="${OUT:-$(mktemp -d /tmp/percore-ci-latency.XXXXXX)}"
mkdir -p "$OUT"

if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "ci-latency: building release binaries"
  cargo build --release -q -p percore-benches -p percore
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH="$TARGET/release/percore-bench"
HISTCMP="$TARGET/release/histcmp"

if [ ! -x "$PERCORE_BIN" ]; then
  if [ "${CI_LATENCY_REQUIRED:-0}" = 1 ]; then
    echo "ci-latency: FAILED: percore binary not found at $PERCORE_BIN" >&2; exit 1
  fi
  echo "ci-latency: SKIPPED: percore binary not found at $PERCORE_BIN"; exit 0
fi
if [ ! -x "$NATS_BIN" ]; then
  echo "ci-latency: nats-server not found at $NATS_BIN; comparing against the baseline only"
  NATS_BIN=""
fi

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=""
}
trap cleanup EXIT

# Listening-socket check without connecting (a probe would shift percore's
# connection-to-shard placement).
wait_port() {
  local hex
  hex="$(printf ':%04X ' "$PORT")"
  for _ in $(seq 1 200); do
    if awk -v p="$hex" '$4 == "0A" && index($2 " ", p) { f = 1 } END { exit !f }' /proc/net/tcp; then return 0; fi
    sleep 0.05
  done
  return 1
}

# run NAME BIN ARGS ROUND: one fresh server, one fixed-rate latency run.
run() {
  local name="$1" bin="$2" sargs="$3" round="$4" rc=0
  # shellcheck disable=SC2086
  "$bin" -a 127.0.0.1 -p "$PORT" $sargs > "$OUT/$name.$round.server.log" 2>&1 &
  SERVER_PID=$!
  wait_port || { echo "ci-latency: $bin did not start" >&2; cleanup; return 1; }
  timeout 120 "$BENCH" latency -q --server "127.0.0.1:$PORT" --rate "$RATE" --size "$SIZE" \
    --duration "$DURATION" --warmup "$WARMUP" \
    --json-out "$OUT/$name.$round.json" --hist-out "$OUT/$name.$round.hgrm" \
    > "$OUT/$name.$round.txt" 2>&1 || rc=$?
  cleanup
  echo "  $name round $round: $(grep -E 'Latency from intended' "$OUT/$name.$round.txt" | sed 's/^ *//' || true)"
  echo "  $name round $round: $(tail -1 "$OUT/$name.$round.txt")"
  return "$rc"
}

# measure DIR: ROUNDS rounds of fresh servers into DIR, then both histcmp
# tables. Returns 0 when both pass the policy, 1 on a latency regression,
# 2 when a run lost messages or had errors.
measure() {
  local dir="$1" round failed_runs=0 status=0
  mkdir -p "$dir"
  OUT="$dir" # where run() writes
  echo "ci-latency: $ROUNDS rounds of $RATE msgs/s, $SIZE B, $DURATION (+$WARMUP warm-up); results in $dir"
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate the order so slow drift of the machine hits both sides alike.
    if [ -n "$NATS_BIN" ] && [ $((round % 2)) = 0 ]; then
      run nats "$NATS_BIN" "" "$round" || failed_runs=$((failed_runs + 1))
    fi
    run percore "$PERCORE_BIN" "$PERCORE_ARGS" "$round" || failed_runs=$((failed_runs + 1))
    if [ -n "$NATS_BIN" ] && [ $((round % 2)) = 1 ]; then
      run nats "$NATS_BIN" "" "$round" || failed_runs=$((failed_runs + 1))
    fi
  done

  local percore_runs=("$dir"/percore.*.json)
  if [ -n "$NATS_BIN" ]; then
    echo
    echo "== percore (B) vs nats-server (A), same machine, median of $ROUNDS =="
    "$HISTCMP" --a "$dir"/nats.*.json --b "${percore_runs[@]}" --name-a nats-server --name-b percore \
      --policy "$POLICY" || status=1
  fi
  if [ -f "$BASELINE" ]; then
    echo
    echo "== percore (B) vs committed baseline (A: $(basename "$BASELINE")) =="
    "$HISTCMP" --a "$BASELINE" --b "${percore_runs[@]}" --name-a baseline --name-b percore \
      --policy "$POLICY" || status=1
  else
    echo "ci-latency: no baseline at $BASELINE"
  fi
  if [ "$failed_runs" -gt 0 ]; then
    echo "ci-latency: $failed_runs run(s) lost messages or had errors (see $dir/*.txt)"
    return 2
  fi
  return "$status"
}

# A latency verdict beyond the policy is measured once more, from fresh
# servers, and fails only if the second measurement fails too. Why: the
# fresh-clone run of 7e24ef9 failed against the baseline at p50 315 µs
# (baseline 108 µs) while nats-server's own p50 in the same run was 441 µs,
# about four times its usual figure: the VM, not the commit, had slowed.
# A regression in the code is there both times; a noisy minute of a shared
# VM rarely is. Lost messages or errors are never retried.
RUN_DIR="$OUT"
verdict=0
measure "$RUN_DIR/attempt-1" || verdict=$?
if [ "$verdict" = 1 ]; then
  echo
  echo "ci-latency: beyond the noise policy on the first measurement; measuring once more from fresh servers"
  verdict=0
  measure "$RUN_DIR/attempt-2" || verdict=$?
fi
if [ "$verdict" = 2 ]; then
  echo "ci-latency: FAILED: run(s) lost messages or had errors (see $RUN_DIR/attempt-*/*.txt)"
  exit 1
fi
if [ "$verdict" != 0 ]; then
  echo "ci-latency: FAILED: latency regression beyond the noise policy, measured twice"
  exit 1
fi
echo "ci-latency: OK"
