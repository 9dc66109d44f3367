//! Comparison of two latency distributions: loading `.hgrm` / JSON summary
//! files, medians over repeated runs, the A/B table, and the regression policy
//! (per percentile: a relative threshold AND an absolute floor, both of which
//! must be exceeded before a difference counts as a regression).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::hgrm::Hgrm;

/// The percentiles compared, in table order: (key, quantile). Quantile 1.0 is max.
pub const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
    ("max", 1.0),
];

/// One run's distribution: the compared percentiles (µs) and, when the file
/// had one, the full curve (quantile, µs) for plotting.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub values: [f64; 6],
    pub count: u64,
    pub curve: Vec<(f64, f64)>,
}

/// Loads a `.hgrm` file, or a JSON summary from percore-bench (`latency_us`),
/// or any JSON object with p50/p90/p99/p99_9/p99_99/max fields in µs.
pub fn load(path: &Path) -> Result<Run, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    if is_json {
        from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        let h = Hgrm::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(from_hgrm(&h))
    }
}

pub fn from_hgrm(h: &Hgrm) -> Run {
    let mut values = [0.0; 6];
    for (i, (_, q)) in PERCENTILES.iter().enumerate() {
        values[i] = h.value_at_quantile(*q);
    }
    Run {
        values,
        count: h.total_count,
        curve: h.rows.iter().map(|r| (r.quantile, r.value)).collect(),
    }
}

pub fn from_json(text: &str) -> Result<Run, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let p = v.get("latency_us").unwrap_or(&v);
    if p.is_null() {
        return Err("summary has no latency (latency_us is null)".into());
    }
    let keys = ["p50", "p90", "p99", "p99_9", "p99_99", "max"];
    let mut values = [0.0; 6];
    for (i, k) in keys.iter().enumerate() {
        values[i] = p
            .get(k)
            .and_then(|x| x.as_f64())
            .ok_or_else(|| format!("missing latency field {k}"))?;
    }
    let count = p.get("count").and_then(|x| x.as_u64()).unwrap_or(0);
    let curve = PERCENTILES
        .iter()
        .zip(values)
        .map(|((_, q), v)| (*q, v))
        .collect();
    Ok(Run {
        values,
        count,
        curve,
    })
}

/// Median per percentile over repeated runs (mean of the middle two for even K).
pub fn median(runs: &[Run]) -> [f64; 6] {
    let mut out = [0.0; 6];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut v: Vec<f64> = runs.iter().map(|r| r.values[i]).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        *slot = match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
    }
    out
}

fn spread(runs: &[Run], i: usize) -> (f64, f64) {
    let v = runs.iter().map(|r| r.values[i]);
    let lo = v.clone().fold(f64::INFINITY, f64::min);
    let hi = v.fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// One percentile's threshold: a regression needs B/A above `max_ratio`
/// AND B - A above `min_abs_us`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Rule {
    pub max_ratio: f64,
    pub min_abs_us: f64,
}

/// Policy file: `{"rules": {"p50": {"max_ratio": 1.5, "min_abs_us": 50}, ...}}`.
/// Percentiles without a rule are advisory (shown, never failing).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Policy {
    #[serde(default)]
    pub rules: BTreeMap<String, Rule>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = serde_json::from_str(text).map_err(|e| format!("bad policy: {e}"))?;
        for k in p.rules.keys() {
            if !PERCENTILES.iter().any(|(n, _)| n == k) {
                return Err(format!(
                    "bad policy: unknown percentile {k:?} (use p50, p90, p99, p99.9, p99.99, max)"
                ));
            }
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No rule for this percentile.
    Advisory,
    Ok,
    Regression,
}

pub fn judge(rule: Option<&Rule>, a: f64, b: f64) -> Verdict {
    let Some(r) = rule else {
        return Verdict::Advisory;
    };
    let ratio = if a > 0.0 { b / a } else { f64::INFINITY };
    if ratio > r.max_ratio && b - a > r.min_abs_us {
        Verdict::Regression
    } else {
        Verdict::Ok
    }
}

/// The comparison table and whether anything regressed.
pub struct Comparison {
    pub table: String,
    pub regressions: Vec<String>,
}

