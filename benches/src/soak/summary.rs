//! What a soak amounts to, from `rss.csv` (the server's RSS and CPU, sampled
//! by benches/soak.sh) and `latency.csv` (the bench's rows):
//!
//! - RSS after warm-up: min, max and the least-squares slope in KiB per
//!   hour. A leak is a slope that stays positive; a flat line is min ≈ max.
//! - Latency: the median of the per-interval p50 and p99 over the first and
//!   the last window after warm-up (10 minutes each, or a third of what is
//!   left when the run is shorter), and their ratio last/first: the drift.
//!   Medians, because one noisy interval on a shared machine must not decide.

use serde::Serialize;

use crate::soak::row::Row;

pub const RSS_CSV_HEADER: &str = "t_s,rss_kib,cpu_pct";
/// The drift window when the run is long enough.
pub const WINDOW_S: f64 = 600.0;

/// One sample of the server process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RssSample {
    pub t_s: f64,
    pub rss_kib: f64,
    /// CPU over the time since the previous sample, % of one core.
    pub cpu_pct: f64,
}

pub fn parse_rss_csv(text: &str) -> Result<Vec<RssSample>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(h) if h.trim() == RSS_CSV_HEADER => {}
        Some(h) => return Err(format!("unexpected rss.csv header: {h}")),
        None => return Err("rss.csv is empty".into()),
    }
    lines
        .map(|l| {
            let f: Vec<f64> = l
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("bad rss.csv line: {l}"))?;
            match f[..] {
                [t_s, rss_kib, cpu_pct] => Ok(RssSample {
                    t_s,
                    rss_kib,
                    cpu_pct,
                }),
                _ => Err(format!("bad rss.csv line: {l}")),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RssSummary {
    pub samples: usize,
    pub min_kib: f64,
    pub max_kib: f64,
    pub first_kib: f64,
    pub last_kib: f64,
    pub slope_kib_per_h: f64,
    pub mean_cpu_pct: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Window {
    pub from_s: f64,
    pub to_s: f64,
    pub rows: usize,
    pub p50_us: f64,
    pub p99_us: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub first: Window,
    pub last: Window,
    /// last / first; 1.0 = no drift.
    pub p50_drift: f64,
    pub p99_drift: f64,
    pub worst_p99_us: f64,
    pub worst_max_us: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub warmup_s: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub churn_ok: u64,
    pub churn_failed: u64,
    /// None when no sample falls after the warm-up.
    pub rss: Option<RssSummary>,
    /// None when no row falls after the warm-up.
    pub latency: Option<LatencySummary>,
}

/// The default warm-up: 10 % of the run, at most 5 minutes.
pub fn default_warmup_s(duration_s: f64) -> f64 {
    (duration_s * 0.1).min(300.0)
}

/// Least-squares slope of y over x (0 for fewer than two distinct x).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

pub fn rss_summary(samples: &[RssSample], warmup_s: f64) -> Option<RssSummary> {
    let after: Vec<&RssSample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    let (first, last) = (after.first()?, after.last()?);
    let pts: Vec<(f64, f64)> = after.iter().map(|s| (s.t_s / 3600.0, s.rss_kib)).collect();
    Some(RssSummary {
        samples: after.len(),
        min_kib: after
            .iter()
            .map(|s| s.rss_kib)
            .fold(f64::INFINITY, f64::min),
        max_kib: after.iter().map(|s| s.rss_kib).fold(0.0, f64::max),
        first_kib: first.rss_kib,
        last_kib: last.rss_kib,
        slope_kib_per_h: slope(&pts),
        mean_cpu_pct: after.iter().map(|s| s.cpu_pct).sum::<f64>() / after.len() as f64,
    })
}

fn window(rows: &[&Row]) -> Window {
    let p50: Vec<f64> = rows.iter().map(|r| r.p50_us).collect();
    let p99: Vec<f64> = rows.iter().map(|r| r.p99_us).collect();
    Window {
        from_s: rows.first().map_or(0.0, |r| r.t_start_s),
        to_s: rows.last().map_or(0.0, |r| r.t_end_s),
        rows: rows.len(),
        p50_us: median(&p50),
        p99_us: median(&p99),
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if a > 0.0 {
        b / a
    } else {
        0.0
    }
}

/// Rows that start at or after the warm-up and received something; the
/// first and last windows of `min(WINDOW_S, a third of that span)`.
pub fn latency_summary(rows: &[Row], warmup_s: f64) -> Option<LatencySummary> {
    let after: Vec<&Row> = rows
        .iter()
        .filter(|r| r.t_start_s >= warmup_s && r.received > 0)
        .collect();
    let (lo, hi) = (after.first()?.t_start_s, after.last()?.t_end_s);
    let span = WINDOW_S.min((hi - lo) / 3.0);
    let first: Vec<&Row> = after
        .iter()
        .copied()
        .filter(|r| r.t_end_s <= lo + span + 1e-9)
        .collect();
    let last: Vec<&Row> = after
        .iter()
        .copied()
        .filter(|r| r.t_start_s >= hi - span - 1e-9)
        .collect();
    // Intervals longer than the window: one row each side.
    let first = if first.is_empty() {
        vec![after[0]]
    } else {
        first
    };
    let last = if last.is_empty() {
        vec![after[after.len() - 1]]
    } else {
        last
    };
    let (f, l) = (window(&first), window(&last));
    Some(LatencySummary {
        p50_drift: ratio(f.p50_us, l.p50_us),
        p99_drift: ratio(f.p99_us, l.p99_us),
        worst_p99_us: after.iter().map(|r| r.p99_us).fold(0.0, f64::max),
        worst_max_us: after.iter().map(|r| r.max_us).fold(0.0, f64::max),
        first: f,
        last: l,
    })
}

pub fn summarize(rows: &[Row], samples: &[RssSample], warmup_s: f64) -> Summary {
    Summary {
        warmup_s,
        duration_s: rows.last().map_or(0.0, |r| r.t_end_s),
        sent: rows.iter().map(|r| r.sent).sum(),
        received: rows.iter().map(|r| r.received).sum(),
        lost: rows.iter().map(|r| r.lost).sum(),
        churn_ok: rows.iter().map(|r| r.churn_ok).sum(),
        churn_failed: rows.iter().map(|r| r.churn_failed).sum(),
        rss: rss_summary(samples, warmup_s),
        latency: latency_summary(rows, warmup_s),
    }
}

impl Summary {
    pub fn text(&self) -> String {
        let mut s = format!(
            "soak: {:.0} s, warm-up {:.0} s; pair sent {} received {} lost {}; churn {} ok {} failed\n",
            self.duration_s,
            self.warmup_s,
            self.sent,
            self.received,
            self.lost,
            self.churn_ok,
            self.churn_failed
        );
        match &self.rss {
            Some(r) => {
                s += &format!(
                    "RSS after warm-up ({} samples): min {:.0} KiB, max {:.0} KiB (max-min {:.0} KiB), first {:.0}, last {:.0}, slope {:+.0} KiB/h; CPU mean {:.1} %\n",
                    r.samples, r.min_kib, r.max_kib, r.max_kib - r.min_kib, r.first_kib, r.last_kib, r.slope_kib_per_h, r.mean_cpu_pct
                )
            }
            None => s += "RSS: no sample after the warm-up\n",
        }
        match &self.latency {
            Some(l) => {
                s += &format!(
                    "latency, median of per-interval values: first {:.0}-{:.0} s p50 {:.1} µs p99 {:.1} µs; last {:.0}-{:.0} s p50 {:.1} µs p99 {:.1} µs\n",
                    l.first.from_s, l.first.to_s, l.first.p50_us, l.first.p99_us,
                    l.last.from_s, l.last.to_s, l.last.p50_us, l.last.p99_us
                );
                s += &format!(
                    "drift (last/first): p50 {:.2}, p99 {:.2}; worst interval p99 {:.1} µs, max {:.1} µs\n",
                    l.p50_drift, l.p99_drift, l.worst_p99_us, l.worst_max_us
                );
            }
            None => s += "latency: no interval after the warm-up\n",
        }
        if self.lost > 0 {
            s += &format!("FAILED: the healthy pair lost {} messages\n", self.lost);
        }
        if self.churn_failed > 0 {
            s += &format!("WARNING: {} churn clients failed\n", self.churn_failed);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64, len: f64, p50: f64, p99: f64) -> Row {
        Row {
            index: i,
            t_start_s: i as f64 * len,
            t_end_s: (i + 1) as f64 * len,
            sent: 100,
            received: 100,
            p50_us: p50,
            p99_us: p99,
            max_us: p99 * 2.0,
            churn_ok: 5,
            ..Default::default()
        }
    }

    #[test]
    fn slope_and_median() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&pts) - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 5.0)]), 0.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn rss_after_warmup_and_slope_per_hour() {
        // 100 KiB warm-up jump, then +36 KiB per hour (0.1 KiB each 10 s).
        let samples: Vec<RssSample> = (0..361)
            .map(|i| RssSample {
                t_s: i as f64 * 10.0,
                rss_kib: if i < 30 {
                    1000.0
                } else {
                    1100.0 + 0.1 * i as f64
                },
                cpu_pct: 50.0,
            })
            .collect();
        let r = rss_summary(&samples, 300.0).expect("samples after warm-up");
        assert_eq!(r.samples, 331);
        assert!(
            (r.slope_kib_per_h - 36.0).abs() < 1e-6,
            "{}",
            r.slope_kib_per_h
        );
        assert!((r.min_kib - 1103.0).abs() < 1e-9);
        assert!((r.max_kib - 1136.0).abs() < 1e-9);
        assert!((r.mean_cpu_pct - 50.0).abs() < 1e-9);
        assert_eq!(rss_summary(&samples, 1e9), None);
    }

    #[test]
    fn drift_compares_first_and_last_window_after_warmup() {
        // One hour of minutes: warm-up row 0 is wild, then p99 creeps from
        // 100 to 159 µs; one noisy minute in the first window is ignored.
        let mut rows: Vec<Row> = (0..60)
            .map(|i| row(i, 60.0, 40.0, 100.0 + i as f64))
            .collect();
        rows[0].p99_us = 5000.0;
        rows[7].p99_us = 9000.0;
        let l = latency_summary(&rows, 60.0).expect("rows after warm-up");
        // First window: minutes 1..=10 (p99 101..110 with one outlier).
        assert_eq!(l.first.rows, 10);
        assert_eq!((l.first.from_s, l.first.to_s), (60.0, 660.0));
        assert!((l.first.p99_us - 105.5).abs() < 1e-9, "{}", l.first.p99_us);
        // Last window: minutes 50..=59.
        assert_eq!(l.last.rows, 10);
        assert!((l.last.p99_us - 154.5).abs() < 1e-9);
        assert!((l.p99_drift - 154.5 / 105.5).abs() < 1e-9);
        assert!((l.p50_drift - 1.0).abs() < 1e-9);
        assert_eq!(l.worst_p99_us, 9000.0);
    }

    #[test]
    fn short_runs_use_thirds() {
        // 180 s in 20 s rows, warm-up 18 s: rows 1..=8 count, thirds of 160 s.
        let rows: Vec<Row> = (0..9)
            .map(|i| row(i, 20.0, 10.0 + i as f64, 50.0))
            .collect();
        let s = summarize(&rows, &[], default_warmup_s(180.0));
        assert_eq!(s.warmup_s, 18.0);
        let l = s.latency.clone().expect("latency");
        assert_eq!(l.first.rows, 2);
        assert_eq!(l.last.rows, 2);
        assert!((l.first.p50_us - 11.5).abs() < 1e-9);
        assert!((l.last.p50_us - 17.5).abs() < 1e-9);
        assert_eq!(l.p99_drift, 1.0);
        assert_eq!(s.churn_ok, 45);
        assert_eq!(s.rss, None);
        assert!(s.text().contains("RSS: no sample"));
    }

    #[test]
    fn parses_rss_csv() {
        let t = format!("{RSS_CSV_HEADER}\n0.0,1024,0.0\n10.0,2048,37.5\n");
        let s = parse_rss_csv(&t).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].cpu_pct, 37.5);
        assert!(parse_rss_csv("t,rss\n1,2").is_err());
        assert!(parse_rss_csv(&format!("{RSS_CSV_HEADER}\n1,2")).is_err());
    }
}
