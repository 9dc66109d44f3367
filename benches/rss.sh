#!/usr/bin/env bash
# Resident memory of a NATS server (VmRSS from /proc/<pid>/status) in three
# states, for A and B servers, each on a fresh server process:
#   idle      - listening, no client
#   conns     - N idle clients (CONNECT + PING/PONG each, then silent)
#   subs      - one client with M subscriptions on distinct subjects
#               (SUBJECT with %d replaced by 0..M-1; default rss.s.%d)
# Per connection = (conns - idle) / N, per subscription = (subs - idle1) / M
# where idle1 is the same process's RSS with that one client connected.
# Raw sockets from python3 (no client library); every step is bounded in time
# and only the servers started here are killed (by pid).
#
# Usage: benches/rss.sh [--a-bin PATH] [--a-args "ARGS"] [--a-name NAME]
#                       [--b-bin PATH] [--b-args "ARGS"] [--b-name NAME]
#                       [--conns N] [--subs M] [--subject FMT] [--subs-only]
#                       [--rounds R] [--json-out FILE]
# The issue-16 figure at scale, side by side (one command):
#   benches/rss.sh --subs 1000000 --subject 'bench.%d.x' --subs-only
# Defaults: A = /usr/sbin/nats-server, B = target/release/percore with its
# default shard count (no --shards), N = 1000, M = 10000, R = 3 (medians over rounds). Servers run as
# `BIN -a 127.0.0.1 -p PORT ARGS`; PORT from RSS_PORT (default 14622).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
exec python3 - "$TARGET" "$@" <<'PY'
import argparse, json, os, shlex, signal, socket, statistics, subprocess, sys, time

target = sys.argv[1]
ap = argparse.ArgumentParser(prog="benches/rss.sh")
ap.add_argument("--a-bin", default="/usr/sbin/nats-server")
ap.add_argument("--a-args", default="")
ap.add_argument("--a-name", default="nats-server")
ap.add_argument("--b-bin", default=os.path.join(target, "release", "percore"))
ap.add_argument("--b-args", default="")
ap.add_argument("--b-name", default="percore")
ap.add_argument("--conns", type=int, default=1000)
ap.add_argument("--subs", type=int, default=10000)
ap.add_argument("--subject", default="rss.s.%d")
ap.add_argument("--subs-only", action="store_true",
                help="skip the idle and connections steps (idle1 still measured)")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--json-out")
opt = ap.parse_args(sys.argv[2:])
PORT = int(os.environ.get("RSS_PORT", "14622"))
DEADLINE = 30.0 + opt.subs / 20000  # seconds per step (1 M subs: 80 s)
SUBJECT = opt.subject.encode()


def listening(port):
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1].endswith(want) and p[3] == "0A":
                return True
    return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid, secs=1.0):
    """RSS after it stops moving (or secs), read the same way for every server."""
    time.sleep(0.3)
    last, t0 = rss_kib(pid), time.time()
    while time.time() - t0 < secs:
        time.sleep(0.2)
        cur = rss_kib(pid)
        if cur == last:
            break
        last = cur
    return rss_kib(pid)


def start(binary, args):
    cmd = [binary, "-a", "127.0.0.1", "-p", str(PORT)] + shlex.split(args)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not listening(PORT):
        if proc.poll() is not None or time.time() - t0 > 10:
            stop(proc)
            raise RuntimeError("server did not listen: %s" % " ".join(cmd))
        time.sleep(0.05)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def read_until(sock, token, deadline):
    buf = b""
    while token not in buf:
        left = deadline - time.time()
        if left <= 0:
            raise RuntimeError("timeout waiting for %r (got %r)" % (token, buf[-200:]))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("server closed the connection (got %r)" % buf[-200:])
        buf += chunk
    return buf


def client(deadline):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    read_until(s, b"\r\n", deadline)  # INFO
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"rss"}\r\nPING\r\n')
    read_until(s, b"PONG\r\n", deadline)
    return s


def one_round(binary, args):
    res = {}
    # idle and N connections
    proc = start(binary, args)
    socks = []
    try:
        if opt.subs_only:
            raise StopIteration
        res["idle_kib"] = settle(proc.pid)
        deadline = time.time() + DEADLINE
        for _ in range(opt.conns):
            socks.append(client(deadline))
        res["conns_kib"] = settle(proc.pid)
    except StopIteration:
        res["idle_kib"] = settle(proc.pid)
        res["conns_kib"] = res["idle_kib"]
    finally:
        for s in socks:
            s.close()
        stop(proc)
    # M subscriptions on one connection
    proc = start(binary, args)
    try:
        deadline = time.time() + DEADLINE
        s = client(deadline)
        res["one_client_kib"] = settle(proc.pid)
        batch = []
        for i in range(opt.subs):
            batch.append(b"SUB %s %d\r\n" % (SUBJECT % i, i + 1))
            if len(batch) == 500:
                s.sendall(b"".join(batch))
                batch = []
        s.sendall(b"".join(batch) + b"PING\r\n")
        read_until(s, b"PONG\r\n", deadline)
        res["subs_kib"] = settle(proc.pid, 1.0 + opt.subs / 200000)
        s.close()
    finally:
        stop(proc)
    res["per_conn_b"] = (res["conns_kib"] - res["idle_kib"]) * 1024 / opt.conns
    res["per_sub_b"] = (res["subs_kib"] - res["one_client_kib"]) * 1024 / opt.subs
    return res


sides = [("a", opt.a_name, opt.a_bin, opt.a_args), ("b", opt.b_name, opt.b_bin, opt.b_args)]
runs = {"a": [], "b": []}
print("rss: %d conns, %d subs (%s), %d rounds, port %d"
      % (0 if opt.subs_only else opt.conns, opt.subs, opt.subject, opt.rounds, PORT))
for r in range(opt.rounds):
    order = sides if r % 2 == 0 else sides[::-1]
    for key, name, binary, args in order:
        res = one_round(binary, args)
        runs[key].append(res)
        print("  round %d %-22s idle %6d KiB  %d conns %7d KiB  %d subs %7d KiB  (%.0f B/conn, %.0f B/sub)"
              % (r + 1, name, res["idle_kib"], opt.conns, res["conns_kib"], opt.subs,
                 res["subs_kib"], res["per_conn_b"], res["per_sub_b"]))

med = {k: {f: statistics.median(x[f] for x in v) for f in v[0]} for k, v in runs.items()}
a, b = med["a"], med["b"]
print()
print("%-24s %14s %14s %7s" % ("median of %d" % opt.rounds, opt.a_name[:14], opt.b_name[:14], "B/A"))
rows = [("idle RSS", "idle_kib", "KiB"),
        ("RSS, %d conns" % opt.conns, "conns_kib", "KiB"),
        ("per connection", "per_conn_b", "B"),
        ("RSS, %d subs" % opt.subs, "subs_kib", "KiB"),
        ("per subscription", "per_sub_b", "B")]
if opt.subs_only:
    rows = [r for r in rows if "conn" not in r[1]]
for label, f, unit in rows:
    ratio = b[f] / a[f] if a[f] > 0 else float("nan")
    print("%-24s %10.0f %-3s %10.0f %-3s %7.3f" % (label, a[f], unit, b[f], unit, ratio))
if opt.json_out:
    with open(opt.json_out, "w") as f:
        json.dump({"a": {"name": opt.a_name, "runs": runs["a"], "median": a},
                   "b": {"name": opt.b_name, "runs": runs["b"], "median": b},
                   "conns": opt.conns, "subs": opt.subs}, f, indent=1)
PY
