//! `percore-bench`: NATS load generator modelled on `nats bench`.
//!
//! Exit status: 0 when everything sent was received without errors, 1 when a
//! run lost messages or saw errors (the last line says which), 2 when the run
//! could not start (bad arguments, no server).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use percore_benches::latency;
use percore_benches::report;
use percore_benches::scenario::{self, Config, Mode};
use percore_benches::soak::{self, run::SoakConfig};

#[derive(Parser, Debug)]
#[command(
    name = "percore-bench",
    about = "NATS load generator: throughput, fan-out, queue groups, request/reply, fixed-rate latency and soak",
    after_help = "Examples:\n  percore-bench pubsub --size 16 --msgs 2000000\n  percore-bench fanout --sub 5\n  percore-bench latency --rate 20000 --duration 20s --warmup 5s --hist-out lat.hgrm --json-out lat.json\n  percore-bench reqrep --msgs 50000\n  percore-bench latency --rate 10000 --idle-conns 1000\n  percore-bench latency --rate 10000 --slow-subs 1 --slow-rate 256KiB\n  percore-bench soak --rate 20000 --duration 180s --interval 20s --churn 10 --csv-out latency.csv"
)]
struct Args {
    /// What to measure.
    #[arg(value_enum)]
    mode: Mode,
    /// Server URL.
    #[arg(long, short = 's', default_value = "nats://127.0.0.1:4222")]
    server: String,
    /// Server URL for the subscribers and responders, when it is not
    /// --server (a cluster run: publishers on one node, subscribers on
    /// another).
    #[arg(long)]
    sub_server: Option<String>,
    /// Once the subscribers are in place, wait this long before publishing:
    /// on another node, their interest must cross the route first.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    interest_wait: Duration,
    /// Subject to publish on.
    #[arg(long, default_value = "percore.bench")]
    subject: String,
    /// Messages to publish over all publishers (e.g. 1000000, 1M, 500k).
    /// Default: 1M in closed loop; open loop: rate x duration.
    #[arg(long, value_parser = parse_count)]
    msgs: Option<u64>,
    /// Payload size in bytes (e.g. 16, 128, 8KiB).
    #[arg(long, default_value = "128", value_parser = parse_size)]
    size: usize,
    /// Publishing connections (requesters in reqrep).
    #[arg(long = "pub", default_value_t = 1)]
    pubs: usize,
    /// Subscribing connections (default: fanout 5, queue 4, others 1).
    #[arg(long = "sub")]
    subs: Option<usize>,
    /// Queue group name for subscribers (queue/reqrep modes always use one).
    #[arg(long)]
    queue: Option<String>,
    /// Measured duration (e.g. 10s, 500ms); closed loop stops at whichever
    /// of --msgs / --duration comes first. Latency mode default: 10s.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Warm-up before measuring (default 1s in latency mode, else 0).
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Fixed publishing rate in msgs/s over all publishers, open loop;
    /// 0 = as fast as possible. Latency mode default: 10000.
    #[arg(long)]
    rate: Option<f64>,
    /// CPUs to pin client threads to, round robin (e.g. "1" or "0,1" or "0-3").
    #[arg(long, value_parser = parse_cpus)]
    pin: Option<CpuList>,
    /// Write the latency percentile distribution (.hgrm); also writes
    /// <stem>.service.hgrm and the interval log <stem>.hlog beside it.
    #[arg(long)]
    hist_out: Option<PathBuf>,
    /// Write the JSON summary here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// After the final PING/PONG fence, wait up to this long for stragglers.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    settle: Duration,
    /// Hard limit for the whole run (not soak: it ends at --duration,
    /// default 3600s there, and every wait inside it is bounded).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    timeout: Duration,
    /// No periodic progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Extra connections opened after the measured ones and held idle for
    /// the whole run (CONNECT and one PING/PONG, then only PONGs to server
    /// PINGs); any the server drops are reported, without failing the run.
    #[arg(long, default_value_t = 0)]
    idle_conns: usize,
    /// Extra subscribers on --subject, opened after the measured ones, that
    /// read only --slow-rate bytes/s each. Not measured and not counted: the
    /// server may cut them off as slow consumers, which is reported, not a failure.
    #[arg(long, default_value_t = 0)]
    slow_subs: usize,
    /// Read rate of each slow subscriber, bytes per second (e.g. 256KiB, 64KiB).
    #[arg(long, default_value = "256KiB", value_parser = parse_size)]
    slow_rate: usize,
    /// Connect with TLS (INFO, then the handshake, as nats-server 2.9),
    /// trusting the CA certificate(s) in this PEM file.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Log every connection in with this `.creds` file (user JWT and NKey
    /// seed; operator mode), signing each server's nonce.
    #[arg(long)]
    creds: Option<PathBuf>,
    /// Soak: churn clients started per second (connect, subscribe, publish,
    /// unsubscribe, disconnect); 0 = none.
    #[arg(long, default_value_t = 10.0)]
    churn: f64,
    /// Soak: churn cycles in flight at most.
    #[arg(long, default_value_t = 4)]
    churn_concurrency: usize,
    /// Soak: one row (and CSV line) per interval.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// Soak: append each interval's row to this CSV file.
    #[arg(long)]
    csv_out: Option<PathBuf>,
}

fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (&t[..], 1),
    };
    num.parse::<f64>()
        .map(|v| (v * mult as f64).round() as u64)
        .map_err(|_| format!("not a count: {s}"))
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t
        .strip_suffix("kib")
        .or_else(|| t.strip_suffix("kb"))
        .or_else(|| t.strip_suffix('k'))
    {
        (n.to_string(), 1024)
    } else if let Some(n) = t
        .strip_suffix("mib")
        .or_else(|| t.strip_suffix("mb"))
        .or_else(|| t.strip_suffix('m'))
    {
        (n.to_string(), 1024 * 1024)
    } else {
        (t.strip_suffix('b').unwrap_or(&t).to_string(), 1)
    };
    num.trim()
        .parse::<usize>()
        .map(|v| v * mult)
        .map_err(|_| format!("not a size: {s}"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("unknown duration unit in {s} (use ms, s, m)")),
    };
    if !(0.0..1e7).contains(&secs) {
        return Err(format!("duration out of range: {s}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A parsed `--pin` list. A newtype, because clap reads `Option<Vec<T>>` as
/// "several values of T" and would call the parser per element.
#[derive(Debug, Clone, PartialEq)]
struct CpuList(Vec<usize>);

fn parse_cpus(s: &str) -> Result<CpuList, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list: {s}");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    Ok(CpuList(out))
}

fn config(a: &Args) -> Config {
    let latency_mode = a.mode == Mode::Latency;
    let subs = a.subs.unwrap_or(match a.mode {
        Mode::Fanout => 5,
        Mode::Queue => 4,
        _ => 1,
    });
    let rate = a.rate.unwrap_or(if latency_mode { 10_000.0 } else { 0.0 });
    let duration = a
        .duration
        .or((rate > 0.0 && a.msgs.is_none()).then_some(Duration::from_secs(10)));
    Config {
        mode: a.mode,
        server: a.server.clone(),
        sub_server: a.sub_server.clone(),
        interest_wait: a.interest_wait,
        subject: a.subject.clone(),
        msgs: a.msgs,
        size: a.size,
        pubs: if a.mode == Mode::Fanout { 1 } else { a.pubs },
        subs,
        queue: a.queue.clone(),
        duration,
        warmup: a.warmup.unwrap_or(if latency_mode {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        }),
        rate,
        pin: a.pin.clone().map(|c| c.0).unwrap_or_default(),
        settle: a.settle,
        timeout: a.timeout,
        progress: !a.quiet,
        idle_conns: a.idle_conns,
        slow_subs: a.slow_subs,
        slow_rate: a.slow_rate as u64,
    }
}

/// `lat.hgrm` -> `lat.service.hgrm` / `lat.hlog`.
fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    p.with_file_name(format!("{stem}{suffix}"))
}

/// `soak`: its own runner and report (rows as it goes, totals at the end).
fn soak(a: &Args) -> ExitCode {
    let cfg = SoakConfig {
        server: a.server.clone(),
        subject: a.subject.clone(),
        size: a.size,
        rate: a.rate.unwrap_or(0.0),
        duration: a.duration.unwrap_or(Duration::from_secs(3600)),
        interval: a.interval,
        churn: a.churn,
        churn_concurrency: a.churn_concurrency,
        csv_out: a.csv_out.clone(),
    };
    match soak::run::run(&cfg) {
        Ok(o) => {
            print!("{}", o.text());
            if o.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("percore-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(ca) = &args.tls_ca {
        if let Err(e) = percore_benches::tls::enable(ca) {
            eprintln!("percore-bench: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.creds {
        if let Err(e) = percore_benches::creds::enable(path) {
            eprintln!("percore-bench: {e}");
            return ExitCode::from(2);
        }
    }
    if args.mode == Mode::Soak {
        return soak(&args);
    }
    let cfg = config(&args);
    let outcome = match scenario::run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("percore-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let summary = report::summarize(&cfg, &outcome);
    let mut io_failed = false;
    if let Some(path) = &args.hist_out {
        match &outcome.latency {
            Some(c) => {
                let r = latency::write_hgrm_file(path, &c.corrected)
                    .and_then(|_| latency::write_hgrm_file(&sibling(path, ".service.hgrm"), &c.service))
                    .and_then(|_| latency::write_interval_log(&sibling(path, ".hlog"), outcome.started_at, c));
                if let Err(e) = r {
                    eprintln!("percore-bench: writing {}: {e}", path.display());
                    io_failed = true;
                }
            }
            None => eprintln!(
                "percore-bench: --hist-out ignored: no latency recorded (use latency mode, --rate, or reqrep)"
            ),
        }
    }
    if let Some(path) = &args.json_out {
        let r = serde_json::to_string_pretty(&summary)
            .map_err(std::io::Error::other)
            .and_then(|s| std::fs::write(path, s + "\n"));
        if let Err(e) = r {
            eprintln!("percore-bench: writing {}: {e}", path.display());
            io_failed = true;
        }
    }
    print!("{}", report::text(&cfg, &outcome, &summary));
    if !summary.ok || io_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("500k"), Ok(500_000));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("128"), Ok(128));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_cpus("0,2-3"), Ok(CpuList(vec![0, 2, 3])));
    }
}
