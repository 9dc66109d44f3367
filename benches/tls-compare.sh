#!/usr/bin/env bash
# Side-by-side TLS comparison of two NATS servers (A = reference, B =
# candidate), both given the same certificate files (made here with openssl,
# ECDSA P-256 by default, RSA-2048 with --key rsa):
#   - throughput and latency over TLS: pubsub 128 B, pubsub 8 KiB, fan-out 5,
#     fixed-rate latency at 10k msgs/s (percore-bench --tls-ca), a fresh
#     server per measurement, A and B alternating (order flipped each round);
#   - the same latency while 100 new TLS clients per second connect
#     (lat10k-hs100, opt-in: --scenarios): what handshake crypto on the
#     shards costs the steady client's p99;
#   - handshakes per second (tls-handshakes: connect, INFO, handshake,
#     CONNECT+PING/PONG, close, from --hs-threads threads);
#   - RSS per idle TLS connection (python3 ssl clients, VmRSS before/after).
# Prints compare-report's table for the scenarios, then handshakes/s and
# bytes per idle TLS connection (medians, B/A).
#
# Usage:
#   benches/tls-compare.sh [--a-bin PATH] [--a-name NAME] [--b-bin PATH]
#                          [--b-args "ARGS"] [--b-name NAME] [--rounds N]
#                          [--scenarios "pubsub128 pubsub8k fanout5 lat10k"]
#                          [--key ecdsa|rsa] [--conns N] [--hs-threads N]
#                          [--quick] [--profile release|debug] [--no-build]
#                          [--out DIR]
# Defaults: A = /usr/sbin/nats-server, B = target/release/percore (default
# shard count), 3 rounds, 1000 idle connections, 4 handshake threads.
# --quick: every measurement ~1 s and 50 idle connections; it only checks
# that the script runs end to end, its numbers mean nothing. Run the real
# thing on a quiet machine (nothing else on its CPUs).
# Servers run as `BIN -a 127.0.0.1 -p PORT -c CONF ARGS`; PORT from
# TLS_COMPARE_PORT (default 14322). Only processes started here are stopped.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
A_BIN=/usr/sbin/nats-server
A_NAME=""
B_BIN=""
B_ARGS=""
B_NAME=""
ROUNDS=3
SCENARIOS="pubsub128 pubsub8k fanout5 lat10k"
KEY=ecdsa
CONNS=1000
HS_THREADS=4
QUICK=0
PROFILE=release
BUILD=1
OUT=""
PORT=${TLS_COMPARE_PORT:-14322}

while [ $# -gt 0 ]; do
  case "$1" in
    --a-bin) A_BIN="$2"; shift 2 ;;
    --a-name) A_NAME="$2"; shift 2 ;;
    --b-bin) B_BIN="$2"; shift 2 ;;
    --b-args) B_ARGS="$2"; shift 2 ;;
    --b-name) B_NAME="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --key) KEY="$2"; shift 2 ;;
    --conns) CONNS="$2"; shift 2 ;;
    --hs-threads) HS_THREADS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --profile) PROFILE="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "tls-compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET/$PROFILE"
[ -n "$B_BIN" ] || B_BIN="$BIN_DIR/percore"
if [ "$BUILD" = 1 ]; then
  flag=""; [ "$PROFILE" = release ] && flag="--release"
  # shellcheck disable=SC2086
  (cd "$ROOT" && cargo build $flag -q -p percore -p percore-benches)
fi
BENCH="$BIN_DIR/percore-bench"
HANDSHAKES="$BIN_DIR/tls-handshakes"
REPORT="$BIN_DIR/compare-report"
for b in "$A_BIN" "$B_BIN" "$BENCH" "$HANDSHAKES" "$REPORT"; do
  [ -x "$b" ] || { echo "tls-compare.sh: not executable: $b" >&2; exit 2; }
done
name_of() { local v; v="$("$1" --version 2>/dev/null | head -1 || true)"; echo "${v:-$(basename "$1")}"; }
[ -n "$A_NAME" ] || A_NAME="$(name_of "$A_BIN")"
[ -n "$B_NAME" ] || B_NAME="$(name_of "$B_BIN")"
[ -n "$OUT" ] || OUT="$(mktemp -d /tmp/percore-tls-compare.XXXXXX)"
mkdir -p "$OUT/pki"
printf '%s\n' $SCENARIOS > "$OUT/scenarios.txt"

