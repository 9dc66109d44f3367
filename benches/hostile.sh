#!/usr/bin/env bash
# Hostile clients against two NATS servers, side by side: per mode, thousands
# of connections misbehave (benches/src/bin/hostile-clients.rs) while a
# healthy publisher/subscriber pair runs at a fixed rate (percore-bench
# latency). Per mode and server: peak RSS (VmHWM of a fresh server process),
# the pair's loss and p99, and the /connz?state=closed reasons counted.
#
# Modes: quiet (no hostile clients: the pair's baseline), no-connect,
# dribble, stalled-payload, random, sub-noread, churn (see hostile-clients);
# opt-in (only through --modes): cpu-hog, no connections but N spinning
# threads (N = --hog-threads, default 2, the CPUs of this box) at the same
# nice, the control for what CPU sharing alone does to the pair.
#
# Usage: benches/hostile.sh [--modes m1,m2,...] [--conns N] [--noread-conns N]
#          [--churn-threads N] [--hog-threads N] [--duration SECS] [--warmup SECS] [--rate R]
#          [--size BYTES] [--a-bin PATH] [--a-args "ARGS"] [--a-name NAME]
#          [--b-bin PATH] [--b-args "ARGS"] [--b-name NAME] [--bench-dir DIR]
#          [--json-out FILE] [--hostile-nice N] [--hostile-idle]
#          [--server-cpus LIST] [--load-cpus LIST]
# Defaults: every mode, N = 2000 (sub-noread: 100: each gets the pair's whole
# stream), 8 churn threads, 10 s measured after 2 s warm-up, 2000 msgs/s of
# 128 B; A = /usr/sbin/nats-server, B = target/release/percore (default shard
# count); tools from target/release (built first unless NO_BUILD=1).
# Servers run as `BIN -a 127.0.0.1 -p PORT -m MPORT ARGS`, PORT from
# HOSTILE_PORT (default 14722), MPORT = PORT + 1. Each mode takes about
# warm-up + duration + 10 s per server. Open files: N + 64 for the tool, N +
# a few for each server (the shell's limit applies to both; 20 000 is enough
# for N up to about 9000). Only processes started here are stopped, by pid.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "hostile: building release binaries" >&2
  (cd "$ROOT" && cargo build --release -q -p percore-benches -p percore)
fi
exec python3 - "$TARGET" "$@" <<'PY'
import argparse, collections, json, os, shlex, signal, subprocess, sys, tempfile, time, urllib.request

target = sys.argv[1]
ALL = ["quiet", "no-connect", "dribble", "stalled-payload", "random", "sub-noread", "churn"]
OPT_IN = ["cpu-hog"]
ap = argparse.ArgumentParser(prog="benches/hostile.sh")
ap.add_argument("--modes", default=",".join(ALL))
ap.add_argument("--conns", type=int, default=2000)
ap.add_argument("--noread-conns", type=int, default=100)
ap.add_argument("--churn-threads", type=int, default=8)
ap.add_argument("--hog-threads", type=int, default=2)
ap.add_argument("--duration", type=float, default=10.0)
ap.add_argument("--warmup", type=float, default=2.0)
ap.add_argument("--rate", type=int, default=2000)
ap.add_argument("--size", type=int, default=128)
ap.add_argument("--a-bin", default="/usr/sbin/nats-server")
ap.add_argument("--a-args", default="")
ap.add_argument("--a-name", default="nats-server")
ap.add_argument("--b-bin", default=os.path.join(target, "release", "percore"))
ap.add_argument("--b-args", default="")
ap.add_argument("--b-name", default="percore")
ap.add_argument("--bench-dir", default=os.path.join(target, "release"))
ap.add_argument("--json-out")
ap.add_argument("--hostile-nice", type=int, default=0,
                help="run the hostile tool at this nice level (19: it takes only CPU the servers leave)")
ap.add_argument("--hostile-idle", action="store_true",
                help="run the hostile tool under SCHED_IDLE (chrt --idle 0): a woken server or pair "
                     "thread preempts it at once, as a remote attacker's CPU would not compete")
ap.add_argument("--server-cpus",
                help="run each server on these CPUs only (taskset -c LIST): with --load-cpus, the "
                     "servers and the load (tool and pair) stop sharing CPUs")
