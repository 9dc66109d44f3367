#!/usr/bin/env bash
# Soak (issue 15): a NATS server under a fixed-rate publisher/subscriber pair
# at half of its peak throughput plus connection churn, for a long time, with
# its RSS and CPU sampled every 10 s. Shows whether memory stays flat after
# warm-up (no leak) and whether the pair's latency drifts.
#
# Usage: benches/soak.sh [--duration SECS] [--interval SECS] [--warmup SECS]
#          [--rate MSGS_PER_S | --find-peak] [--size BYTES] [--churn PER_S]
#          [--churn-concurrency N] [--server-bin PATH] [--shards N]
#          [--server-args "ARGS"] [--sample SECS] [--out DIR]
# The rate is half of peak: either the operator passes --rate (half of a
# `percore-bench pubsub --size SIZE` run's subscriber msgs/s), or --find-peak
# measures that first on a fresh server (pubsub, 2M msgs or 10 s) and halves
# it; the soak then runs on another fresh server.
# Defaults: 3600 s, rows every 60 s, warm-up 10 % of the run (at most 300 s)
# or until 10 000 churn clients have closed if that is later (1000 s at 10/s:
# the servers' closed-connection records fill up until then), at most half,
# 128 B payloads, 10 churn clients/s with at most 4 in flight, samples every
# 10 s, server target/release/percore (its default shard count unless
# --shards), out soak-out/<server>-<UTC time>. nats-server side by side:
#   --server-bin /usr/sbin/nats-server (--shards is percore's only).
# Servers run as `BIN -a 127.0.0.1 -p PORT [--shards N] ARGS`, PORT from
# SOAK_PORT (default 14822); tools from target/release (built first unless
# NO_BUILD=1). Only the processes started here are stopped, by pid.
#
# Writes in DIR: rss.csv (t_s,rss_kib,cpu_pct), latency.csv (one row per
# interval: sent/received/lost, p50/p90/p99/p99.9/max µs, churn ok/failed),
# bench.txt (the bench's output), server.log, summary.txt, summary.json and
# soak.svg (RSS over time; p50/p99 per interval), from `soak-report DIR`.
# Exit status: the bench's (1 when the pair lost messages or saw errors).
#
# The short check (3 minutes, not a figure):
#   benches/soak.sh --duration 180 --interval 20 --rate 20000
#   benches/soak.sh --duration 180 --interval 20 --rate 20000 --server-bin /usr/sbin/nats-server
# The figure (on a quiet machine):
#   benches/soak.sh --find-peak
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PORT="${SOAK_PORT:-14822}"
URL="nats://127.0.0.1:$PORT"

duration=3600 interval=60 warmup="" rate="" find_peak=0 size=128 churn=10
churn_conc=4 server_bin="$TARGET/release/percore" shards="" server_args=""
sample=10 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --find-peak) find_peak=1; shift ;;
    --size) size="$2"; shift 2 ;;
    --churn) churn="$2"; shift 2 ;;
    --churn-concurrency) churn_conc="$2"; shift 2 ;;
    --server-bin) server_bin="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --server-args) server_args="$2"; shift 2 ;;
    --sample) sample="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "soak: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$rate" ] && [ "$find_peak" = 0 ]; then
  echo "soak: pass --rate (half of peak msgs/s) or --find-peak" >&2
  exit 2
fi
name="$(basename "$server_bin")"
out="${out:-soak-out/$name-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "soak: building release binaries" >&2
  (cd "$ROOT" && cargo build --release -q -p percore-benches -p percore)
fi
BENCH="$TARGET/release/percore-bench"
REPORT="$TARGET/release/soak-report"

server_pid="" sampler_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
  stop_server
}
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap cleanup EXIT

start_server() {
  local args=(-a 127.0.0.1 -p "$PORT")
  if [ -n "$shards" ]; then args+=(--shards "$shards"); fi
  # shellcheck disable=SC2206 # ARGS is split like a command line on purpose
  args+=($server_args)
  "$server_bin" "${args[@]}" >>"$out/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "soak: $server_bin did not listen on $PORT (see $out/server.log)" >&2
  exit 2
}

