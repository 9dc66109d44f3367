#!/usr/bin/env bash
# Side-by-side comparison of two NATS servers (A = reference, B = candidate)
# on this machine: a fresh server per measurement, A and B alternating within
# each round (order flipped every round so drift cancels), several rounds.
# Prints medians, B/A ratios, spreads, server CPU seconds, and a geomean line.
#
# Usage:
#   benches/compare.sh [--a-bin PATH] [--a-args "ARGS"] [--a-name NAME]
#                      [--b-bin PATH] [--b-args "ARGS"] [--b-name NAME]
#                      [--rounds N] [--scenarios "pub16 lat10k ..."] [--out DIR]
#                      [--bench-args "ARGS"] [--no-relay] [--no-build]
# Defaults: A = /usr/sbin/nats-server, B = target/release/percore with its
# default shard count (no --shards: one shard on <= 2 CPUs, one per CPU
# otherwise), 3 rounds, every default scenario (pub16 pub128 pubsub16
# pubsub128 pubsub8k fanout5 queue4 reqrep lat10k lat50k). Opt-in scenarios,
# only through --scenarios: lat20k; lat10k-idle1k (lat10k with 1000 idle
# connections held open); lat10k-slow (lat10k for 8 s plus one subscriber on
# the same subject reading only 64 KiB/s: its backlog passes 8 MiB after
# about 5 s, which the server may answer by stalling the publisher or by
# cutting the slow one off; it is not measured and does not fail the run). Servers are started as
# `BIN -a 127.0.0.1 -p PORT ARGS`. Explicit shard count: --b-args "--shards 2".
# --bench-args go to every percore-bench run (e.g. "--creds user.creds" for
# a JWT-authenticated pair against servers started with --a-args/--b-args
# "-c server.conf" from `handshake-rate --operator-setup DIR`).
# Example (the BENCHMARKS.md table):
#   benches/compare.sh --b-bin /path/to/nats-server-2.15 --b-name nats-2.15
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
A_BIN=/usr/sbin/nats-server
A_ARGS=""
A_NAME=""
B_BIN="$ROOT/target/release/percore"
B_ARGS=""
B_NAME=""
ROUNDS=3
OUT=""
RELAY=1
BUILD=1
BENCH_ARGS=""
PORT=${COMPARE_PORT:-14222}
ALL_SCENARIOS="pub16 pub128 pubsub16 pubsub128 pubsub8k fanout5 queue4 reqrep lat10k lat50k"
SCENARIOS="$ALL_SCENARIOS"

while [ $# -gt 0 ]; do
  case "$1" in
    --a-bin) A_BIN="$2"; shift 2 ;;
    --a-args) A_ARGS="$2"; shift 2 ;;
    --a-name) A_NAME="$2"; shift 2 ;;
    --b-bin) B_BIN="$2"; shift 2 ;;
    --b-args) B_ARGS="$2"; shift 2 ;;
    --b-name) B_NAME="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --bench-args) BENCH_ARGS="$2"; shift 2 ;;
    --no-relay) RELAY=0; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release -q -p percore-benches)
fi
BENCH="$TARGET/release/percore-bench"
for b in "$A_BIN" "$B_BIN" "$BENCH"; do
  [ -x "$b" ] || { echo "compare.sh: not executable: $b" >&2; exit 2; }
done
name_of() { local v; v="$("$1" --version 2>/dev/null | head -1 || true)"; echo "${v:-$(basename "$1")}"; }
[ -n "$A_NAME" ] || A_NAME="$(name_of "$A_BIN")"
[ -n "$B_NAME" ] || B_NAME="$(name_of "$B_BIN")"
[ -n "$OUT" ] || OUT="$(mktemp -d /tmp/percore-compare.XXXXXX)"
mkdir -p "$OUT"
printf '%s\n' $SCENARIOS > "$OUT/scenarios.txt"

