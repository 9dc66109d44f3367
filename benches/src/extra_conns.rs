//! Connections a run holds besides the measured ones, to measure latency
//! "where users feel it": on a server that also carries many idle clients
//! (`--idle-conns`), or slow subscribers on the measured subject
//! (`--slow-subs`, `--slow-rate`).
//!
//! Neither kind is measured nor counted in the run's expected/received
//! totals, and neither can fail the run: what happened to them is reported.
//! Idle connections are all served by one thread that waits on their sockets
//! with epoll and answers server PINGs; each slow subscriber has its own
//! thread that reads at a throttled byte rate and counts what it gets. Both
//! are opened after the measured connections, so those keep their connection
//! numbers (percore places connection k on shard (k-1) mod N).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{Conn, Event};
use crate::clock::now_ns;

/// Read buffer an idle connection starts with (it grows if the server sends
/// a larger frame, e.g. a long INFO).
const IDLE_READ_BUF: usize = 4 * 1024;
/// How long the idle thread waits in epoll_wait(2) before looking at the stop flag.
const IDLE_POLL_MS: libc::c_int = 200;
/// Dropped idle connections listed one by one in the summary.
const MAX_DROP_SAMPLES: usize = 20;
/// A slow subscriber reads at most this much per read(), and the token bucket
/// holds at most this much: the rate is kept within one chunk at any moment.
pub const SLOW_CHUNK: usize = 4 * 1024;
/// Longest single sleep of a slow subscriber, so it notices the stop flag.
const SLOW_MAX_SLEEP: Duration = Duration::from_millis(50);

// ------------------------------------------------------------ idle connections

/// One idle connection the server dropped during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleDrop {
    /// 0-based index among the idle connections.
    pub idx: usize,
    /// The server's `client_id` for it (INFO).
    pub client_id: u64,
    /// CLOCK_MONOTONIC ns when it was noticed.
    #[serde(skip)]
    pub at_ns: u64,
    /// Seconds after publishing started (negative: before); set by the coordinator.
    pub after_s: f64,
    pub reason: String,
}

/// What the idle connections went through, for the summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleReport {
    pub opened: usize,
    /// Server PINGs answered with a PONG, over all idle connections.
    pub pings: u64,
    pub dropped: usize,
    /// The first few drops.
    pub drops: Vec<IdleDrop>,
    /// A failure of the keep-alive thread itself (not of the server).
    pub error: Option<String>,
}

/// The idle connections and the thread that keeps them alive.
pub struct IdleConns {
    opened: usize,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<IdleReport>>,
}

