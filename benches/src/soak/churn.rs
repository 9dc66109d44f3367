//! Connection churn beside the pair: `rate` clients a second, each on a
//! fresh connection, go through connect, subscribe (a literal subject, a
//! `*` wildcard and a wildcard shared by every churn client), publish a
//! little, check that their own messages came back, unsubscribe, check that
//! nothing of theirs comes back any more, and disconnect.
//!
//! Client k is due at start + k/rate; `concurrency` worker threads take the
//! next k from an atomic counter, so at most that many cycles overlap, and a
//! slow server shows up as fewer completed cycles per interval (never as an
//! unbounded pile of connections). The counters are swapped to 0 by the
//! coordinator once per interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::client::{Conn, Event};
use crate::clock::{self, now_ns};
use crate::soak::pair::lock;

/// Messages each churn client publishes to its own literal subject.
const OWN_PUBLISHES: u64 = 3;
/// Its three subscriptions all match that subject.
const OWN_DELIVERIES: u64 = 3 * OWN_PUBLISHES;
/// Failure texts kept for the report (the counters keep counting).
const KEEP_FAILURES: usize = 10;
/// Bound on every wait of a cycle.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Small read buffer: churn clients carry little.
const READ_BUF: usize = 4096;

#[derive(Default)]
pub struct ChurnCounters {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// The first few failures, for the report.
    pub failures: Mutex<Vec<String>>,
}

/// Starts the workers; they stop by themselves at `end_ns`.
pub fn spawn(
    server: &str,
    rate: f64,
    concurrency: usize,
    start_ns: u64,
    end_ns: u64,
    counters: Arc<ChurnCounters>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let next = Arc::new(AtomicU64::new(0));
    let period = 1e9 / rate;
    (0..concurrency)
        .map(|w| {
            let (server, next, counters) = (server.to_string(), next.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("soak-churn-{w}"))
                .spawn(move || loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let due = start_ns + (k as f64 * period) as u64;
                    if due >= end_ns {
                        return;
                    }
                    clock::wait_until(due);
                    match cycle(&server, k) {
                        Ok(()) => {
                            counters.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            counters.failed.fetch_add(1, Ordering::Relaxed);
                            let mut f = lock(&counters.failures);
                            if f.len() < KEEP_FAILURES {
                                f.push(format!("churn client {k}: {e}"));
                            }
                        }
                    }
                })
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// One client's life. Every step is bounded by [`STEP_TIMEOUT`].
fn cycle(server: &str, k: u64) -> Result<(), String> {
    let mut c = Conn::connect_with_buffer(server, READ_BUF).map_err(|e| format!("connect: {e}"))?;
    let own = format!("soak.churn.{k}");
    let literal = format!("{own}.x");
    c.out.subscribe(&literal, None, 1);
    c.out.subscribe(&format!("{own}.*"), None, 2);
    c.out.subscribe("soak.churn.*.x", None, 3);
    for _ in 0..OWN_PUBLISHES {
        c.out.publish(literal.as_bytes(), None, b"churn");
    }
    let got = ping_and_count(&mut c, &own)?;
    if got != OWN_DELIVERIES {
        return Err(format!(
            "got {got} of its {OWN_DELIVERIES} own messages before the PONG"
        ));
    }
    c.out.raw(b"UNSUB 1\r\nUNSUB 2\r\nUNSUB 3\r\n");
    c.out.publish(literal.as_bytes(), None, b"churn");
    let after = ping_and_count(&mut c, &own)?;
    if after != 0 {
        return Err(format!("{after} own messages delivered after UNSUB"));
    }
    c.shutdown();
    Ok(())
}

/// Sends what is buffered and a PING; counts the messages on the client's
/// own subjects (`prefix.`) until the PONG. Messages from other churn
/// clients (the shared wildcard) are not counted: their timing is not ours.
fn ping_and_count(c: &mut Conn, prefix: &str) -> Result<u64, String> {
    c.out.raw(b"PING\r\n");
    c.out.flush().map_err(|e| format!("write: {e}"))?;
    let deadline = now_ns() + STEP_TIMEOUT.as_nanos() as u64;
    let mut own = 0;
    loop {
        match c.reader.next_event() {
            Ok(Some(Event::Pong)) => return Ok(own),
            Ok(Some(Event::Msg { subject, .. })) => {
                let s = subject.strip_prefix(prefix.as_bytes());
                if s.is_some_and(|rest| rest.starts_with(b".")) {
                    own += 1;
                }
            }
            Ok(Some(Event::Ping)) => {
                c.out.raw(b"PONG\r\n");
                c.out.flush().map_err(|e| format!("write: {e}"))?;
            }
            Ok(Some(Event::Err(e))) => return Err(format!("-ERR {e}")),
            Ok(Some(_)) | Ok(None) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        if now_ns() > deadline {
            return Err(format!("no PONG within {STEP_TIMEOUT:?}"));
        }
    }
}
