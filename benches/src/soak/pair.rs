//! The soak's healthy pair: one fixed-rate publisher and one subscriber on
//! one subject. The payload carries [intended send ns][actual send ns]
//! [sequence]; the subscriber records latency from the intended time
//! (coordinated-omission corrected, as the latency mode does) and counts a
//! gap in the sequence as lost messages: NATS keeps one publisher's order
//! towards one subscriber, so a gap is a loss, never a reordering.
//!
//! Concurrency: the publisher thread owns the schedule; each connection's
//! writer is an `Arc<Mutex<OutBuf>>` shared with the thread that reads that
//! connection (it answers the server's PINGs). The subscriber adds to
//! [`Tally`] under a mutex the coordinator swaps out once per interval, and
//! `sent` is an atomic the coordinator swaps the same way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::client::{Conn, Event, OutBuf, Reader};
use crate::clock::{self, now_ns};
use crate::latency::new_hist;

/// Payload prefix: intended ns, sent ns, sequence number (little endian).
pub const PAIR_STAMP_LEN: usize = 24;
/// When behind schedule, flush at least this often (as the latency mode).
const BEHIND_BATCH: usize = 16 * 1024;

/// What the subscriber saw since the coordinator last took it.
pub struct Tally {
    pub received: u64,
    pub lost: u64,
    pub latency: Histogram<u64>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            received: 0,
            lost: 0,
            latency: new_hist(),
        }
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// State shared by the pair's threads and the coordinator.
#[derive(Default)]
pub struct PairState {
    /// Readers stop at the next read timeout once this is set.
    pub stop: AtomicBool,
    /// Messages sent since the coordinator last swapped it to 0.
    pub sent: AtomicU64,
    /// The sequence number the subscriber expects next (= messages seen or
    /// skipped so far).
    pub next_seq: AtomicU64,
    pub tally: Mutex<Tally>,
    /// -ERRs, disconnects, failed writes: any of them fails the soak.
    pub errors: Mutex<Vec<String>>,
}

impl PairState {
    fn error(&self, e: String) {
        lock(&self.errors).push(e);
    }
}

/// A poisoned lock only means another thread panicked; counts stay usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection of the pair: its writer and the PONGs its reader saw.
pub struct Side {
    out: Arc<Mutex<OutBuf>>,
    pongs: Receiver<()>,
    reader: JoinHandle<()>,
}

impl Side {
    /// PING and wait for the PONG: everything before it was processed (on
    /// the subscriber: everything routed to it before has arrived).
    pub fn fence(&self, timeout: Duration) -> Result<(), String> {
        if self.reader.is_finished() {
            return Err("the connection is gone".into());
        }
        {
            let mut o = lock(&self.out);
            o.raw(b"PING\r\n");
            o.flush().map_err(|e| format!("PING: {e}"))?;
        }
        self.pongs
            .recv_timeout(timeout)
            .map_err(|_| format!("no PONG within {timeout:?}"))
    }

    pub fn join(self) {
        let _ = self.reader.join();
    }
}

/// The pair's parameters.
pub struct PairPlan {
    pub subject: String,
    pub size: usize,
    pub rate: f64,
}

/// Connects the subscriber (first, so nothing is published before its
/// interest is in place) and the publisher's connection.
pub fn connect(
    server: &str,
    plan: &PairPlan,
    state: &Arc<PairState>,
) -> Result<(Side, Side), String> {
    let mut sub =
        Conn::connect(server).map_err(|e| format!("subscriber: connect {server}: {e}"))?;
    sub.out.subscribe(&plan.subject, None, 1);
    sub.round_trip(Duration::from_secs(5))
        .map_err(|e| format!("subscriber: subscribe: {e}"))?;
    let publ = Conn::connect(server).map_err(|e| format!("publisher: connect {server}: {e}"))?;
    let sub_side = spawn_reader("soak-sub", sub, state.clone(), true)?;
    let pub_side = spawn_reader("soak-pub-rd", publ, state.clone(), false)?;
    Ok((pub_side, sub_side))
}

fn spawn_reader(
    name: &str,
    conn: Conn,
    state: Arc<PairState>,
    subscriber: bool,
) -> Result<Side, String> {
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let Conn { reader, out, .. } = conn;
    let out = Arc::new(Mutex::new(out));
    let (tx, rx) = crossbeam_channel::unbounded();
    let (out2, who) = (out.clone(), name.to_string());
    let reader = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || read_loop(&who, reader, &out2, &state, &tx, subscriber))
        .map_err(|e| e.to_string())?;
    Ok(Side {
        out,
        pongs: rx,
        reader,
    })
}