ap.add_argument("--load-cpus", help="run the hostile tool and the pair on these CPUs only (taskset -c LIST)")
opt = ap.parse_args(sys.argv[2:])
SERVER_PIN = ["taskset", "-c", opt.server_cpus] if opt.server_cpus else []
LOAD_PIN = ["taskset", "-c", opt.load_cpus] if opt.load_cpus else []
modes = [m for m in opt.modes.split(",") if m]
for m in modes:
    if m not in ALL + OPT_IN:
        sys.exit("unknown mode %s (modes: %s)" % (m, ", ".join(ALL + OPT_IN)))
PORT = int(os.environ.get("HOSTILE_PORT", "14722"))
MPORT = PORT + 1
URL = "nats://127.0.0.1:%d" % PORT
BENCH = os.path.join(opt.bench_dir, "percore-bench")
HOSTILE = os.path.join(opt.bench_dir, "hostile-clients")
tmp = tempfile.mkdtemp(prefix="percore-hostile.")


def listening(port):
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1].endswith(want) and p[3] == "0A":
                return True
    return False


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def start(binary, args, log):
    cmd = [binary, "-a", "127.0.0.1", "-p", str(PORT), "-m", str(MPORT)] + shlex.split(args)
    proc = subprocess.Popen(SERVER_PIN + cmd, stdout=subprocess.DEVNULL, stderr=log)
    t0 = time.time()
    while not (listening(PORT) and listening(MPORT)):
        if proc.poll() is not None or time.time() - t0 > 10:
            stop(proc)
            raise RuntimeError("server did not listen: %s" % " ".join(cmd))
        time.sleep(0.05)
    return proc


