#!/usr/bin/env bash
# Two-node clusters side by side: publisher on node A, subscribers on node B,
# the messages crossing one route. Pairs: percore<->percore,
# nats-server<->nats-server, and the mixed pair (percore A, nats-server B),
# alternating within each round (order rotated every round). Reports
# medians of throughput, fixed-rate latency, CPU of both nodes per message,
# and route bytes per message (from node A's /routez).
#
# Usage: benches/cluster-compare.sh [--rounds N] [--msgs N] [--no-build]
# Defaults: 5 rounds; pubsub 128 B (1M msgs), queue group of 4 on B (1M),
# lat10k (10k msgs/s, 8 s after 2 s warm-up).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=5; MSGS=1M; BUILD=1
NATS_BIN="${NATS_BIN:-/usr/sbin/nats-server}"
BASE="${CLUSTER_COMPARE_PORT:-16300}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --msgs) MSGS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "cluster-compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ "$BUILD" = 1 ] && (cd "$ROOT" && cargo build --release -q -p percore -p percore-benches)
BENCH="$TARGET/release/percore-bench"
PERCORE="$TARGET/release/percore"
OUT="$(mktemp -d /tmp/percore-cluster.XXXXXX)"
# Ports: A client/monitor/cluster, B client/monitor/cluster.
PA=$BASE; MA=$((BASE + 1)); CA=$((BASE + 2)); PB=$((BASE + 3)); MB=$((BASE + 4)); CB=$((BASE + 5))

bin_of() { if [ "$1" = percore ]; then echo "$PERCORE"; else echo "$NATS_BIN"; fi; }

cpu_seconds() {
  local stat rest
  stat="$(cat "/proc/$1/stat")"
  rest="${stat##*) }"
  awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / tck }' <<<"$rest"
}

routes_of() { curl -s "http://127.0.0.1:$1/routez" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("num_routes", 0))' 2>/dev/null || echo 0; }

start_pair() {  # a-kind b-kind -> sets PID_A PID_B
  "$(bin_of "$1")" -a 127.0.0.1 -p "$PA" -m "$MA" --cluster "nats://127.0.0.1:$CA" --cluster_name bench \
    >"$OUT/a.log" 2>&1 & PID_A=$!
  "$(bin_of "$2")" -a 127.0.0.1 -p "$PB" -m "$MB" --cluster "nats://127.0.0.1:$CB" --cluster_name bench \
    --routes "nats://127.0.0.1:$CA" >"$OUT/b.log" 2>&1 & PID_B=$!
  for _ in $(seq 1 100); do
    if [ "$(routes_of "$MA")" -ge 1 ] && [ "$(routes_of "$MB")" -ge 1 ]; then return 0; fi
    sleep 0.1
  done
  echo "cluster-compare.sh: the route between $1 and $2 did not come up" >&2
  kill "$PID_A" "$PID_B" 2>/dev/null; exit 1
}

stop_pair() { kill "$PID_A" "$PID_B" 2>/dev/null || true; wait "$PID_A" "$PID_B" 2>/dev/null || true; }

# Node A's messages and bytes on the wire to B: /routez counts payload
# bytes only, so the bytes are the kernel's count for the route socket
# (B dials A's cluster port: the socket with local port CA).
route_out() {
  local msgs bytes
  msgs="$(curl -s "http://127.0.0.1:$MA/routez" | python3 -c '
import json,sys
r = json.load(sys.stdin).get("routes") or [{}]
print(r[0].get("out_msgs", 0))' 2>/dev/null || echo 0)"
  bytes="$(ss -tinH state established "( sport = :$CA )" 2>/dev/null | grep -o 'bytes_sent:[0-9]*' | head -1 | cut -d: -f2)"
  echo "$msgs ${bytes:-0}"
}

