//! HdrHistogram's percentile-distribution text format (`.hgrm`), the file that
//! HdrHistogram's plotters read: writer and parser.
//!
//! Layout: a header row (Value, Percentile, TotalCount, 1/(1-Percentile)), one
//! row per quantile iteration step (5 steps per halving of the distance to
//! 100 %), a last row at 100 % without the 1/(1-p) column, then three `#[...]`
//! footer lines with mean, stddev, max, total count, buckets and sub-buckets.
//! Values are written in microseconds (recorded in ns, scaled by 1000).

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// Recorded values are ns; files and reports use µs.
pub const NS_PER_US: f64 = 1000.0;

/// Quantile steps per halving distance, as HdrHistogram's own tools default to.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

pub fn write_hgrm<W: Write>(w: &mut W, h: &Histogram<u64>, scale: f64) -> io::Result<()> {
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut cumulative: u64 = 0;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            cumulative += v.count_since_last_iteration();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                writeln!(
                    w,
                    "{:>12.3} {:>2.12} {:>10} {:>14.2}",
                    value,
                    q,
                    cumulative,
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(w, "{:>12.3} {:>2.12} {:>10}", value, q, cumulative)?;
            }
        }
    }
    let (mean, stddev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale)
    };
    writeln!(
        w,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        mean, stddev
    )?;
    writeln!(
        w,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len()
    )?;
    writeln!(
        w,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        // counts length = (buckets + 1) * sub_bucket_count / 2
        2 * h.distinct_values() / (usize::from(h.buckets()) + 1)
    )?;
    Ok(())
}

/// One row of a `.hgrm` file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub value: f64,
    pub quantile: f64,
    pub total_count: u64,
}

/// A parsed `.hgrm` file: rows plus the footer statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hgrm {
    pub rows: Vec<Row>,
    pub mean: f64,
    pub stddev: f64,
    pub max: f64,
    pub total_count: u64,
}

impl Hgrm {
    pub fn parse(text: &str) -> Result<Hgrm, String> {
        let mut out = Hgrm::default();
        for (lineno, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(inner) = t.strip_prefix("#[").and_then(|s| s.strip_suffix(']')) {
                for kv in inner.split(',') {
                    let mut it = kv.splitn(2, '=');
                    let k = it.next().unwrap_or("").trim();
                    let v = it.next().unwrap_or("").trim();
                    let num = |v: &str| {
                        v.parse::<f64>()
                            .map_err(|_| format!("line {}: bad number {v:?}", lineno + 1))
                    };
                    match k {
                        "Mean" => out.mean = num(v)?,
                        "StdDeviation" => out.stddev = num(v)?,
                        "Max" => out.max = num(v)?,
                        "Total count" => out.total_count = num(v)? as u64,
                        _ => {}
                    }
                }
                continue;
            }
            if t.starts_with('#') || t.starts_with("Value") {
                continue;
            }
            let cols: Vec<&str> = t.split_whitespace().collect();
            if cols.len() < 3 {
                return Err(format!("line {}: expected 3 or 4 columns", lineno + 1));
            }
            let bad = |c: &str| format!("line {}: bad number {c:?}", lineno + 1);
            out.rows.push(Row {
                value: cols[0].parse().map_err(|_| bad(cols[0]))?,
                quantile: cols[1].parse().map_err(|_| bad(cols[1]))?,
                total_count: cols[2].parse().map_err(|_| bad(cols[2]))?,
            });
        }
        if out.rows.is_empty() {
            return Err("no percentile rows found".into());
        }
        if out.total_count == 0 {
            out.total_count = out.rows.last().map(|r| r.total_count).unwrap_or(0);
        }
        if out.max == 0.0 {
            out.max = out.rows.last().map(|r| r.value).unwrap_or(0.0);
        }
        Ok(out)
    }

    /// Value at quantile `q` (0..=1): the first row whose cumulative count
    /// reaches q of the total. Rows are iteration steps, so between steps this
    /// rounds up to the next step's value, never down.
    pub fn value_at_quantile(&self, q: f64) -> f64 {
        if q >= 1.0 {
            return self.max;
        }
        let total = self.total_count.max(1) as f64;
        for r in &self.rows {
            if r.total_count as f64 / total >= q {
                return r.value;
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        // Deterministic skewed distribution: 10k values 10..~110 µs plus a tail.
        for i in 0..10_000u64 {
            h.record(10_000 + (i * i) % 100_000).expect("record");
        }
        for i in 0..10u64 {
            h.record(5_000_000 + i * 1000).expect("record");
        }
        h
    }

    #[test]
    fn round_trip_preserves_percentiles() {
        let h = sample();
        let mut buf = Vec::new();
        write_hgrm(&mut buf, &h, NS_PER_US).expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        let p = Hgrm::parse(&text).expect("parse");
        assert_eq!(p.total_count, h.len());
        assert!((p.max - h.max() as f64 / 1000.0).abs() < 0.001);
        assert!((p.mean - h.mean() / 1000.0).abs() < 0.001);
        let last = p.rows.last().expect("rows");
        assert_eq!(last.quantile, 1.0);
        assert_eq!(last.total_count, h.len());
        // Rows at exact iteration levels carry the histogram's value at that level.
        for q in [0.5, 0.75, 0.9] {
            let want = h.highest_equivalent(h.value_at_quantile(q)) as f64 / 1000.0;
            let got = p.value_at_quantile(q);
            assert!((got - want).abs() < 0.002, "q={q} got={got} want={want}");
        }
        // Between steps the parser rounds up, never below the true value.
        let true_p99 = h.value_at_quantile(0.99) as f64 / 1000.0;
        assert!(p.value_at_quantile(0.99) >= true_p99);
        // Writing the parse back gives identical rows.
        assert!(text.contains("#[Buckets = "));
        assert!(text
            .lines()
            .next()
            .unwrap_or("")
            .contains("1/(1-Percentile)"));
    }

    #[test]
    fn empty_histogram_writes_footer_and_fails_to_parse_rows() {
        let h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        let mut buf = Vec::new();
        write_hgrm(&mut buf, &h, NS_PER_US).expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        assert!(text.contains("Total count    =            0"));
        assert!(Hgrm::parse(&text).is_err());
    }

    #[test]
    fn parses_foreign_layout() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n       1.000 0.000000000000          1           1.00\n       2.000 0.500000000000          5           2.00\n       9.000 1.000000000000         10\n#[Mean    =        3.000, StdDeviation   =        1.000]\n#[Max     =        9.000, Total count    =           10]\n#[Buckets =           20, SubBuckets     =         2048]\n";
        let p = Hgrm::parse(text).expect("parse");
        assert_eq!(p.rows.len(), 3);
        assert_eq!(p.value_at_quantile(0.5), 2.0);
        assert_eq!(p.value_at_quantile(0.9), 9.0);
        assert_eq!(p.value_at_quantile(1.0), 9.0);
        assert_eq!(p.total_count, 10);
    }
}