# --- the certificate files both servers use --------------------------------
PKI="$OUT/pki"
case "$KEY" in
  ecdsa) NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa) NEWKEY=(-newkey rsa:2048) ;;
  *) echo "tls-compare.sh: --key ecdsa|rsa" >&2; exit 2 ;;
esac
openssl req -x509 "${NEWKEY[@]}" -nodes -days 7 -subj "/CN=percore bench CA" \
  -keyout "$PKI/ca-key.pem" -out "$PKI/ca.pem" 2>/dev/null
openssl req "${NEWKEY[@]}" -nodes -subj "/CN=127.0.0.1" \
  -keyout "$PKI/server-key.pem" -out "$PKI/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$PKI/ext.cnf"
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca-key.pem" \
  -CAcreateserial -days 7 -extfile "$PKI/ext.cnf" -out "$PKI/server.pem" 2>/dev/null
CONF="$OUT/tls.conf"
cat > "$CONF" <<EOF
tls {
  cert_file: "$PKI/server.pem"
  key_file: "$PKI/server-key.pem"
  timeout: 5
}
EOF

if [ "$QUICK" = 1 ]; then
  D=1s; W=0.2s; HS_SECS=1; [ "$CONNS" = 1000 ] && CONNS=50
else
  D=10s; W=1s; HS_SECS=5
fi
args_for() {
  case "$1" in
    pubsub128) echo "pubsub --size 128 --msgs 2M --duration $D" ;;
    pubsub8k)  echo "pubsub --size 8KiB --msgs 200k --duration $D" ;;
    fanout5)   echo "fanout --sub 5 --size 128 --msgs 500k --duration $D" ;;
    lat10k|lat10k-hs100) echo "latency --rate 10000 --size 128 --duration $D --warmup $W" ;;
    *) echo "tls-compare.sh: unknown scenario $1" >&2; return 1 ;;
  esac
}

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# A listening socket on $PORT, read from /proc/net/tcp (a probe connection
# would shift percore's connection-to-shard placement).
wait_port() {
  local hex
  hex="$(printf ':%04X ' "$PORT")"
  for _ in $(seq 1 200); do
    if awk -v p="$hex" '$4 == "0A" && index($2 " ", p) { found = 1 } END { exit !found }' /proc/net/tcp; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

cpu_seconds() {
  local stat rest
  stat="$(cat "/proc/$1/stat")"
  rest="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $rest
  echo "${12} ${13} $(getconf CLK_TCK)" | awk '{printf "%.3f\n", ($1 + $2) / $3}'
}

# start_server SIDE LOGFILE: sets SERVER_PID.
start_server() {
  local bin args
  if [ "$1" = a ]; then bin="$A_BIN"; args=""; else bin="$B_BIN"; args="$B_ARGS"; fi
  # shellcheck disable=SC2086
  "$bin" -a 127.0.0.1 -p "$PORT" -c "$CONF" $args > "$2" 2>&1 &
  SERVER_PID=$!
  wait_port || { echo "tls-compare.sh: $bin did not listen on $PORT (see $2)" >&2; cleanup; SERVER_PID=""; return 1; }
}

stop_server() { cleanup; SERVER_PID=""; }

# measure SIDE SCENARIO ROUND
measure() {
  local side="$1" scen="$2" round="$3" rc=0
  start_server "$side" "$OUT/$scen.$side.$round.server.log" || return 1
  local background=""
  if [ "$scen" = lat10k-hs100 ]; then
    timeout 120 "$HANDSHAKES" --server "127.0.0.1:$PORT" --tls-ca "$PKI/ca.pem" --threads 2 \
        --rate 100 --duration "${D%s}" > "$OUT/$scen.$side.$round.handshakes.json" 2>&1 &
    background=$!
  fi
  # shellcheck disable=SC2046
  timeout 120 "$BENCH" $(args_for "$scen") -q --server "127.0.0.1:$PORT" --tls-ca "$PKI/ca.pem" \
      --json-out "$OUT/$scen.$side.$round.json" > "$OUT/$scen.$side.$round.txt" 2>&1 || rc=$?
  [ -z "$background" ] || wait "$background" || true
  cpu_seconds "$SERVER_PID" > "$OUT/$scen.$side.$round.cpu" || true
  stop_server
  printf '  %-13s %s round %s: %s\n' "$scen" "$side" "$round" "$(tail -1 "$OUT/$scen.$side.$round.txt")"
  [ "$rc" = 0 ] || echo "  (percore-bench exit $rc, see $OUT/$scen.$side.$round.txt)"
}

# handshakes SIDE ROUND
handshakes() {
  local side="$1" round="$2"
  start_server "$side" "$OUT/handshakes.$side.$round.server.log" || return 1
  timeout 60 "$HANDSHAKES" --server "127.0.0.1:$PORT" --tls-ca "$PKI/ca.pem" \
      --threads "$HS_THREADS" --duration "$HS_SECS" > "$OUT/handshakes.$side.$round.json" 2>&1 || true
  stop_server
  printf '  %-13s %s round %s: %s\n' handshakes "$side" "$round" "$(tail -1 "$OUT/handshakes.$side.$round.json")"
}

# rss SIDE ROUND: bytes per idle TLS connection.
rss() {
  local side="$1" round="$2"
  start_server "$side" "$OUT/rss.$side.$round.server.log" || return 1
  python3 - "$SERVER_PID" "$PORT" "$CONNS" "$PKI/ca.pem" > "$OUT/rss.$side.$round.json" <<'PY' || true
import json, socket, ssl, sys, time
pid, port, conns, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def settle(secs=1.0):
    time.sleep(0.3)
    last, t0 = rss_kib(), time.time()
    while time.time() - t0 < secs:
        time.sleep(0.2)
        cur = rss_kib()
        if cur == last:
            break
        last = cur
    return rss_kib()

def read_until(sock, token):
    buf = b""
    while token not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed (got %r)" % buf[-200:])
        buf += chunk
    return buf

ctx = ssl.create_default_context(cafile=ca)
def client():
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    info = b""
    while not info.endswith(b"\r\n"):   # INFO in plaintext, byte by byte
        b = raw.recv(1)
        if not b:
            raise RuntimeError("closed before INFO")
        info += b
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"rss"}\r\nPING\r\n')
    read_until(s, b"PONG\r\n")
    return s

idle = settle()
socks = [client() for _ in range(conns)]
loaded = settle()
print(json.dumps({"idle_kib": idle, "conns_kib": loaded, "conns": conns,
                  "per_conn_b": (loaded - idle) * 1024 / conns}))
for s in socks:
    s.close()
PY
  stop_server
  printf '  %-13s %s round %s: %s\n' rss "$side" "$round" "$(tail -1 "$OUT/rss.$side.$round.json")"
}

