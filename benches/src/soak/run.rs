//! `percore-bench soak`: the coordinator. It starts the pair and the churn
//! workers on one schedule, and at every interval boundary swaps their
//! counters out into a [`Row`], printed and appended to the CSV at once (a
//! soak that dies halfway still leaves its rows). The last row is taken after
//! the final fence, so it also counts the messages that never arrived.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::{self, now_ns};
use crate::extra_conns;
use crate::latency::Percentiles;
use crate::soak::churn::{self, ChurnCounters};
use crate::soak::pair::{self, lock, PairPlan, PairState, Side, Tally, PAIR_STAMP_LEN};
use crate::soak::row::{Row, CSV_HEADER};

/// Everything a soak needs, from the command line.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub server: String,
    pub subject: String,
    pub size: usize,
    /// The pair's messages per second.
    pub rate: f64,
    pub duration: Duration,
    pub interval: Duration,
    /// Churn clients started per second (0 = none).
    pub churn: f64,
    /// Churn cycles in flight at most.
    pub churn_concurrency: usize,
    /// Rows are appended here as they are taken.
    pub csv_out: Option<PathBuf>,
}

/// What the soak saw over its whole run.
pub struct SoakOutcome {
    pub rows: Vec<Row>,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// The pair's -ERRs, disconnects, missed fences: each fails the soak.
    pub pair_errors: Vec<String>,
    pub churn_ok: u64,
    pub churn_failed: u64,
    /// The first few churn failures, verbatim.
    pub churn_failures: Vec<String>,
}

impl SoakOutcome {
    /// The pair lost nothing and saw no error. Churn failures are reported
    /// loudly but do not fail the run: they are the server refusing load,
    /// which the rows show.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.pair_errors.is_empty()
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "soak: pair sent {} received {} lost {}; churn {} ok {} failed\n",
            self.sent, self.received, self.lost, self.churn_ok, self.churn_failed
        );
        if self.lost > 0 {
            s += &format!("FAILED: the healthy pair lost {} messages\n", self.lost);
        }
        for e in &self.pair_errors {
            s += &format!("FAILED: pair: {e}\n");
        }
        if self.churn_failed > 0 {
            s += &format!(
                "WARNING: {} churn clients failed; first ones:\n",
                self.churn_failed
            );
            for f in &self.churn_failures {
                s += &format!("  {f}\n");
            }
        }
        s
    }
}

fn validate(cfg: &SoakConfig) -> Result<(), String> {
    if cfg.size < PAIR_STAMP_LEN {
        return Err(format!(
            "--size must be at least {PAIR_STAMP_LEN} in soak mode (two timestamps and a sequence number)"
        ));
    }
    if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
        return Err("soak needs --rate > 0 (half of peak throughput, see benches/soak.sh)".into());
    }
    if cfg.duration.is_zero() || cfg.interval.is_zero() {
        return Err("--duration and --interval must be more than 0".into());
    }
    if !(cfg.churn >= 0.0 && cfg.churn.is_finite()) {
        return Err("--churn must be 0 or more clients per second".into());
    }
    if cfg.churn > 0.0 && cfg.churn_concurrency == 0 {
        return Err("--churn-concurrency must be at least 1".into());
    }
    Ok(())
}

