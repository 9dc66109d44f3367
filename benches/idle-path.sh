#!/usr/bin/env bash
# System calls per message on the shards' idle path (issue 16, section 1).
#
# At low and moderate rates a shard runs out of work after every message and
# parks; what a park and a wake-up cost in system calls is what this counts.
# For each shard count and scenario it starts percore, runs the load, and
# has `perf stat` count the server's system calls over the load window
# (tracepoints, so counts, not timings: a busy machine changes them little).
# The divisor is the server's own published-message count (/varz in_msgs);
# for request/reply one round trip is two published messages.
#
#   benches/idle-path.sh                 # 1 and 2 shards, every scenario
#   SHARDS="2" SCENARIOS="lat10k" benches/idle-path.sh
#
# Env: PERCORE (binary, default target/release/percore), BENCH
# (percore-bench), IDLE_PORT (client port, default 4390; monitoring is +1),
# DURATION (seconds of load, default 3), EXTRA_ARGS (more percore flags).
set -euo pipefail
cd "$(dirname "$0")/.."

PERCORE=${PERCORE:-target/release/percore}
BENCH=${BENCH:-target/release/percore-bench}
PORT=${IDLE_PORT:-4390}
HTTP=$((PORT + 1))
DURATION=${DURATION:-3}
SHARDS=${SHARDS:-"1 2"}
SCENARIOS=${SCENARIOS:-"lat1k lat10k lat50k reqrep"}
EVENTS=io_uring_enter,membarrier,sendmsg,sendto,recvfrom,read,write,epoll_wait,futex

for tool in "$PERCORE" "$BENCH"; do
  [ -x "$tool" ] || { echo "idle-path: $tool missing (cargo build --release)" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "idle-path: perf is needed (apt-get install linux-perf)" >&2; exit 2; }

perf_events=task-clock
for e in ${EVENTS//,/ }; do perf_events="$perf_events,syscalls:sys_enter_$e"; done

in_msgs() {
  curl -s "http://127.0.0.1:$HTTP/varz" | grep -o "\"in_msgs\": *[0-9]*" | head -1 | grep -o "[0-9]*$"
}

load() {
  local scenario=$1 url="nats://127.0.0.1:$PORT"
  case $scenario in
    lat1k) "$BENCH" latency -s "$url" --rate 1000 --duration "${DURATION}s" --warmup 0s ;;
    lat10k) "$BENCH" latency -s "$url" --rate 10000 --duration "${DURATION}s" --warmup 0s ;;
    lat50k) "$BENCH" latency -s "$url" --rate 50000 --duration "${DURATION}s" --warmup 0s ;;
    reqrep) "$BENCH" reqrep -s "$url" --duration "${DURATION}s" ;;
    *) echo "idle-path: unknown scenario $scenario" >&2; return 2 ;;
  esac
}

printf '%-7s %-7s %9s %9s' shards load msgs "cpu_us"
for e in ${EVENTS//,/ }; do printf ' %9s' "${e:0:9}"; done
printf '   (per published message)\n'

for shards in $SHARDS; do
  for scenario in $SCENARIOS; do
    # shellcheck disable=SC2086
    "$PERCORE" -a 127.0.0.1 -p "$PORT" -m "$HTTP" --shards "$shards" ${EXTRA_ARGS:-} \
      >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HTTP/varz" && break; sleep 0.05; done
    before=$(in_msgs)
    stats=$(mktemp)
    perf stat -x, -e "$perf_events" -p "$server" -o "$stats" &
    perf_pid=$!
    load "$scenario" >/dev/null 2>&1
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    after=$(in_msgs)
    kill "$server"; wait "$server" 2>/dev/null || true
    msgs=$((after - before))
    [ "$msgs" -gt 0 ] || { echo "idle-path: no messages in $scenario" >&2; rm -f "$stats"; continue; }
    printf '%-7s %-7s %9d' "$shards" "$scenario" "$msgs"
    # perf -x, lines: value,unit,event,...
    awk -F, -v m="$msgs" -v events="task-clock,${EVENTS}" '
      { v[$3] = $1 }
      END {
        n = split(events, e, ",")
        for (i = 1; i <= n; i++) {
          key = (e[i] == "task-clock") ? "task-clock" : "syscalls:sys_enter_" e[i]
          val = v[key] + 0
          if (e[i] == "task-clock") printf " %9.1f", val * 1000 / m   # msec -> us
          else printf " %9.2f", val / m
        }
        printf "\n"
      }' "$stats"
    rm -f "$stats"
  done
done