pub fn compare(a: &[Run], b: &[Run], policy: Option<&Policy>, names: (&str, &str)) -> Comparison {
    let (ma, mb) = (median(a), median(b));
    let mut t = String::new();
    let multi = a.len() > 1 || b.len() > 1;
    let what = if multi { " median" } else { "" };
    let _ = writeln!(
        t,
        "{:<8} {:>12} {:>12} {:>7}{}  {}",
        "",
        format!("A{what} µs"),
        format!("B{what} µs"),
        "B/A",
        if multi {
            format!(
                "  {:>19}  {:>19}",
                "A spread (min..max)", "B spread (min..max)"
            )
        } else {
            String::new()
        },
        if policy.is_some() { "verdict" } else { "" }
    );
    let mut regressions = Vec::new();
    for (i, (key, _)) in PERCENTILES.iter().enumerate() {
        let ratio = if ma[i] > 0.0 { mb[i] / ma[i] } else { f64::NAN };
        let mut line = format!("{:<8} {:>12.1} {:>12.1} {:>7.3}", key, ma[i], mb[i], ratio);
        if multi {
            let (alo, ahi) = spread(a, i);
            let (blo, bhi) = spread(b, i);
            let _ = write!(
                line,
                "  {:>19}  {:>19}",
                format!("{alo:.1}..{ahi:.1}"),
                format!("{blo:.1}..{bhi:.1}")
            );
        }
        if let Some(p) = policy {
            let rule = p.rules.get(*key);
            let v = judge(rule, ma[i], mb[i]);
            let _ = match (v, rule) {
                (Verdict::Advisory, _) | (_, None) => write!(line, "  advisory"),
                (Verdict::Ok, Some(r)) => write!(
                    line,
                    "  ok (fails above x{:.2} and +{:.0} µs)",
                    r.max_ratio, r.min_abs_us
                ),
                (Verdict::Regression, Some(r)) => {
                    regressions.push(format!(
                        "{key}: {:.1} -> {:.1} µs (x{:.2} > x{:.2} and +{:.1} > +{:.0} µs)",
                        ma[i],
                        mb[i],
                        ratio,
                        r.max_ratio,
                        mb[i] - ma[i],
                        r.min_abs_us
                    ));
                    write!(line, "  REGRESSION")
                }
            };
        }
        t.push_str(line.trim_end());
        t.push('\n');
    }
    let counts = |runs: &[Run]| runs.iter().map(|r| r.count).sum::<u64>();
    let _ = writeln!(
        t,
        "A = {} ({} run{}, {} samples)   B = {} ({} run{}, {} samples)",
        names.0,
        a.len(),
        if a.len() == 1 { "" } else { "s" },
        counts(a),
        names.1,
        b.len(),
        if b.len() == 1 { "" } else { "s" },
        counts(b)
    );
    Comparison {
        table: t,
        regressions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: [f64; 6]) -> Run {
        Run {
            values: v,
            count: 100,
            curve: Vec::new(),
        }
    }

    fn policy() -> Policy {
        Policy::parse(r#"{"rules": {"p50": {"max_ratio": 1.5, "min_abs_us": 20}, "p99": {"max_ratio": 1.25, "min_abs_us": 50}}}"#)
            .expect("policy")
    }

    #[test]
    fn regression_needs_ratio_and_floor() {
        let r = Rule {
            max_ratio: 1.25,
            min_abs_us: 50.0,
        };
        // 2x worse but only +10 µs: below the floor.
        assert_eq!(judge(Some(&r), 10.0, 20.0), Verdict::Ok);
        // +100 µs but only x1.1: below the ratio.
        assert_eq!(judge(Some(&r), 1000.0, 1100.0), Verdict::Ok);
        // Both exceeded.
        assert_eq!(judge(Some(&r), 100.0, 200.0), Verdict::Regression);
        // Improvements never fail.
        assert_eq!(judge(Some(&r), 200.0, 100.0), Verdict::Ok);
        assert_eq!(judge(None, 1.0, 1000.0), Verdict::Advisory);
    }

    #[test]
    fn median_of_repeated_runs() {
        let runs = vec![
            run([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            run([3.0, 2.0, 9.0, 4.0, 5.0, 6.0]),
            run([2.0, 2.0, 1.0, 4.0, 5.0, 60.0]),
        ];
        assert_eq!(median(&runs), [2.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(median(&runs[..2])[0], 2.0);
    }

    #[test]
    fn compare_reports_and_fails_only_on_policy() {
        let a = vec![run([50.0, 60.0, 100.0, 200.0, 300.0, 400.0])];
        let b = vec![run([55.0, 70.0, 300.0, 2000.0, 3000.0, 9000.0])];
        let c = compare(&a, &b, Some(&policy()), ("a", "b"));
        assert_eq!(c.regressions.len(), 1, "{}", c.table);
        assert!(c.regressions[0].starts_with("p99:"));
        assert!(c.table.contains("REGRESSION"));
        assert!(c.table.contains("advisory"));
        let none = compare(&a, &b, None, ("a", "b"));
        assert!(none.regressions.is_empty());
    }

    #[test]
    fn policy_rejects_unknown_percentile() {
        assert!(
            Policy::parse(r#"{"rules": {"p95": {"max_ratio": 1.1, "min_abs_us": 1}}}"#).is_err()
        );
        assert!(Policy::parse(r#"{"rules": {"p99": {"max_ratio": 1.1}}}"#).is_err());
    }

    #[test]
    fn json_summary_is_read() {
        let text = r#"{"latency_us": {"count": 7, "p50": 1.0, "p90": 2.0, "p99": 3.0, "p99_9": 4.0, "p99_99": 5.0, "max": 6.0}}"#;
        let r = from_json(text).expect("json");
        assert_eq!(r.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(r.count, 7);
        assert!(from_json(r#"{"latency_us": null}"#).is_err());
    }
}
