//! `compare-report DIR`: the table at the end of `benches/compare.sh`.
//!
//! DIR holds `scenarios.txt` (one scenario name per line, in order) and, per
//! scenario, side (a|b) and round, `<scenario>.<side>.<round>.json` (the
//! percore-bench summary) and `<scenario>.<side>.<round>.cpu` (server CPU
//! seconds). Optionally `relay.<round>.json` from `tcp-relay run`.
//!
//! Per scenario it prints the median of each side, the median over rounds of
//! the within-round ratio B/A (both measured back to back, so slow drift of
//! the machine cancels), each side's spread, server CPU seconds per run, and
//! the runs that failed (loss or errors); then one geomean line.

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
        "\nA = {}   B = {}   (medians over rounds; B/A = median of the per-round ratios; spread = (max-min)/median)\n",
        args.a_name, args.b_name
    );
    println!(
        "{:<11} {:<12} {:>13} {:>13} {:>7} {:>8} {:>8} {:>7} {:>7} {:>6}",
        "scenario", "metric", "A", "B", "B/A", "A spread", "B spread", "A cpu", "B cpu", "failed"
    );
    let mut log_sum = 0.0;
    let mut log_n = 0usize;
    let mut sub8k_mib: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for scen in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut rounds: Vec<Round> = Vec::new();
        for r in 1.. {
            let pa = args.dir.join(format!("{scen}.a.{r}.json"));
            let pb = args.dir.join(format!("{scen}.b.{r}.json"));
            if !pa.exists() && !pb.exists() {
                break;
            }
            rounds.push((
                read_json(&pa),
                read_json(&pb),
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
                    let v = if side == 0 { &r.0 } else { &r.1 };
                    !v.as_ref()
                        .and_then(|v| v.get("ok"))
                        .and_then(|o| o.as_bool())
                        .unwrap_or(false)
                })
                .count()
        };
        let (fa, fb) = (failed(0), failed(1));
        let cpu = |side: usize| {
            let mut v: Vec<f64> = rounds
                .iter()
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
            }
            let first = mi == 0;
            println!(
                "{:<11} {:<12} {:>13} {:>13} {:>7.3} {:>7.1}% {:>7.1}% {:>7} {:>7} {:>6}",
                if first { scen } else { "" },
                m.label,
                fmt_num(median(&mut a.clone())),
                fmt_num(median(&mut b.clone())),
                ratio,
                spread(&a),
                spread(&b),
                if first {
                    format!("{:.2}", cpu(0))
                } else {
                    String::new()
                },
                if first {
                    format!("{:.2}", cpu(1))
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
    let mut relay: Vec<f64> = (1..)
        .map(|r| args.dir.join(format!("relay.{r}.json")))
        .take_while(|p| p.exists())
        .filter_map(|p| read_json(&p).and_then(|v| f(&v, &["relay_bytes_per_s"])))
        .collect();
    if !relay.is_empty() {
        let r = median(&mut relay) / (1024.0 * 1024.0);
        let a = median(&mut sub8k_mib.0);
        let b = median(&mut sub8k_mib.1);
        println!(
            "\nTCP relay ceiling (two connections through one relay process): {r:.1} MiB/s; pubsub 8 KiB reaches A {:.0}% / B {:.0}% of it",
            100.0 * a / r,
            100.0 * b / r
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
    ExitCode::SUCCESS
}