# Scenario -> percore-bench arguments. Every run is bounded by --duration
# and --timeout on top of its message count.
args_for() {
  case "$1" in
    pub16)     echo "pub --size 16 --msgs 5M --duration 10s" ;;
    pub128)    echo "pub --size 128 --msgs 3M --duration 10s" ;;
    pubsub16)  echo "pubsub --size 16 --msgs 3M --duration 10s" ;;
    pubsub128) echo "pubsub --size 128 --msgs 2M --duration 10s" ;;
    pubsub8k)  echo "pubsub --size 8KiB --msgs 200k --duration 10s" ;;
    fanout5)   echo "fanout --sub 5 --size 128 --msgs 500k --duration 10s" ;;
    queue4)    echo "queue --sub 4 --size 128 --msgs 1M --duration 10s" ;;
    reqrep)    echo "reqrep --size 128 --msgs 20k --duration 10s" ;;
    lat10k)    echo "latency --rate 10000 --size 128 --duration 5s --warmup 1s" ;;
    lat20k)    echo "latency --rate 20000 --size 128 --duration 5s --warmup 1s" ;;
    lat50k)    echo "latency --rate 50000 --size 128 --duration 5s --warmup 1s" ;;
    lat10k-idle1k) echo "latency --rate 10000 --size 128 --duration 5s --warmup 1s --idle-conns 1000" ;;
    lat10k-slow)   echo "latency --rate 10000 --size 128 --duration 8s --warmup 1s --slow-subs 1 --slow-rate 64KiB" ;;
    *) echo "compare.sh: unknown scenario $1" >&2; return 1 ;;
  esac
}

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# Waits for a listening socket on $PORT by reading /proc/net/tcp rather than
# connecting: a probe connection would take client id 1 and shift percore's
# connection-to-shard placement for the measured clients.
port_listening() {
  local hex
  hex="$(printf ':%04X ' "$PORT")"
  awk -v p="$hex" '$4 == "0A" && index($2 " ", p) { found = 1 } END { exit !found }' /proc/net/tcp
}
wait_port() {
  for _ in $(seq 1 200); do
    port_listening && return 0
    sleep 0.05
  done
  return 1
}

# Waits (up to 2 s) until nothing listens on $PORT. An io_uring server
# (percore, floor-server --io-uring) gives its listening socket back only
# when the kernel tears its ring down, a few milliseconds after the process
# is gone: without this wait the next server's wait_port could see the old
# socket, and the load connect in the gap (1 run in 48 was refused).
wait_port_free() {
  for _ in $(seq 1 40); do
    port_listening || return 0
    sleep 0.05
  done
  return 1
}

# utime + stime of a live process, in seconds.
cpu_seconds() {
  local stat rest
  stat="$(cat "/proc/$1/stat")"
  rest="${stat##*) }"   # fields after "pid (comm) "
  # shellcheck disable=SC2086
  set -- $rest
  # $12 = utime, $13 = stime (fields 14 and 15 of the full line)
  echo "${12} ${13} $(getconf CLK_TCK)" | awk '{printf "%.3f\n", ($1 + $2) / $3}'
}

# measure SIDE BIN ARGS SCENARIO ROUND
measure() {
  local side="$1" bin="$2" sargs="$3" scen="$4" round="$5" rc=0
  # shellcheck disable=SC2086
  "$bin" -a 127.0.0.1 -p "$PORT" $sargs > "$OUT/$scen.$side.$round.server.log" 2>&1 &
  SERVER_PID=$!
  if ! wait_port; then
    echo "compare.sh: $bin did not listen on $PORT" >&2
    cleanup; SERVER_PID=""; return 1
  fi
  # shellcheck disable=SC2046
  timeout 120 "$BENCH" $(args_for "$scen") $BENCH_ARGS -q --server "127.0.0.1:$PORT" \
      --json-out "$OUT/$scen.$side.$round.json" > "$OUT/$scen.$side.$round.txt" 2>&1 || rc=$?
  cpu_seconds "$SERVER_PID" > "$OUT/$scen.$side.$round.cpu" || true
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  wait_port_free || echo "compare.sh: port $PORT still listening 2 s after the server ended" >&2
  printf '  %-13s %s round %s: %s\n' "$scen" "$side" "$round" "$(tail -1 "$OUT/$scen.$side.$round.txt")"
  # Idle/slow connections (opt-in scenarios): what happened to them.
  grep -E '^ (Idle connections|Slow subscriber)' "$OUT/$scen.$side.$round.txt" | sed 's/^ /                 /' || true
  [ "$rc" = 0 ] || echo "  (percore-bench exit $rc, see $OUT/$scen.$side.$round.txt)"
}

echo "A: $A_NAME ($A_BIN $A_ARGS)"
echo "B: $B_NAME ($B_BIN $B_ARGS)"
echo "rounds: $ROUNDS   results: $OUT"
echo "host: $(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  for scen in $SCENARIOS; do
    if [ $((round % 2)) = 1 ]; then
      measure a "$A_BIN" "$A_ARGS" "$scen" "$round" || true
      measure b "$B_BIN" "$B_ARGS" "$scen" "$round" || true
    else
      measure b "$B_BIN" "$B_ARGS" "$scen" "$round" || true
      measure a "$A_BIN" "$A_ARGS" "$scen" "$round" || true
    fi
  done
  if [ "$RELAY" = 1 ]; then
    "$TARGET/release/tcp-relay" serve -p "$PORT" 2>/dev/null &
    SERVER_PID=$!
    if wait_port; then
      timeout 30 "$TARGET/release/tcp-relay" run --server "127.0.0.1:$PORT" --size 8192 --duration 3 \
        | tail -1 > "$OUT/relay.$round.json" || true
    fi
    cleanup; SERVER_PID=""
  fi
done

"$TARGET/release/compare-report" "$OUT" --a-name "$A_NAME" --b-name "$B_NAME"
