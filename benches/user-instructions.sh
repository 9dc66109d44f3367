#!/usr/bin/env bash
# User-space instructions per request/reply round trip of a server, counted
# by callgrind: a count, not a timing, so a busy machine does not change it
# and a few hundred instructions show where a timed run cannot.
#
# The server runs under callgrind; 300 round trips warm it up, the counters
# are zeroed, 2 000 round trips are counted, and the counters are dumped.
# Every instruction the server's threads execute in user space is in the
# count (the kernel's work is not).
#
#   benches/user-instructions.sh target/release/percore
#   benches/user-instructions.sh target/release/floor-server --io-uring
#   benches/user-instructions.sh target/release/floor-server --glommio
#
# The server is started as `BIN -a 127.0.0.1 -p PORT ARGS...`. Env: BENCH
# (percore-bench), CG_PORT (default 4561), CG_OUT (directory for the
# callgrind files, default a fresh temporary one; `callgrind_annotate` reads
# them for the per-function split).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { echo "usage: $0 SERVER-BINARY [ARGS...]" >&2; exit 2; }
BIN=$1
shift
BENCH=${BENCH:-target/release/percore-bench}
PORT=${CG_PORT:-4561}
OUT=${CG_OUT:-$(mktemp -d)}
ROUND_TRIPS=2000

command -v valgrind >/dev/null || { echo "user-instructions: valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
for tool in "$BIN" "$BENCH"; do
  [ -x "$tool" ] || { echo "user-instructions: $tool missing (cargo build --release)" >&2; exit 2; }
done

valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" --dump-instr=no \
  "$BIN" -a 127.0.0.1 -p "$PORT" "$@" > "$OUT/server.log" 2>&1 &
SERVER=$!
# Under callgrind a start takes seconds; a broker checks its host first.
for _ in $(seq 1 600); do
  (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "user-instructions: the server exited (see $OUT/server.log)" >&2; exit 1; }
  sleep 0.2
done

"$BENCH" reqrep --size 128 --msgs 300 --server "127.0.0.1:$PORT" -q > /dev/null 2>&1
callgrind_control -z "$SERVER" > /dev/null 2>&1
"$BENCH" reqrep --size 128 --msgs "$ROUND_TRIPS" --server "127.0.0.1:$PORT" -q > "$OUT/load.txt" 2>&1
callgrind_control -d "$SERVER" > /dev/null 2>&1
# A server blocked in io_uring_enter under valgrind does not act on SIGTERM.
kill -9 "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true

grep -q "RESULT: OK" "$OUT/load.txt" || { echo "user-instructions: the load failed (see $OUT/load.txt)" >&2; exit 1; }
dumps=("$OUT"/callgrind.out.*)
dump=${dumps[0]}
total=$(grep -E '^summary:' "$dump" | grep -o '[0-9]*$')
echo "$BIN${*:+ $*}: $((total / ROUND_TRIPS)) user-space instructions per round trip ($total for $ROUND_TRIPS; $dump)"
