#!/usr/bin/env bash
# Handshakes per second (connect, INFO, CONNECT with credentials, PING,
# PONG, close) with a token, a bcrypt password, an NKey signature and a
# user JWT (operator mode, MEMORY resolver: `handshake-rate --operator-setup`);
# percore and nats-server alternating with the same config file, plus the
# server's CPU per handshake.
#
# Usage: benches/handshakes.sh [--rounds N] [--seconds S] [--workers W]
#                              [--cost C] [--no-build]
# Defaults: 5 rounds of 5 s per mode and server, 4 client threads, bcrypt
# cost 10. Needs python3 (its crypt module makes the hash).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=5; SECONDS_PER_RUN=5; WORKERS=4; COST=10; BUILD=1
NATS_BIN="${NATS_BIN:-/usr/sbin/nats-server}"
PORT="${HANDSHAKES_PORT:-14722}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --cost) COST="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "handshakes.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ "$BUILD" = 1 ] && (cd "$ROOT" && cargo build --release -q -p percore -p percore-benches)
TOOL="$TARGET/release/handshake-rate"
PERCORE="$TARGET/release/percore"
OUT="$(mktemp -d /tmp/percore-handshakes.XXXXXX)"

TOKEN="bench-token-$$"
HASH="$(python3 -c "import crypt; print(crypt.crypt('bench secret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**$COST)))" 2>/dev/null)"
read -r SEED PUBLIC < <("$TOOL" --new-user-nkey)
echo "authorization { token: \"$TOKEN\" }" > "$OUT/token.conf"
echo "authorization { users: [{user: bench, password: \"$HASH\"}] }" > "$OUT/password.conf"
echo "authorization { users: [{nkey: $PUBLIC}] }" > "$OUT/nkey.conf"
"$TOOL" --operator-setup "$OUT/jwt"
cp "$OUT/jwt/server.conf" "$OUT/jwt.conf"

# utime + stime of a live process, in seconds.
cpu_seconds() {
  local stat rest
  stat="$(cat "/proc/$1/stat")"
  rest="${stat##*) }"
  awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / tck }' <<<"$rest"
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "handshakes.sh: nothing listens on $PORT" >&2; exit 1
}

run_one() {  # server mode round
  local server="$1" mode="$2" round="$3" pid
  case "$server" in
    percore) "$PERCORE" -a 127.0.0.1 -p "$PORT" -c "$OUT/$mode.conf" >"$OUT/$server-$mode-$round.log" 2>&1 & pid=$! ;;
    nats) "$NATS_BIN" -a 127.0.0.1 -p "$PORT" -c "$OUT/$mode.conf" >"$OUT/$server-$mode-$round.log" 2>&1 & pid=$! ;;
  esac
  wait_port
  local before after
  before="$(cpu_seconds "$pid")"
  local result
  result="$("$TOOL" --addr "127.0.0.1:$PORT" --mode "$mode" --secret "$( [ "$mode" = token ] && echo "$TOKEN" || echo 'bench secret')" \
    --seed "$SEED" --creds "$OUT/jwt/user.creds" --workers "$WORKERS" --seconds "$SECONDS_PER_RUN")"
  after="$(cpu_seconds "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rate count
  rate="$(sed -E 's/.*"per_sec":([0-9.]+).*/\1/' <<<"$result")"
  count="$(sed -E 's/.*"handshakes":([0-9]+).*/\1/' <<<"$result")"
  local cpu_us
  cpu_us="$(awk -v a="$before" -v b="$after" -v n="$count" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / n; else print "-" }')"
  echo "$server $mode $round $rate $cpu_us $result" | tee -a "$OUT/results.txt"
}

echo "host: $(nproc) CPUs, kernel $(uname -r); $ROUNDS rounds x ${SECONDS_PER_RUN}s, $WORKERS client threads, bcrypt cost $COST"
echo "server mode round handshakes/s server-cpu-us/handshake raw"
for round in $(seq 1 "$ROUNDS"); do
  for mode in token password nkey jwt; do
    if [ $((round % 2)) = 1 ]; then order="percore nats"; else order="nats percore"; fi
    for server in $order; do run_one "$server" "$mode" "$round"; done
  done
done

echo
echo "median per mode (handshakes/s, server CPU µs per handshake) and ratio percore/nats:"
for mode in token password nkey jwt; do
  p="$(awk -v m="$mode" '$1=="percore" && $2==m { print $4 }' "$OUT/results.txt" | sort -n | awk '{ a[NR]=$1 } END { print a[int((NR+1)/2)] }')"
  n="$(awk -v m="$mode" '$1=="nats" && $2==m { print $4 }' "$OUT/results.txt" | sort -n | awk '{ a[NR]=$1 } END { print a[int((NR+1)/2)] }')"
  pc="$(awk -v m="$mode" '$1=="percore" && $2==m { print $5 }' "$OUT/results.txt" | sort -n | awk '{ a[NR]=$1 } END { print a[int((NR+1)/2)] }')"
  nc="$(awk -v m="$mode" '$1=="nats" && $2==m { print $5 }' "$OUT/results.txt" | sort -n | awk '{ a[NR]=$1 } END { print a[int((NR+1)/2)] }')"
  awk -v m="$mode" -v p="$p" -v n="$n" -v pc="$pc" -v nc="$nc" 'BEGIN { printf "%-9s percore %8.1f/s %7.1f µs   nats %8.1f/s %7.1f µs   rate ratio %.2f  cpu ratio %.2f\n", m, p, pc, n, nc, p / n, pc / nc }'
done
echo "raw results: $OUT/results.txt"