fn read_loop(
    who: &str,
    mut reader: Reader,
    out: &Mutex<OutBuf>,
    state: &PairState,
    pongs: &Sender<()>,
    subscriber: bool,
) {
    let mut expected = 0u64;
    while !state.stop.load(Ordering::Relaxed) {
        let ev = match reader.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(e) => {
                if !state.stop.load(Ordering::Relaxed) {
                    state.error(format!("{who}: connection lost: {e}"));
                }
                return;
            }
        };
        match ev {
            Event::Msg {
                payload, recv_ns, ..
            } if subscriber => {
                if payload.len() < PAIR_STAMP_LEN {
                    state.error(format!("{who}: short payload ({} bytes)", payload.len()));
                    continue;
                }
                let intended = read_u64(&payload[0..8]);
                let seq = read_u64(&payload[16..24]);
                let mut t = lock(&state.tally);
                t.received += 1;
                t.latency
                    .saturating_record(recv_ns.saturating_sub(intended).max(1));
                match gap(expected, seq) {
                    Some(lost) => {
                        t.lost += lost;
                        drop(t);
                        expected = seq + 1;
                        state.next_seq.store(expected, Ordering::Relaxed);
                    }
                    None => {
                        drop(t);
                        state.error(format!("{who}: sequence {seq} after {}", expected - 1));
                    }
                }
            }
            Event::Msg { .. } | Event::Ok | Event::Info(_) => {}
            Event::Ping => {
                let mut o = lock(out);
                o.raw(b"PONG\r\n");
                if let Err(e) = o.flush() {
                    state.error(format!("{who}: PONG: {e}"));
                }
            }
            Event::Pong => {
                let _ = pongs.send(());
            }
            Event::Err(e) => state.error(format!("{who}: -ERR {e}")),
        }
    }
}

/// Messages skipped when `seq` arrives while `expected` was due; None when
/// the sequence went backwards (a duplicate or a reordering: an error).
pub fn gap(expected: u64, seq: u64) -> Option<u64> {
    seq.checked_sub(expected)
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Publishes at `plan.rate` from `start_ns` until `end_ns`: message i is due
/// at start + i/rate; when behind it sends at once (never skips), so the
/// subscriber, measuring from the due time, sees the delay. Returns the
/// number sent, and the write error that stopped it early.
pub fn publish(
    side: &Side,
    plan: &PairPlan,
    start_ns: u64,
    end_ns: u64,
    state: &PairState,
) -> (u64, Result<(), String>) {
    let mut sent = 0;
    let r = publish_counting(side, plan, start_ns, end_ns, state, &mut sent);
    (sent, r)
}

fn publish_counting(
    side: &Side,
    plan: &PairPlan,
    start_ns: u64,
    end_ns: u64,
    state: &PairState,
    i: &mut u64,
) -> Result<(), String> {
    clock::tighten_timer_slack();
    let mut header = Vec::new();
    header.extend_from_slice(b"PUB ");
    header.extend_from_slice(plan.subject.as_bytes());
    header.push(b' ');
    crate::client::push_usize(&mut header, plan.size);
    header.extend_from_slice(b"\r\n");
    let payload = vec![0u8; plan.size];
    let period = 1e9 / plan.rate;
    loop {
        let intended = start_ns + (*i as f64 * period) as u64;
        if intended >= end_ns {
            break;
        }
        clock::wait_until(intended);
        let mut o = lock(&side.out);
        o.buf.extend_from_slice(&header);
        let at = o.buf.len();
        o.buf.extend_from_slice(&payload);
        o.buf[at..at + 8].copy_from_slice(&intended.to_le_bytes());
        o.buf[at + 8..at + 16].copy_from_slice(&now_ns().to_le_bytes());
        o.buf[at + 16..at + 24].copy_from_slice(&i.to_le_bytes());
        o.buf.extend_from_slice(b"\r\n");
        *i += 1;
        let next_due = start_ns + (*i as f64 * period) as u64;
        if now_ns() < next_due || o.buf.len() >= BEHIND_BATCH {
            o.flush().map_err(|e| format!("publisher: write: {e}"))?;
        }
        drop(o);
        state.sent.fetch_add(1, Ordering::Relaxed);
    }
    lock(&side.out)
        .flush()
        .map_err(|e| format!("publisher: write: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_are_losses() {
        assert_eq!(gap(0, 0), Some(0));
        assert_eq!(gap(5, 9), Some(4));
        assert_eq!(gap(5, 4), None);
    }
}
