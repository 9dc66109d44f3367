//! Latency recording: one pair of HdrHistograms per receiving thread
//! (coordinated-omission-corrected latency and raw service time), shipped to a
//! collector thread over crossbeam-channel once per interval and merged there.
//! The collector's result feeds the summary, the `.hgrm` files and the
//! compressed interval log.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::hgrm::{self, NS_PER_US};

/// Range 1 ns .. 60 s at 3 significant digits, as the design asks.
pub fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .expect("static histogram bounds are valid")
}

/// Length of one interval-log interval.
pub const INTERVAL_NS: u64 = 1_000_000_000;

/// One thread's histograms for one interval.
pub struct IntervalHists {
    /// Interval index since the run's start (0 = first second).
    pub index: u64,
    pub corrected: Histogram<u64>,
    pub service: Histogram<u64>,
}

/// Per-thread recorder. `record` is on the hot path: two histogram increments
/// and, once per interval, a channel send.
pub struct Recorder {
    start_ns: u64,
    current: IntervalHists,
    tx: Sender<IntervalHists>,
}

impl Recorder {
    pub fn new(start_ns: u64, tx: Sender<IntervalHists>) -> Recorder {
        Recorder {
            start_ns,
            current: IntervalHists {
                index: 0,
                corrected: new_hist(),
                service: new_hist(),
            },
            tx,
        }
    }

    /// `now_ns` is the receive time; `intended_ns` when the message should
    /// have been sent by the schedule; `sent_ns` when it actually was.
    pub fn record(&mut self, now_ns: u64, intended_ns: u64, sent_ns: u64) {
        let idx = now_ns.saturating_sub(self.start_ns) / INTERVAL_NS;
        if idx != self.current.index {
            self.ship(idx);
        }
        // saturating_record: a value past 60 s is clamped, never an error.
        self.current
            .corrected
            .saturating_record(now_ns.saturating_sub(intended_ns).max(1));
        self.current
            .service
            .saturating_record(now_ns.saturating_sub(sent_ns).max(1));
    }

    /// Records a single round-trip time (request/reply): both histograms get it.
    pub fn record_rtt(&mut self, now_ns: u64, rtt_ns: u64) {
        self.record(
            now_ns,
            now_ns - rtt_ns.min(now_ns),
            now_ns - rtt_ns.min(now_ns),
        );
    }

    fn ship(&mut self, next_index: u64) {
        let fresh = IntervalHists {
            index: next_index,
            corrected: new_hist(),
            service: new_hist(),
        };
        let done = std::mem::replace(&mut self.current, fresh);
        if !done.corrected.is_empty() {
            // The collector outlives all recorders; a send error means it is gone
            // and the numbers are lost anyway.
            let _ = self.tx.send(done);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.ship(u64::MAX);
    }
}

/// Everything the collector merged.
pub struct Collected {
    pub corrected: Histogram<u64>,
    pub service: Histogram<u64>,
    /// Per interval index, merged across threads.
    pub intervals: Vec<IntervalHists>,
}

/// Runs until every `Sender` is dropped; merges per interval and in total.
pub fn collect(rx: Receiver<IntervalHists>) -> Collected {
    let mut corrected = new_hist();
    let mut service = new_hist();
    let mut by_index: std::collections::BTreeMap<u64, IntervalHists> = Default::default();
    for part in rx {
        // Same bounds everywhere, so add() cannot fail.
        let _ = corrected.add(&part.corrected);
        let _ = service.add(&part.service);
        match by_index.get_mut(&part.index) {
            Some(e) => {
                let _ = e.corrected.add(&part.corrected);
                let _ = e.service.add(&part.service);
            }
            None => {
                by_index.insert(part.index, part);
            }
        }
    }
    Collected {
        corrected,
        service,
        intervals: by_index.into_values().collect(),
    }
}

/// The percentiles every report and JSON summary carries, in µs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub stddev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn from_hist(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let q = |q: f64| h.value_at_quantile(q) as f64 / NS_PER_US;
        Percentiles {
            count: h.len(),
            min: h.min() as f64 / NS_PER_US,
            mean: h.mean() / NS_PER_US,
            stddev: h.stdev() / NS_PER_US,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: h.max() as f64 / NS_PER_US,
        }
    }
}

pub fn write_hgrm_file(path: &Path, h: &Histogram<u64>) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    hgrm::write_hgrm(&mut w, h, NS_PER_US)?;
    io::Write::flush(&mut w)
}

/// Writes the compressed (V2 + DEFLATE, base64) interval log: corrected
/// latency untagged (what log processors read by default), service time
/// tagged `service`. Timestamps are seconds since `start`.
pub fn write_interval_log(path: &Path, start: SystemTime, c: &Collected) -> io::Result<()> {
    let mut file = BufWriter::new(File::create(path)?);
    let mut ser = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("percore-bench interval log; values in ns; untagged = latency from intended send time, tag=service = from actual send time")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(NS_PER_US)
        .begin_log_with(&mut file, &mut ser)?;
    let to_io = |e| io::Error::other(format!("interval log: {e:?}"));
    let service_tag = Tag::new("service");
    for iv in &c.intervals {
        let ts = Duration::from_nanos(iv.index.saturating_mul(INTERVAL_NS));
        let d = Duration::from_nanos(INTERVAL_NS);
        log.write_histogram(&iv.corrected, ts, d, None)
            .map_err(to_io)?;
        log.write_histogram(&iv.service, ts, d, service_tag)
            .map_err(to_io)?;
    }
    drop(log);
    io::Write::flush(&mut file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_merges_intervals_across_threads() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::spawn(move || collect(rx));
        for t in 0..2u64 {
            let mut r = Recorder::new(0, tx.clone());
            for i in 0..3u64 {
                // Receive at second i, 10 µs after intended, 4 µs after sent.
                let now = i * INTERVAL_NS + 100_000 + t;
                r.record(now, now - 10_000, now - 4_000);
            }
        }
        drop(tx);
        let c = handle.join().expect("collector");
        assert_eq!(c.corrected.len(), 6);
        assert_eq!(c.intervals.len(), 3);
        assert!(c.intervals.iter().all(|iv| iv.corrected.len() == 2));
        let p = Percentiles::from_hist(&c.corrected);
        assert!((p.p50 - 10.0).abs() < 0.01);
        let s = Percentiles::from_hist(&c.service);
        assert!((s.max - 4.0).abs() < 0.01);
    }
}