if [ "$find_peak" = 1 ]; then
  start_server
  echo "soak: finding peak (pubsub, $size B)" >&2
  "$BENCH" pubsub -s "$URL" --size "$size" --msgs 2M --duration 10s -q \
    --json-out "$out/peak.json" >"$out/peak.txt" || true
  stop_server
  # The subscriber group's msgs/s: the first msgs_per_s after "sub".
  peak="$(awk '/"sub": \{/ {s=1} s && /"msgs_per_s"/ {gsub(/[^0-9.]/, "", $2); print $2; exit}' "$out/peak.json")"
  if [ -z "$peak" ]; then echo "soak: no peak in $out/peak.json" >&2; exit 2; fi
  rate="$(awk -v p="$peak" 'BEGIN {printf "%.0f", p / 2}')"
  echo "soak: peak $peak msgs/s, soak rate $rate msgs/s" >&2
fi

# RSS (VmRSS) and CPU (utime + stime, % of one core since the last sample)
# every $sample s, on a fixed schedule from the soak's start.
sample_server() {
  local pid="$1" hz t0 k=0 last_ticks="" last_t="" now rss stat ticks cpu
  hz="$(getconf CLK_TCK)"
  t0="$(date +%s.%N)"
  echo "t_s,rss_kib,cpu_pct" >"$out/rss.csv"
  while [ -r "/proc/$pid/status" ]; do
    now="$(date +%s.%N)"
    rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || break
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || break
    stat="${stat##*) }"  # fields after "(comm) ": state is 3, utime 14, stime 15
    ticks="$(echo "$stat" | awk '{print $12 + $13}')"
    cpu="$(awk -v a="$last_ticks" -v b="$ticks" -v s="$last_t" -v n="$now" -v hz="$hz" \
      'BEGIN { if (a == "" || n <= s) print "0.0"; else printf "%.1f", (b - a) / hz / (n - s) * 100 }')"
    [ -n "$rss" ] && echo "$(awk -v n="$now" -v t="$t0" 'BEGIN {printf "%.1f", n - t}'),$rss,$cpu" >>"$out/rss.csv"
    last_ticks="$ticks" last_t="$now"
    k=$((k + 1))
    sleep "$(awk -v t="$t0" -v k="$k" -v s="$sample" -v n="$(date +%s.%N)" \
      'BEGIN {d = t + k * s - n; printf "%.3f", (d > 0 ? d : 0)}')"
  done
}

start_server
echo "soak: $name on $URL, $duration s at $rate msgs/s of $size B, churn $churn/s, out $out" >&2
sample_server "$server_pid" &
sampler_pid=$!
set +e
"$BENCH" soak -s "$URL" --rate "$rate" --size "$size" --duration "${duration}s" \
  --interval "${interval}s" --churn "$churn" --churn-concurrency "$churn_conc" \
  --csv-out "$out/latency.csv" 2>&1 | tee "$out/bench.txt"
rc="${PIPESTATUS[0]}"
set -e
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
stop_server

# Default warm-up: 10 % of the run (at most 300 s), but at least until the
# closed-connection records are full: both servers keep the last 10 000
# closed connections for /connz?state=closed, so RSS grows with churn until
# then (about 0.4 KiB each in percore), which is not a leak. At most half the run.
if [ -z "$warmup" ]; then
  warmup="$(awk -v d="$duration" -v c="$churn" 'BEGIN {
    w = d * 0.1; if (w > 300) w = 300
    if (c > 0 && 10000 / c > w) w = 10000 / c
    if (w > d / 2) w = d / 2
    printf "%.0f", w }')"
fi
report_args=("$out" --warmup "$warmup" --title "soak: $name, $rate msgs/s of $size B, churn $churn/s")
"$REPORT" "${report_args[@]}" || true
echo "soak: bench exit status $rc; files in $out" >&2
exit "$rc"