def stop(proc, wait=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def monitor(path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (MPORT, path), timeout=10) as r:
        return json.load(r)


def one(name, binary, args, mode):
    log = open(os.path.join(tmp, "%s-%s.log" % (name, mode)), "w")
    server = start(binary, args, log)
    res = {"mode": mode}
    hostile = None
    try:
        idle_kib = status_kib(server.pid, "VmRSS")
        if mode != "quiet":
            conns = {"sub-noread": opt.noread_conns, "churn": opt.churn_threads,
                     "cpu-hog": opt.hog_threads}.get(mode, opt.conns)
            # Long enough to cover setup, the pair's warm-up and run, and its fence.
            span = opt.warmup + opt.duration + 8
            nice = ["nice", "-n", str(opt.hostile_nice)] if opt.hostile_nice else []
            if opt.hostile_idle:
                nice = ["chrt", "--idle", "0"] + nice
            hostile = subprocess.Popen(
                LOAD_PIN + nice + [HOSTILE, mode, "-s", URL, "--conns", str(conns), "--duration", str(span)],
                stdout=subprocess.PIPE, stderr=log, text=True)
            res["hostile_conns"] = conns
            # Let the held connections open before the pair starts.
            t0 = time.time()
            while mode not in ("churn", "random", "cpu-hog") and time.time() - t0 < 20 and hostile.poll() is None:
                if monitor("/varz").get("connections", 0) >= conns * 0.95:
                    break
                time.sleep(0.2)
        out = os.path.join(tmp, "%s-%s.json" % (name, mode))
        cpu_before = cpu_seconds(server.pid)
        pair = subprocess.Popen(
            LOAD_PIN + [BENCH, "latency", "-s", URL, "--rate", str(opt.rate), "--size", str(opt.size),
             "--duration", "%gs" % opt.duration, "--warmup", "%gs" % opt.warmup,
             "--subject", "healthy.pair", "-q", "--json-out", out,
             "--timeout", "%gs" % (opt.warmup + opt.duration + 60)],
            stdout=subprocess.DEVNULL, stderr=log)
        peak = idle_kib
        while pair.poll() is None:
            peak = max(peak, status_kib(server.pid, "VmRSS"))
            time.sleep(0.2)
        # Server CPU over the pair's whole run (warm-up included), as a
        # share of one CPU.
        res["server_cpu"] = (cpu_seconds(server.pid) - cpu_before) / (opt.warmup + opt.duration)
        # The server's own closes, while the hostile connections are still
        # held (their teardown afterwards would add only "Client Closed"
        # and "Read Error").
        closed = monitor("/connz?state=closed&limit=100000").get("connections") or []
        res["closed"] = dict(collections.Counter(c.get("reason", "") for c in closed))
        res["slow_consumers"] = monitor("/varz").get("slow_consumers", 0)
        res["hostile_still_running"] = hostile is not None and hostile.poll() is None
        if hostile is not None:
            try:
                text, _ = hostile.communicate(timeout=opt.warmup + opt.duration + 30)
                res["hostile"] = json.loads(text.strip().splitlines()[-1]) if text.strip() else None
            except subprocess.TimeoutExpired:
                hostile.kill()
                hostile.wait()
                res["hostile"] = None
        res["rss_idle_mib"] = idle_kib / 1024
        res["rss_peak_mib"] = max(peak, status_kib(server.pid, "VmHWM")) / 1024
        try:
            with open(out) as f:
                s = json.load(f)
            res["sent"], res["lost"] = s["sent"], s["lost"]
            res["p99_us"] = (s.get("latency_us") or {}).get("p99")
            res["max_us"] = (s.get("latency_us") or {}).get("max")
            res["pair_ok"] = s["ok"]
        except (OSError, ValueError, KeyError):
            res["sent"], res["lost"], res["p99_us"], res["pair_ok"] = 0, None, None, False
        res["server_alive"] = server.poll() is None
    finally:
        if hostile is not None and hostile.poll() is None:
            hostile.kill()
            hostile.wait()
        stop(server)
        log.close()
    return res


def reasons(d):
    if not d:
        return "-"
    return ", ".join("%s %d" % (k, v) for k, v in sorted(d.items(), key=lambda kv: -kv[1]))


def cell(r):
    p99 = "%.0f" % r["p99_us"] if r.get("p99_us") is not None else "?"
    worst = "%.1f" % (r["max_us"] / 1000) if r.get("max_us") is not None else "?"
    lost = r["lost"] if r.get("lost") is not None else "?"
    alive = "" if r.get("server_alive") else " DIED"
    return "%7.1f MiB  lost %-4s p99 %7s us  max %5s ms  cpu %3.0f%%%s" % (
        r["rss_peak_mib"], lost, p99, worst, 100 * r.get("server_cpu", 0), alive)


sides = [(opt.a_name, opt.a_bin, opt.a_args), (opt.b_name, opt.b_bin, opt.b_args)]
results = {n: {} for n, _, _ in sides}
print("hostile: modes %s; %d conns (sub-noread %d, churn %d threads, nice %d); pair %d msgs/s x %d B, %gs + %gs warm-up; port %d; logs in %s"
      % (",".join(modes), opt.conns, opt.noread_conns, opt.churn_threads, opt.hostile_nice, opt.rate, opt.size,
         opt.duration, opt.warmup, PORT, tmp), flush=True)
for mode in modes:
    for name, binary, args in sides:
        r = one(name, binary, args, mode)
        results[name][mode] = r
        h = r.get("hostile") or {}
        print("  %-16s %-12s %s | closed: %s | tool: opened %s, closed by server %s%s" % (
            mode, name, cell(r), reasons(r["closed"]), h.get("opened", "-"), h.get("closed_by_server", "-"),
            "" if r.get("hostile_still_running", True) else " (tool ended before the pair: raise --duration)"), flush=True)

print()
print("%-16s | %-66s | %-66s" % ("mode", opt.a_name, opt.b_name))
for mode in modes:
    print("%-16s | %-66s | %-66s" % (mode, cell(results[opt.a_name][mode]), cell(results[opt.b_name][mode])))
print()
print("closed reasons (/connz?state=closed, while the hostile connections were held):")
for mode in modes:
    for name, _, _ in sides:
        print("  %-16s %-12s %s" % (mode, name, reasons(results[name][mode]["closed"])))
if opt.json_out:
    with open(opt.json_out, "w") as f:
        json.dump({"options": vars(opt), "results": results}, f, indent=1)
bad = [(n, m) for n in results for m, r in results[n].items() if not r.get("server_alive")]
if bad:
    print("servers that died: %s" % bad)
    sys.exit(1)
PY
