#!/usr/bin/env bash
# Does login crypto stall the other connections? Fixed-rate latency of a
# publisher/subscriber pair while other clients log in, against the same
# run without logins; percore and nats-server alternating with one config
# file.
#
# Usage: benches/auth-stall.sh [--rounds N] [--logins-per-sec R] [--cost C]
#                              [--rate MSGS] [--duration SECS]
#                              [--login bcrypt|jwt] [--no-build]
# Defaults: 3 rounds, 10 logins/s, bcrypt cost 10, 10000 msgs/s of 128 B for
# 8 s after 2 s of warm-up, bcrypt logins. With bcrypt the bench clients log
# in as `no_auth_user` (plain, fast) and the login clients as a bcrypt user
# (python3's crypt module makes the hash). With jwt the server runs in
# operator mode (`handshake-rate --operator-setup`: MEMORY resolver), the
# bench clients and the logins use the same user's `.creds` (a JWT and a
# nonce signature each: the server verifies two Ed25519 signatures per
# login), and `handshake-rate --per-sec` paces the logins.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=3; LOGINS=10; COST=10; RATE=10000; DURATION=8; BUILD=1; LOGIN=bcrypt
NATS_BIN="${NATS_BIN:-/usr/sbin/nats-server}"
PORT="${AUTH_STALL_PORT:-14622}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --logins-per-sec) LOGINS="$2"; shift 2 ;;
    --cost) COST="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --login) LOGIN="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "auth-stall.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ "$BUILD" = 1 ] && (cd "$ROOT" && cargo build --release -q -p percore -p percore-benches)
BENCH="$TARGET/release/percore-bench"
HANDSHAKES="$TARGET/release/handshake-rate"
PERCORE="$TARGET/release/percore"
OUT="$(mktemp -d /tmp/percore-auth-stall.XXXXXX)"

BENCH_CREDS=()
case "$LOGIN" in
  bcrypt)
    HASH="$(python3 -c "import crypt; print(crypt.crypt('login secret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**$COST)))" 2>/dev/null)"
    cat > "$OUT/auth.conf" <<CONF
authorization {
  users: [
    { user: bench, password: bench }
    { user: login, password: "$HASH" }
  ]
}
no_auth_user: bench
CONF
    ;;
  jwt)
    "$HANDSHAKES" --operator-setup "$OUT/jwt"
    cp "$OUT/jwt/server.conf" "$OUT/auth.conf"
    BENCH_CREDS=(--creds "$OUT/jwt/user.creds")
    ;;
  *) echo "auth-stall.sh: --login bcrypt or jwt" >&2; exit 2 ;;
esac

# Logs in as `login` LOGINS times a second for SECS seconds, each login on
# its own thread (a slow answer does not slow the pace); prints how many
# got their PONG.
cat > "$OUT/logins.py" <<'PY'
import socket, sys, threading, time
port, rate, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ok = [0]; lock = threading.Lock()
def login():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.recv(4096)
        s.sendall(b'CONNECT {"verbose":false,"user":"login","pass":"login secret"}\r\nPING\r\n')
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk: break
            got += chunk
        if got.startswith(b"PONG"):
            with lock: ok[0] += 1
        s.close()
    except OSError:
        pass
start = time.monotonic(); n = 0; threads = []
while time.monotonic() - start < secs:
    t = threading.Thread(target=login); t.start(); threads.append(t); n += 1
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
for t in threads: t.join()
print(f"{ok[0]} {n}")
PY

run() { # name bin mode round
  local name="$1" bin="$2" mode="$3" round="$4"
  "$bin" -a 127.0.0.1 -p "$PORT" -c "$OUT/auth.conf" >"$OUT/$name-$mode-$round.log" 2>&1 &
  local server=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
  local logins=""
  if [ "$mode" = logins ] && [ "$LOGIN" = bcrypt ]; then
    python3 "$OUT/logins.py" "$PORT" "$LOGINS" "$((DURATION + 2))" >"$OUT/$name-logins-$round.txt" &
    logins=$!
  elif [ "$mode" = logins ]; then
    # "ok sent", as logins.py prints it.
    "$HANDSHAKES" --addr "127.0.0.1:$PORT" --mode jwt --creds "$OUT/jwt/user.creds" \
      --per-sec "$LOGINS" --workers 8 --seconds "$((DURATION + 2))" \
      | sed -E 's/.*"handshakes":([0-9]+),"failed":([0-9]+).*/\1 \1+\2/' >"$OUT/$name-logins-$round.txt" &
    logins=$!
  fi
  "$BENCH" latency -q --server "127.0.0.1:$PORT" "${BENCH_CREDS[@]}" --rate "$RATE" --size 128 \
    --duration "${DURATION}s" --warmup 2s --json-out "$OUT/$name-$mode-$round.json" >/dev/null || true
  [ -n "$logins" ] && wait "$logins"
  kill "$server"; wait "$server" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
  for name in nats percore; do
    bin="$NATS_BIN"; [ "$name" = percore ] && bin="$PERCORE"
    for mode in quiet logins; do
      echo "round $round: $name $mode"
      run "$name" "$bin" "$mode" "$round"
    done
  done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
def lat(name, mode, r):
    j = json.load(open(f"{out}/{name}-{mode}-{r}.json"))
    l = j["latency_us"]
    return l["p50"], l["p99"]
print(f"{'server':8} {'mode':7} {'p50 µs':>8} {'p99 µs':>8} {'logins ok/sent':>15}")
for name in ["nats", "percore"]:
    p99 = {}
    for mode in ["quiet", "logins"]:
        vals = [lat(name, mode, r) for r in range(1, rounds + 1)]
        p50 = statistics.median(v[0] for v in vals); p99[mode] = statistics.median(v[1] for v in vals)
        logins = ""
        if mode == "logins":
            pairs = [open(f"{out}/{name}-logins-{r}.txt").read().split() for r in range(1, rounds + 1)]
            logins = " ".join(f"{a}/{b}" for a, b in pairs)
        print(f"{name:8} {mode:7} {p50:8.1f} {p99[mode]:8.1f} {logins:>15}")
    print(f"{name:8} p99 with logins / quiet: {p99['logins'] / p99['quiet']:.2f}")
print(f"(medians of {rounds} rounds; files in {out})")
PY