/// Opens `n` connections (INFO, CONNECT, PING/PONG each) and hands them to
/// one keep-alive thread. `progress` prints what is going on to stderr.
pub fn open_idle(server: &str, n: usize, progress: bool) -> Result<IdleConns, String> {
    if progress {
        eprintln!("  opening {n} idle connections...");
    }
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let c = Conn::connect_with_buffer(server, IDLE_READ_BUF)
            .map_err(|e| format!("idle connection {i}: connect {server}: {e}"))?;
        c.set_nonblocking(true)
            .map_err(|e| format!("idle connection {i}: {e}"))?;
        conns.push(c);
    }
    let epoll = Epoll::new().map_err(|e| format!("idle connections: epoll_create: {e}"))?;
    for (i, c) in conns.iter_mut().enumerate() {
        // Nothing is buffered after the handshake; an idle connection only
        // ever writes a PONG, so it keeps no 128 KiB write buffer.
        c.out.buf = Vec::new();
        epoll
            .ctl(libc::EPOLL_CTL_ADD, c.as_raw_fd(), i)
            .map_err(|e| format!("idle connection {i}: epoll_ctl: {e}"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let join = std::thread::Builder::new()
        .name("idle-conns".into())
        .spawn(move || idle_loop(conns, epoll, &stop2))
        .map_err(|e| format!("idle connections: spawn: {e}"))?;
    Ok(IdleConns {
        opened: n,
        stop,
        join: Some(join),
    })
}

impl IdleConns {
    /// Stops the keep-alive thread and closes every connection.
    pub fn finish(mut self) -> IdleReport {
        self.stop.store(true, Ordering::Relaxed);
        match self.join.take().map(|j| j.join()) {
            Some(Ok(r)) => r,
            _ => IdleReport {
                opened: self.opened,
                error: Some("the idle connection thread panicked".into()),
                ..Default::default()
            },
        }
    }
}

impl Drop for IdleConns {
    fn drop(&mut self) {
        // A run that ends early (error) must not leave the thread polling.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An epoll instance watching sockets for input, each tagged with its index.
/// epoll rather than poll(2): poll registers on every socket at every call,
/// which for thousands of sockets costs a noticeable share of a CPU.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// EPOLL_CTL_ADD or EPOLL_CTL_DEL for `fd`, watched for input.
    fn ctl(&self, op: libc::c_int, fd: RawFd, idx: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: idx as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for input; the tags of the ready sockets.
    fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout_ms: libc::c_int,
    ) -> io::Result<Vec<usize>> {
        // SAFETY: `events` is a live, exclusively borrowed buffer of
        // `events.len()` entries; the kernel writes at most that many.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(events[..n as usize]
            .iter()
            .map(|e| e.u64 as usize)
            .collect())
    }
}

fn idle_loop(mut conns: Vec<Conn>, epoll: Epoll, stop: &AtomicBool) -> IdleReport {
    let mut report = IdleReport {
        opened: conns.len(),
        ..Default::default()
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    // Last -ERR per connection: the reason a following close gives.
    let mut last_err: Vec<Option<String>> = vec![None; conns.len()];
    let mut gone = vec![false; conns.len()];
    while !stop.load(Ordering::Relaxed) {
        let ready = match epoll.wait(&mut events, IDLE_POLL_MS) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                report.error = Some(format!("idle connections: epoll_wait: {e}"));
                break;
            }
        };
        for i in ready {
            if i >= conns.len() || gone[i] {
                continue;
            }
            if let Err(e) = serve_idle(&mut conns[i], &mut last_err[i], &mut report.pings) {
                let reason = match last_err[i].take() {
                    Some(err) => format!("-ERR '{err}', then {e}"),
                    None => e.to_string(),
                };
                report.dropped += 1;
                if report.drops.len() < MAX_DROP_SAMPLES {
                    report.drops.push(IdleDrop {
                        idx: i,
                        client_id: conns[i].info.client_id,
                        at_ns: now_ns(),
                        after_s: 0.0,
                        reason,
                    });
                }
                gone[i] = true;
                // The reader and writer handles are two descriptors for one
                // socket: epoll keeps reporting it until it is removed.
                let _ = epoll.ctl(libc::EPOLL_CTL_DEL, conns[i].as_raw_fd(), i);
                conns[i].shutdown();
            }
        }
    }
    for c in &conns {
        c.shutdown();
    }
    report
}

/// Reads whatever the server sent an idle connection and answers its PINGs.
/// Err when the connection is gone.
fn serve_idle(c: &mut Conn, last_err: &mut Option<String>, pings: &mut u64) -> io::Result<()> {
    loop {
        match c.reader.next_event()? {
            None => return Ok(()),
            Some(Event::Ping) => {
                // Six bytes to a socket with nothing queued: a short write
                // would be a broken connection, reported as such.
                c.out.raw(b"PONG\r\n");
                c.out.flush()?;
                *pings += 1;
            }
            Some(Event::Err(e)) => *last_err = Some(e),
            Some(_) => {}
        }
    }
}

// ------------------------------------------------------------- slow subscribers

/// Token bucket for throttled reading: `rate` bytes/s, at most `burst` saved
/// up. Consuming may go into debt (a read returns more than was left); the
/// debt is paid back by waiting, so the long-run rate is exact.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ns`.
    pub fn new(rate_bytes_per_s: u64, burst: usize, now_ns: u64) -> TokenBucket {
        TokenBucket {
            rate: rate_bytes_per_s.max(1) as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last_ns: now_ns,
        }
    }

    /// Adds the tokens earned since the last refill, up to `burst`.
    pub fn refill(&mut self, now_ns: u64) {
        let dt_ns = now_ns.saturating_sub(self.last_ns) as f64;
        self.tokens = (self.tokens + dt_ns * self.rate / 1e9).min(self.burst);
        self.last_ns = self.last_ns.max(now_ns);
    }

    pub fn consume(&mut self, bytes: u64) {
        self.tokens -= bytes as f64;
    }

    /// Nanoseconds to wait before the next read (0: read now).
    pub fn wait_ns(&self) -> u64 {
        if self.tokens > 0.0 {
            0
        } else {
            // Wait until at least one byte's worth is back.
            ((1.0 - self.tokens) * 1e9 / self.rate).ceil() as u64
        }
    }
}

