//! `compare-report DIR`: the table at the end of `benches/compare.sh`.
//!
//! DIR holds `scenarios.txt` (one scenario name per line, in order) and, per
//! scenario, side (a|b) and round, `<scenario>.<side>.<round>.json` (the
//! percore-bench summary) and `<scenario>.<side>.<round>.cpu` (server CPU
//! seconds). Optionally `relay.<round>.json` from `tcp-relay run`.
//!
//! Per scenario it prints the median of each side, the median over rounds of
//! the within-round ratio B/A (both measured back to back, so slow drift of
//! the machine cancels), each side's spread, server CPU seconds per run,
//! server CPU per message (µs per delivered message: received, or sent when
//! nothing subscribes) with its median per-round ratio, and the runs that
//! failed (loss or errors); failed runs are left out of every median and
//! ratio. Then geomean lines (all metrics, throughput only, latency only).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(
    name = "compare-report",
    about = "Summarize a compare.sh results directory"
)]
struct Args {
    dir: PathBuf,
    #[arg(long, default_value = "A")]
    a_name: String,
    #[arg(long, default_value = "B")]
    b_name: String,
}

/// One number taken from a summary, and whether bigger is better.
struct Metric {
    label: &'static str,
    higher_is_better: bool,
    get: fn(&Value) -> Option<f64>,
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

fn metrics_for(scenario_kind: &str) -> Vec<Metric> {
    match scenario_kind {
        "pub" => vec![Metric {
            label: "pub msgs/s",
            higher_is_better: true,
            get: |v| f(v, &["pub", "msgs_per_s"]),
        }],
        "reqrep" => vec![
            Metric {
                label: "requests/s",
                higher_is_better: true,
                get: |v| f(v, &["pub", "msgs_per_s"]),
            },
            Metric {
                label: "rtt p50 µs",
                higher_is_better: false,
                get: |v| f(v, &["latency_us", "p50"]),
            },
        ],
        "latency" => vec![
            Metric {
                label: "p50 µs",
                higher_is_better: false,
                get: |v| f(v, &["latency_us", "p50"]),
            },
            Metric {
                label: "p99 µs",
                higher_is_better: false,
                get: |v| f(v, &["latency_us", "p99"]),
            },
            Metric {
                label: "p99.9 µs",
                higher_is_better: false,
                get: |v| f(v, &["latency_us", "p99_9"]),
            },
        ],
        _ => vec![Metric {
            label: "recv msgs/s",
            higher_is_better: true,
            get: |v| f(v, &["sub", "msgs_per_s"]),
        }],
    }
}

/// What happened to the unmeasured connections of `--idle-conns` and
/// `--slow-subs` runs (lat10k-idle1k, lat10k-slow) on one side, over all its
/// runs; None when the scenario has none.
fn extras_note(scen: &str, side: &str, runs: &[Value]) -> Option<String> {
    let idle: Vec<&Value> = runs.iter().filter_map(|v| v.get("idle_conns")).collect();
    let slow: Vec<&Value> = runs
        .iter()
        .filter_map(|v| v.get("slow_subs").and_then(|s| s.as_array()))
        .flatten()
        .collect();
    let mut parts = Vec::new();
    if !idle.is_empty() {
        let dropped: f64 = idle.iter().filter_map(|v| f(v, &["dropped"])).sum();
        parts.push(format!(
            "{dropped} idle connections dropped over {} runs",
            idle.len()
        ));
    }
    if !slow.is_empty() {
        let cut = slow
            .iter()
            .filter(|v| v.get("disconnected").and_then(|d| d.as_bool()) == Some(true))
            .count();
        let mut when: Vec<f64> = slow
            .iter()
            .filter(|v| v.get("disconnected").and_then(|d| d.as_bool()) == Some(true))
            .filter_map(|v| f(v, &["last_msg_published_after_s"]))
            .collect();
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(
                " (median publish time of its last message {:.1}s)",
                median(&mut when)
            )
        };
        parts.push(format!(
            "slow subscriber cut off in {cut} of {} runs{when}",
            slow.len()
        ));
    }
    (!parts.is_empty()).then(|| format!("{scen} {side}: {}", parts.join("; ")))
}

/// One round of one scenario: (A summary, B summary, A cpu s, B cpu s).
type Round = (Option<Value>, Option<Value>, Option<f64>, Option<f64>);

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Spread as (max - min) / median, in percent.
fn spread(v: &[f64]) -> f64 {
    let mut c = v.to_vec();
    let m = median(&mut c);
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m > 0.0 {
        100.0 * (hi - lo) / m
    } else {
        f64::NAN
    }
}