/// Runs the soak; Err only when it could not start (no server, bad options).
pub fn run(cfg: &SoakConfig) -> Result<SoakOutcome, String> {
    validate(cfg)?;
    extra_conns::ensure_fd_limit(2 * (2 + cfg.churn_concurrency as u64) + 64)?;
    let mut csv = match &cfg.csv_out {
        Some(p) => {
            let mut f = File::create(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
            writeln!(f, "{CSV_HEADER}").map_err(|e| e.to_string())?;
            Some(f)
        }
        None => None,
    };
    let state = Arc::new(PairState::default());
    let plan = PairPlan {
        subject: cfg.subject.clone(),
        size: cfg.size,
        rate: cfg.rate,
    };
    let (pub_side, sub_side) = pair::connect(&cfg.server, &plan, &state)?;

    // 20 ms lead-in: every thread is waiting before the first due time.
    let start = now_ns() + 20_000_000;
    let end = start + cfg.duration.as_nanos() as u64;
    let st = state.clone();
    let publisher = std::thread::Builder::new()
        .name("soak-pub".into())
        .spawn(move || {
            let r = pair::publish(&pub_side, &plan, start, end, &st);
            (pub_side, r)
        })
        .map_err(|e| e.to_string())?;
    let counters = Arc::new(ChurnCounters::default());
    let churners = if cfg.churn > 0.0 {
        churn::spawn(
            &cfg.server,
            cfg.churn,
            cfg.churn_concurrency,
            start,
            end,
            counters.clone(),
        )?
    } else {
        Vec::new()
    };

    // Taken once, by the last interval.
    let mut parts = Some((publisher, churners, sub_side));
    let interval_ns = cfg.interval.as_nanos() as u64;
    let mut rows = Vec::new();
    let mut reported_failures = 0;
    let mut errors = Vec::new();
    let mut sent_total = 0;
    for index in 0u64.. {
        let from = start + index * interval_ns;
        let to = (from + interval_ns).min(end);
        clock::wait_until(to);
        let mut tail_lost = 0;
        if to == end {
            if let Some((p, c, sub)) = parts.take() {
                (sent_total, tail_lost) = finish(p, c, sub, &state, &mut errors)?;
            }
        }
        let mut row = take_row(&state, &counters, index, from - start, to - start);
        row.lost += tail_lost;
        println!("{}", row.text());
        if let Some(f) = csv.as_mut() {
            let r = writeln!(f, "{}", row.to_csv()).and_then(|_| f.flush());
            if let Err(e) = r {
                eprintln!("percore-bench: writing the CSV: {e}");
                csv = None;
            }
        }
        if row.lost > 0 {
            eprintln!(
                "LOST: the healthy pair lost {} messages in interval {index}",
                row.lost
            );
        }
        if row.churn_failed > 0 {
            let f = lock(&counters.failures);
            eprintln!(
                "CHURN: {} clients failed in interval {index}",
                row.churn_failed
            );
            for e in f.iter().skip(reported_failures) {
                eprintln!("  {e}");
            }
            reported_failures = f.len();
        }
        rows.push(row);
        if to == end {
            break;
        }
    }
    errors.extend(lock(&state.errors).drain(..));
    let failures = lock(&counters.failures).clone();
    Ok(SoakOutcome {
        sent: sent_total,
        received: rows.iter().map(|r| r.received).sum(),
        lost: rows.iter().map(|r| r.lost).sum(),
        churn_ok: rows.iter().map(|r| r.churn_ok).sum(),
        churn_failed: rows.iter().map(|r| r.churn_failed).sum(),
        churn_failures: failures,
        pair_errors: errors,
        rows,
    })
}

type Publisher = JoinHandle<(Side, (u64, Result<(), String>))>;

/// The end: the publisher and the churn workers are done, both sides of the
/// pair fenced, the readers stopped. Returns messages sent and those still
/// missing at the subscriber.
fn finish(
    publisher: Publisher,
    churners: Vec<JoinHandle<()>>,
    sub_side: Side,
    state: &PairState,
    errors: &mut Vec<String>,
) -> Result<(u64, u64), String> {
    let (pub_side, r) = publisher
        .join()
        .map_err(|_| "the publisher thread panicked".to_string())?;
    let (sent, r) = r;
    if let Err(e) = r {
        errors.push(e);
    }
    for h in churners {
        let _ = h.join();
    }
    let fence = Duration::from_secs(30);
    if let Err(e) = pub_side.fence(fence) {
        errors.push(format!("publisher fence: {e}"));
    }
    if let Err(e) = sub_side.fence(fence) {
        errors.push(format!("subscriber fence: {e}"));
    }
    // A broker may hand messages between shards after the PONG.
    let settle_end = now_ns() + 1_000_000_000;
    while state.next_seq.load(Ordering::Relaxed) < sent && now_ns() < settle_end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let missing = sent.saturating_sub(state.next_seq.load(Ordering::Relaxed));
    state.stop.store(true, Ordering::Relaxed);
    pub_side.join();
    sub_side.join();
    Ok((sent, missing))
}

/// Swaps the interval's counters out into a row (times in ns since start).
fn take_row(
    state: &PairState,
    counters: &ChurnCounters,
    index: u64,
    from_ns: u64,
    to_ns: u64,
) -> Row {
    let fresh = Tally::new(); // allocated before taking the lock
    let t = std::mem::replace(&mut *lock(&state.tally), fresh);
    let p = Percentiles::from_hist(&t.latency);
    Row {
        index,
        t_start_s: from_ns as f64 / 1e9,
        t_end_s: to_ns as f64 / 1e9,
        sent: state.sent.swap(0, Ordering::Relaxed),
        received: t.received,
        lost: t.lost,
        p50_us: p.p50,
        p90_us: p.p90,
        p99_us: p.p99,
        p99_9_us: p.p99_9,
        max_us: p.max,
        churn_ok: counters.ok.swap(0, Ordering::Relaxed),
        churn_failed: counters.failed.swap(0, Ordering::Relaxed),
    }
}