/// One slow subscriber's run, for the summary.
///
/// A server that cuts a slow subscriber off discards what it still holds for
/// it, but what already sits in the socket buffers (megabytes on loopback)
/// is read first (and the server's FIN only leaves once that is sent):
/// reading at the throttled rate, the client would see the close long after
/// it happened. So at the end of the run each slow subscriber drains its
/// socket at full speed: it either reaches the close (cut off) or runs dry
/// with the connection still open. The publish time of the last message it
/// got is then a lower bound of when it was cut off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlowSubReport {
    /// 0-based index among the slow subscribers.
    pub idx: usize,
    /// The server's `client_id` for it (INFO).
    pub client_id: u64,
    pub rate_bytes_per_s: u64,
    /// Messages and payload bytes it received, warm-up and drain included.
    pub msgs: u64,
    pub bytes: u64,
    /// Of `msgs`, those read in the full-speed drain after the run: what was
    /// still queued for it (in the server or the socket buffers).
    pub drained_msgs: u64,
    /// Bytes read from the socket (protocol included).
    pub read_bytes: u64,
    /// The server sent a -ERR naming a slow consumer.
    pub slow_consumer_err: bool,
    /// The server closed the connection (seen during the run or the drain).
    pub disconnected: bool,
    /// When the client read the close, in seconds after publishing started.
    pub disconnect_seen_after_s: Option<f64>,
    /// When the last message it received was due to be published, in
    /// seconds after publishing started (stamped runs only): a cut-off
    /// happened after this.
    pub last_msg_published_after_s: Option<f64>,
    /// The drain stopped at its time limit with data still coming.
    pub drain_incomplete: bool,
    #[serde(skip)]
    pub disconnect_seen_at_ns: Option<u64>,
    #[serde(skip)]
    pub last_msg_intended_ns: Option<u64>,
    /// -ERR texts and the close reason.
    pub errors: Vec<String>,
}

/// The slow subscribers and their threads.
pub struct SlowSubs {
    stop: Arc<AtomicBool>,
    joins: Vec<JoinHandle<SlowSubReport>>,
}

/// Opens `n` subscribers on `subject` (each subscription confirmed with a
/// PING/PONG) and starts each one's throttled reader. `stamped`: payloads
/// start with the intended send time (see `scenario::STAMP_LEN`).
pub fn open_slow(
    server: &str,
    subject: &str,
    n: usize,
    rate_bytes_per_s: u64,
    stamped: bool,
) -> Result<SlowSubs, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut subs = SlowSubs {
        stop: stop.clone(),
        joins: Vec::with_capacity(n),
    };
    for i in 0..n {
        let mut c = Conn::connect_with_buffer(server, 64 * 1024)
            .map_err(|e| format!("slow subscriber {i}: connect {server}: {e}"))?;
        c.out.subscribe(subject, None, 1);
        c.round_trip(Duration::from_secs(5))
            .map_err(|e| format!("slow subscriber {i}: subscribe: {e}"))?;
        // Blocking reads with a short timeout, so the thread notices `stop`.
        c.set_read_timeout(Some(SLOW_MAX_SLEEP))
            .map_err(|e| format!("slow subscriber {i}: {e}"))?;
        c.reader.limit_reads(SLOW_CHUNK);
        let stop2 = stop.clone();
        let j = std::thread::Builder::new()
            .name(format!("slow-sub-{i}"))
            .spawn(move || slow_loop(i, c, rate_bytes_per_s, stamped, &stop2))
            .map_err(|e| format!("slow subscriber {i}: spawn: {e}"))?;
        subs.joins.push(j);
    }
    Ok(subs)
}

impl SlowSubs {
    /// Ends the throttled reading, drains each socket (bounded), closes the
    /// connections and returns what each subscriber saw.
    pub fn finish(mut self) -> Vec<SlowSubReport> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.joins)
            .into_iter()
            .enumerate()
            .map(|(idx, j)| {
                j.join().unwrap_or_else(|_| SlowSubReport {
                    idx,
                    errors: vec!["the slow subscriber thread panicked".into()],
                    ..Default::default()
                })
            })
            .collect()
    }
}