echo "A: $A_NAME ($A_BIN -c $CONF)"
echo "B: $B_NAME ($B_BIN -c $CONF $B_ARGS)"
echo "key: $KEY   rounds: $ROUNDS   results: $OUT$([ "$QUICK" = 1 ] && echo '   (--quick: numbers mean nothing)')"
echo "host: $(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  if [ $((round % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for scen in $SCENARIOS; do
    for side in $order; do measure "$side" "$scen" "$round" || true; done
  done
  for side in $order; do handshakes "$side" "$round" || true; done
  for side in $order; do rss "$side" "$round" || true; done
done

"$REPORT" "$OUT" --a-name "$A_NAME (TLS)" --b-name "$B_NAME (TLS)" || true

python3 - "$OUT" "$ROUNDS" "$A_NAME" "$B_NAME" <<'PY'
import json, os, statistics, sys
out, rounds, a_name, b_name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def values(kind, side, field):
    got = []
    for r in range(1, rounds + 1):
        try:
            with open(os.path.join(out, "%s.%s.%d.json" % (kind, side, r))) as f:
                got.append(json.loads(f.read().strip().splitlines()[-1])[field])
        except (OSError, ValueError, KeyError, IndexError):
            pass
    return got
print()
print("%-28s %14s %14s %7s" % ("median of %d" % rounds, a_name[:14], b_name[:14], "B/A"))
for label, kind, field in [("TLS handshakes/s", "handshakes", "per_sec"),
                           ("RSS per idle TLS conn (B)", "rss", "per_conn_b")]:
    a, b = values(kind, "a", field), values(kind, "b", field)
    if not a or not b:
        print("%-28s %14s %14s" % (label, "n/a", "n/a"))
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    print("%-28s %14.1f %14.1f %7.3f" % (label, ma, mb, mb / ma if ma else float("nan")))
PY