run_one() {  # pair scenario round
  local pair="$1" scen="$2" round="$3" a b args
  a="${pair%%-*}"; b="${pair##*-}"
  case "$scen" in
    pubsub128) args=(pubsub --size 128 --msgs "$MSGS") ;;
    queue4) args=(queue --size 128 --msgs "$MSGS" --sub 4) ;;
    lat10k) args=(latency --rate 10000 --duration 8s --warmup 2s --size 128) ;;
  esac
  start_pair "$a" "$b"
  local ca cb r0 r1
  ca="$(cpu_seconds "$PID_A")"; cb="$(cpu_seconds "$PID_B")"; r0="$(route_out)"
  "$BENCH" "${args[@]}" -s "nats://127.0.0.1:$PA" --sub-server "nats://127.0.0.1:$PB" \
    --interest-wait 1s -q --json-out "$OUT/$pair.$scen.$round.json" >"$OUT/$pair.$scen.$round.txt" 2>&1 || true
  local ca2 cb2 r1
  ca2="$(cpu_seconds "$PID_A")"; cb2="$(cpu_seconds "$PID_B")"; r1="$(route_out)"
  stop_pair
  python3 - "$OUT/$pair.$scen.$round.json" "$pair" "$scen" "$round" "$ca" "$ca2" "$cb" "$cb2" "$r0" "$r1" <<'PY' | tee -a "$OUT/results.txt"
import json, sys
path, pair, scen, rnd = sys.argv[1:5]
ca, ca2, cb, cb2 = map(float, sys.argv[5:9])
m0, b0 = map(int, sys.argv[9].split()); m1, b1 = map(int, sys.argv[10].split())
try:
    j = json.load(open(path))
except Exception:
    print(f"{pair} {scen} {rnd} FAILED"); sys.exit(0)
recv = j["sub"]["msgs_per_s"] if j.get("sub") else 0
lat = j.get("latency_us") or {}
msgs = max(j.get("received", 0), 1)
cpu_us = (ca2 - ca + cb2 - cb) * 1e6 / msgs
route_bytes = (b1 - b0) / max(m1 - m0, 1)
ok = "ok" if j.get("ok") else "NOT-OK"
print(f"{pair} {scen} {rnd} recv/s={recv:.0f} p50us={lat.get('p50', 0):.1f} p99us={lat.get('p99', 0):.1f} cpu_us_per_msg={cpu_us:.3f} route_bytes_per_msg={route_bytes:.1f} {ok}")
PY
}

echo "host: $(nproc) CPUs, kernel $(uname -r); $ROUNDS rounds; results in $OUT"
PAIRS=(percore-percore nats-nats percore-nats)
for round in $(seq 1 "$ROUNDS"); do
  for scen in pubsub128 queue4 lat10k; do
    shift_by=$((round % 3))
    for k in 0 1 2; do run_one "${PAIRS[$(((k + shift_by) % 3))]}" "$scen" "$round"; done
  done
done

echo
echo "medians (pair scenario: recv/s, p50 µs, p99 µs, CPU µs/msg both nodes, route wire bytes/msg):"
python3 - "$OUT/results.txt" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 8: continue
    kv = dict(x.split("=") for x in f[3:8])
    rows[(f[0], f[1])].append({k: float(v) for k, v in kv.items()})
med = {}
for (pair, scen), rs in sorted(rows.items()):
    m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    med[(pair, scen)] = m
    print(f"{pair:16} {scen:10} {m['recv/s']:>12,.0f} {m['p50us']:>8.1f} {m['p99us']:>8.1f} {m['cpu_us_per_msg']:>8.3f} {m['route_bytes_per_msg']:>8.1f}")
print()
for scen in ("pubsub128", "queue4", "lat10k"):
    for pair in ("percore-percore", "percore-nats"):
        a, b = med.get((pair, scen)), med.get(("nats-nats", scen))
        if not a or not b: continue
        tp = a["recv/s"] / b["recv/s"] if b["recv/s"] else float("nan")
        p50 = a["p50us"] / b["p50us"] if b["p50us"] else float("nan")
        p99 = a["p99us"] / b["p99us"] if b["p99us"] else float("nan")
        cpu = a["cpu_us_per_msg"] / b["cpu_us_per_msg"] if b["cpu_us_per_msg"] else float("nan")
        print(f"{pair} / nats-nats {scen}: throughput {tp:.2f}  p50 {p50:.2f}  p99 {p99:.2f}  CPU/msg {cpu:.2f}")
PY