impl Drop for SlowSubs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The drain ends after this long without data (the connection is open and
/// nothing more is queued)...
const DRAIN_IDLE: Duration = Duration::from_millis(300);
/// ...or after this long in all.
const DRAIN_MAX: Duration = Duration::from_secs(5);
fn slow_loop(
    idx: usize,
    mut c: Conn,
    rate: u64,
    stamped: bool,
    stop: &AtomicBool,
) -> SlowSubReport {
    let mut r = SlowSubReport {
        idx,
        client_id: c.info.client_id,
        rate_bytes_per_s: rate,
        ..Default::default()
    };
    // The run: read at the throttled rate until stopped or cut off.
    let mut bucket = TokenBucket::new(rate, SLOW_CHUNK, now_ns());
    let mut charged = c.reader.bytes_read;
    let mut gone = None;
    while !stop.load(Ordering::Relaxed) {
        bucket.refill(now_ns());
        let wait = bucket.wait_ns();
        if wait > 0 {
            std::thread::sleep(Duration::from_nanos(wait).min(SLOW_MAX_SLEEP));
            continue;
        }
        let res = read_one(&mut c, &mut r, stamped);
        bucket.consume(c.reader.bytes_read - charged);
        charged = c.reader.bytes_read;
        if let Err(e) = res {
            gone = Some(e);
            break;
        }
    }
    // The drain: full speed, bounded, to find out whether it was cut off.
    if gone.is_none() {
        c.reader.limit_reads(usize::MAX);
        let msgs_before = r.msgs;
        let end = now_ns() + DRAIN_MAX.as_nanos() as u64;
        gone = match c.set_read_timeout(Some(DRAIN_IDLE)) {
            Err(e) => Some(e),
            Ok(()) => loop {
                if now_ns() >= end {
                    r.drain_incomplete = true;
                    break None;
                }
                match read_one(&mut c, &mut r, stamped) {
                    Ok(true) => {}
                    Ok(false) => break None, // quiet for DRAIN_IDLE: still open
                    Err(e) => break Some(e),
                }
            },
        };
        r.drained_msgs = r.msgs - msgs_before;
    }
    if let Some(e) = gone {
        r.disconnected = true;
        r.disconnect_seen_at_ns = Some(now_ns());
        r.errors.push(e.to_string());
    }
    r.read_bytes = c.reader.bytes_read;
    c.shutdown();
    r
}

/// Reads and books one event; Ok(false) when the read timed out with
/// nothing, Err when the connection is gone.
fn read_one(c: &mut Conn, r: &mut SlowSubReport, stamped: bool) -> io::Result<bool> {
    match c.reader.next_event()? {
        None => return Ok(false),
        Some(Event::Msg { payload, .. }) => {
            r.msgs += 1;
            r.bytes += payload.len() as u64;
            if stamped && payload.len() >= 8 {
                let mut a = [0u8; 8];
                a.copy_from_slice(&payload[..8]);
                r.last_msg_intended_ns = Some(u64::from_le_bytes(a));
            }
        }
        Some(Event::Ping) => {
            c.out.raw(b"PONG\r\n");
            c.out.flush()?;
        }
        Some(Event::Err(e)) => {
            if e.to_ascii_lowercase().contains("slow consumer") {
                r.slow_consumer_err = true;
            }
            r.errors.push(format!("-ERR '{e}'"));
        }
        Some(_) => {}
    }
    Ok(true)
}

/// Makes room for `needed` open descriptors: raises the soft RLIMIT_NOFILE
/// up to the hard limit when that is enough, else says what to change.
pub fn ensure_fd_limit(needed: u64) -> Result<(), String> {
    shards::rlimit::ensure_soft_limit(libc::RLIMIT_NOFILE, needed).map_err(|limit| {
        format!(
            "this run needs about {needed} open files (two per connection) but the limit is {} (hard {}); raise it with ulimit -n",
            limit.soft, limit.hard
        )
    })
}

/// Seconds from `origin_ns` to `at_ns` (negative when before).
pub fn secs_since(origin_ns: u64, at_ns: u64) -> f64 {
    (at_ns as f64 - origin_ns as f64) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn bucket_starts_full_and_waits_off_debt() {
        // 1000 B/s, 100 B burst.
        let mut b = TokenBucket::new(1000, 100, 0);
        assert_eq!(b.wait_ns(), 0);
        b.consume(300); // 200 B of debt (plus the 1 B it waits for): 201 ms
        assert_eq!(b.wait_ns(), 201 * MS);
        b.refill(100 * MS); // 100 B back: 100 B of debt left
        assert_eq!(b.wait_ns(), 101 * MS);
        b.refill(201 * MS);
        assert_eq!(b.wait_ns(), 0);
    }

    #[test]
    fn bucket_saves_at_most_burst() {
        let mut b = TokenBucket::new(1000, 100, 0);
        b.consume(100);
        b.refill(10_000 * MS); // ten idle seconds earn 10000 B, capped at 100
        b.consume(150);
        assert_eq!(b.wait_ns(), 51 * MS);
    }

    #[test]
    fn bucket_keeps_the_long_run_rate() {
        // Read 4 KiB whenever allowed for 10 simulated seconds at 256 KiB/s.
        let rate = 256 * 1024;
        let mut b = TokenBucket::new(rate, SLOW_CHUNK, 0);
        let (mut now, mut read) = (0u64, 0u64);
        while now < 10_000 * MS {
            b.refill(now);
            match b.wait_ns() {
                0 => {
                    b.consume(SLOW_CHUNK as u64);
                    read += SLOW_CHUNK as u64;
                }
                w => now += w,
            }
        }
        let expected = 10 * rate;
        assert!(
            read.abs_diff(expected) <= 2 * SLOW_CHUNK as u64,
            "{read} vs {expected}"
        );
    }

    #[test]
    fn clock_going_backwards_earns_nothing() {
        let mut b = TokenBucket::new(1000, 100, 50 * MS);
        b.consume(100);
        b.refill(10 * MS);
        assert_eq!(b.wait_ns(), MS);
    }
}