/// A summary that reports no loss, errors or disconnects.
fn run_ok(v: &Value) -> bool {
    v.get("ok").and_then(|o| o.as_bool()).unwrap_or(false)
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn read_cpu(p: &Path) -> Option<f64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 1000.0 {
        percore_benches::stats::commas(v)
    } else {
        format!("{v:.1}")
    }
}

fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "-".into()
    }
}

fn fmt_cpu(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

fn fmt_pct(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}%")
    } else {
        "-".into()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let list = match std::fs::read_to_string(args.dir.join("scenarios.txt")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("compare-report: {}/scenarios.txt: {e}", args.dir.display());
            return ExitCode::from(2);
        }
    };
    println!(
        "\nA = {}   B = {}   (medians over rounds; B/A = median of the per-round ratios; spread = (max-min)/median; cpu = server CPU s per run; µs/msg = server CPU per delivered message; failed runs excluded)\n",
        args.a_name, args.b_name
    );
    let scenarios: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // Scenario column: wide enough for names such as lat10k-idle1k.
    let w = scenarios.iter().map(|s| s.len()).max().unwrap_or(0).max(11);
    println!(
        "{:<w$} {:<12} {:>13} {:>13} {:>7} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>6}",
        "scenario",
        "metric",
        "A",
        "B",
        "B/A",
        "A spread",
        "B spread",
        "A cpu",
        "B cpu",
        "A µs/msg",
        "B µs/msg",
        "cpu B/A",
        "failed"
    );
    let mut log_sum = 0.0;
    let mut log_n = 0usize;
    // (sum of ln, count) for throughput metrics, latency metrics, CPU/msg ratios.
    let mut thr_log = (0.0f64, 0usize);
    let mut lat_log = (0.0f64, 0usize);
    let mut cpu_log = (0.0f64, 0usize);
    let mut sub8k_mib: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut notes: Vec<String> = Vec::new();
    for &scen in &scenarios {
        let mut rounds: Vec<Round> = Vec::new();
        // Every run's summary, failed ones included, for the idle/slow notes.
        let mut all: (Vec<Value>, Vec<Value>) = (Vec::new(), Vec::new());
        for r in 1.. {
            let pa = args.dir.join(format!("{scen}.a.{r}.json"));
            let pb = args.dir.join(format!("{scen}.b.{r}.json"));
            if !pa.exists() && !pb.exists() {
                break;
            }
            all.0.extend(read_json(&pa));
            all.1.extend(read_json(&pb));
            rounds.push((
                read_json(&pa).filter(run_ok),
                read_json(&pb).filter(run_ok),
                read_cpu(&args.dir.join(format!("{scen}.a.{r}.cpu"))),
                read_cpu(&args.dir.join(format!("{scen}.b.{r}.cpu"))),
            ));
        }
        let kind = rounds
            .iter()
            .find_map(|r| r.0.as_ref().or(r.1.as_ref()))
            .and_then(|v| {
                v.get("scenario")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let failed = |side: usize| {
            rounds
                .iter()
                .filter(|r| {
                    if side == 0 {
                        r.0.is_none()
                    } else {
                        r.1.is_none()
                    }
                })
                .count()
        };
        let (fa, fb) = (failed(0), failed(1));
        // Server CPU µs per delivered message, per side and as a per-round ratio.
        let per_msg = |v: &Option<Value>, cpu: Option<f64>| -> Option<f64> {
            let v = v.as_ref()?;
            let recv = f(v, &["received"]).unwrap_or(0.0);
            let n = if recv > 0.0 { recv } else { f(v, &["sent"])? };
            let cpu = cpu?;
            (n > 0.0).then_some(cpu * 1e6 / n)
        };
        let mut upm_a: Vec<f64> = rounds.iter().filter_map(|r| per_msg(&r.0, r.2)).collect();
        let mut upm_b: Vec<f64> = rounds.iter().filter_map(|r| per_msg(&r.1, r.3)).collect();
        let mut upm_ratio: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(per_msg(&r.1, r.3)? / per_msg(&r.0, r.2)?))
            .collect();
        let upm_ratio = median(&mut upm_ratio);
        if upm_ratio.is_finite() && upm_ratio > 0.0 {
            cpu_log.0 += upm_ratio.ln();
            cpu_log.1 += 1;
        }
        let cpu = |side: usize| {
            let mut v: Vec<f64> = rounds
                .iter()
                .filter(|r| {
                    if side == 0 {
                        r.0.is_some()
                    } else {
                        r.1.is_some()
                    }
                })
                .filter_map(|r| if side == 0 { r.2 } else { r.3 })
                .collect();
            median(&mut v)
        };
        if kind == "pubsub" && scen.contains("8k") {
            for r in &rounds {
                if let Some(x) = r.0.as_ref().and_then(|v| f(v, &["sub", "mib_per_s"])) {
                    sub8k_mib.0.push(x);
                }
                if let Some(x) = r.1.as_ref().and_then(|v| f(v, &["sub", "mib_per_s"])) {
                    sub8k_mib.1.push(x);
                }
            }
        }
        notes.extend(extras_note(scen, &args.a_name, &all.0));
        notes.extend(extras_note(scen, &args.b_name, &all.1));
        for (mi, m) in metrics_for(&kind).iter().enumerate() {
            let a: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.0.as_ref().and_then(m.get))
                .collect();
            let b: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.1.as_ref().and_then(m.get))
                .collect();
            let mut ratios: Vec<f64> = rounds
                .iter()
                .filter_map(|r| {
                    let x = r.0.as_ref().and_then(m.get)?;
                    let y = r.1.as_ref().and_then(m.get)?;
                    (x > 0.0).then_some(y / x)
                })
                .collect();
            let ratio = median(&mut ratios);
            if ratio.is_finite() && ratio > 0.0 {
                // Geomean of "how much better B is": throughput B/A, latency A/B.
                log_sum += if m.higher_is_better {
                    ratio.ln()
                } else {
                    -ratio.ln()
                };
                log_n += 1;
                if m.label.ends_with("msgs/s") {
                    thr_log.0 += ratio.ln();
                    thr_log.1 += 1;
                } else if kind == "latency" && !m.label.starts_with("p99.9") {
                    lat_log.0 += ratio.ln();
                    lat_log.1 += 1;
                }
            }
            let first = mi == 0;
            println!(
                "{:<w$} {:<12} {:>13} {:>13} {:>7} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>6}",
                if first { scen } else { "" },
                m.label,
                fmt_num(median(&mut a.clone())),
                fmt_num(median(&mut b.clone())),
                fmt_ratio(ratio),
                fmt_pct(spread(&a)),
                fmt_pct(spread(&b)),
                if first {
                    fmt_cpu(cpu(0))
                } else {
                    String::new()
                },
                if first {
                    fmt_cpu(cpu(1))
                } else {
                    String::new()
                },
                if first {
                    fmt_ratio(median(&mut upm_a))
                } else {
                    String::new()
                },
                if first {
                    fmt_ratio(median(&mut upm_b))
                } else {
                    String::new()
                },
                if first {
                    fmt_ratio(upm_ratio)
                } else {
                    String::new()
                },
                if first {
                    format!("{fa}/{fb}")
                } else {
                    String::new()
                },
            );
        }
    }
    if !notes.is_empty() {
        println!();
        for n in &notes {
            println!("{n}");
        }
    }
    let mut relay: Vec<f64> = (1..)
        .map(|r| args.dir.join(format!("relay.{r}.json")))
        .take_while(|p| p.exists())
        .filter_map(|p| read_json(&p).and_then(|v| f(&v, &["relay_bytes_per_s"])))
        .collect();
    if !relay.is_empty() {
        let r = median(&mut relay) / (1024.0 * 1024.0);
        let a = median(&mut sub8k_mib.0);
        let b = median(&mut sub8k_mib.1);
        let pct = |x: f64| {
            if x.is_finite() {
                format!("{:.0}%", 100.0 * x / r)
            } else {
                "- (no successful run)".into()
            }
        };
        println!(
            "\nTCP relay ceiling (two connections through one relay process): {r:.1} MiB/s; pubsub 8 KiB reaches A {} / B {} of it",
            pct(a),
            pct(b)
        );
    }
    let g = if log_n > 0 {
        (log_sum / log_n as f64).exp()
    } else {
        f64::NAN
    };
    println!(
        "\ngeomean over {log_n} metrics: B is {g:.3}x A (throughput B/A, latency A/B; >1 means B better)"
    );
    let gm = |(s, n): (f64, usize)| {
        if n > 0 {
            (s / n as f64).exp()
        } else {
            f64::NAN
        }
    };
    println!(
        "geomean throughput B/A over {} msgs/s metrics: {:.3}",
        thr_log.1,
        gm(thr_log)
    );
    println!(
        "geomean latency B/A over {} p50/p99 metrics: {:.3} (<1 means B lower)",
        lat_log.1,
        gm(lat_log)
    );
    println!(
        "geomean server CPU per message B/A over {} scenarios: {:.3} (<1 means B cheaper)",
        cpu_log.1,
        gm(cpu_log)
    );
    ExitCode::SUCCESS
}
