//! Scenarios: who connects, who publishes what at which pace, who receives,
//! and how the run is fenced so that counts are exact.
//!
//! Fencing uses the protocol itself. A publisher's PING/PONG round trip means
//! the server has processed (and routed) everything it sent; a PING on a
//! subscriber's connection after that comes back behind every message already
//! queued for it. So "publishers flushed, then every subscriber PONGed" is the
//! point where each subscriber has everything it will get, and a short settle
//! window covers brokers that route asynchronously (cross-shard hand-off).
//! Whatever is still missing then is reported as lost, never hidden.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use crate::client::{Conn, Event, OutBuf, ServerInfo, FLUSH_AT};
use crate::clock::{self, now_ns};
use crate::extra_conns::{self, IdleReport, SlowSubReport};
use crate::latency::{self, Collected, IntervalHists, Recorder};
use crate::stats::ClientStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Publishers only (server ingest rate).
    Pub,
    /// Subscribers only, counting messages published by someone else.
    Sub,
    /// P publishers and S subscribers on one subject.
    Pubsub,
    /// One publisher, S subscribers each getting every message.
    Fanout,
    /// One publisher, S subscribers in one queue group (each message once).
    Queue,
    /// Requesters doing sequential request/reply against S responders.
    Reqrep,
    /// Fixed-rate publisher, subscribers record end-to-end latency.
    Latency,
    /// Long run: fixed-rate pair plus connection churn, one row per
    /// --interval (issue 15; benches/soak.sh drives it).
    Soak,
}

/// Everything a run needs, resolved from the command line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub mode: Mode,
    pub server: String,
    /// Where subscribers and responders connect, if not `server`.
    pub sub_server: Option<String>,
    /// Pause between the subscribers being in place and the first publish
    /// (their interest crossing a cluster route).
    pub interest_wait: Duration,
    pub subject: String,
    /// Messages in the measured phase (all publishers together); None = until `duration`.
    pub msgs: Option<u64>,
    pub size: usize,
    pub pubs: usize,
    pub subs: usize,
    pub queue: Option<String>,
    pub duration: Option<Duration>,
    pub warmup: Duration,
    /// Messages per second over all publishers; 0 = closed loop (as fast as possible).
    pub rate: f64,
    pub pin: Vec<usize>,
    /// How long to wait for stragglers after the final fence.
    pub settle: Duration,
    /// Hard bound on the whole run.
    pub timeout: Duration,
    pub progress: bool,
    /// Extra connections held idle for the whole run (not measured).
    pub idle_conns: usize,
    /// Extra subscribers on `subject` reading only `slow_rate` bytes/s each
    /// (not measured, not counted; the server may cut them off).
    pub slow_subs: usize,
    pub slow_rate: u64,
}

impl Config {
    /// The payload carries timestamps (intended and actual send time).
    pub fn stamped(&self) -> bool {
        self.mode == Mode::Latency || self.rate > 0.0
    }
    pub fn open_loop(&self) -> bool {
        self.rate > 0.0
    }
}

/// Payload layout when stamped: [intended send ns][actual send ns][rest zero].
pub const STAMP_LEN: usize = 16;

/// What a run produced, before formatting.
pub struct Outcome {
    pub server: ServerInfo,
    pub started_at: SystemTime,
    pub pub_stats: Vec<ClientStats>,
    pub sub_stats: Vec<ClientStats>,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub errors: Vec<String>,
    pub slow_consumers: u64,
    pub disconnects: u64,
    pub latency: Option<Collected>,
    /// Messages sent per second during the measured window (open loop: vs --rate).
    pub achieved_rate: f64,
    pub timed_out: bool,
    /// `--idle-conns`: what the idle connections went through.
    pub idle: Option<IdleReport>,
    /// `--slow-subs`: what each slow subscriber got. Not part of the counts
    /// above, and never a reason for the run to fail.
    pub slow_subs: Vec<SlowSubReport>,
}

impl Outcome {
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
    pub fn failed(&self) -> bool {
        self.lost() > 0
            || self.slow_consumers > 0
            || self.disconnects > 0
            || !self.errors.is_empty()
            || self.timed_out
    }
}

/// Shared run state every thread looks at.
struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
}

fn pin_thread(cfg: &Config, k: usize) {
    if cfg.pin.is_empty() {
        return;
    }
    let id = cfg.pin[k % cfg.pin.len()];
    // A failed pin (CPU not allowed) is not worth aborting a run for; say so.
    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
        eprintln!("warning: could not pin thread {k} to CPU {id}");
    }
}

// ---------------------------------------------------------------- subscribers

struct SubResult {
    stats: ClientStats,
    errors: Vec<String>,
    slow: u64,
    disconnected: bool,
}

enum Notice {
    Pong,
}

struct SubHandle {
    out: Arc<Mutex<OutBuf>>,
    notices: Receiver<Notice>,
    progress: Arc<AtomicU64>,
    join: JoinHandle<SubResult>,
}

struct SubSpec {
    idx: usize,
    stamped: bool,
    respond: bool,
    /// Reset counters at the first PONG (end of closed-loop warmup).
    reset_at_first_pong: bool,
    /// Open loop: latency is recorded only for messages due at or after this.
    measure_from: Arc<AtomicU64>,
    recorder: Option<Recorder>,
}

fn spawn_sub(
    cfg: &Config,
    conn: Conn,
    spec: SubSpec,
    shared: Arc<Shared>,
) -> std::io::Result<SubHandle> {
    // Short read timeout so the thread notices `stop` while idle.
    conn.set_read_timeout(Some(Duration::from_millis(100)))?;
    let Conn { reader, out, .. } = conn;
    let out = Arc::new(Mutex::new(out));
    let (ntx, nrx) = crossbeam_channel::unbounded();
    let progress = Arc::new(AtomicU64::new(0));
    let (out2, prog2, cfg2) = (out.clone(), progress.clone(), cfg.clone());
    let join = std::thread::Builder::new()
        .name(format!("sub-{}", spec.idx))
        .spawn(move || sub_loop(&cfg2, reader, out2, spec, shared, ntx, prog2))?;
    Ok(SubHandle {
        out,
        notices: nrx,
        progress,
        join,
    })
}

fn sub_loop(
    cfg: &Config,
    mut reader: crate::client::Reader,
    out: Arc<Mutex<OutBuf>>,
    mut spec: SubSpec,
    shared: Arc<Shared>,
    notices: Sender<Notice>,
    progress: Arc<AtomicU64>,
) -> SubResult {
    pin_thread(cfg, cfg.pubs + spec.idx);
    let mut st = ClientStats::default();
    let mut res = SubResult {
        stats: st,
        errors: Vec::new(),
        slow: 0,
        disconnected: false,
    };
    let mut pongs = 0u64;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let ev = match reader.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(e) => {
                if !shared.stop.load(Ordering::Relaxed) {
                    res.disconnected = true;
                    res.errors.push(format!("subscriber {}: {e}", spec.idx));
                }
                break;
            }
        };
        let mut respond_failed = None;
        match ev {
            Event::Msg {
                reply,
                payload,
                recv_ns,
                ..
            } => {
                if st.msgs == 0 {
                    st.start_ns = recv_ns;
                }
                st.msgs += 1;
                st.bytes += payload.len() as u64;
                st.end_ns = recv_ns;
                progress.store(st.msgs, Ordering::Relaxed);
                shared.received.fetch_add(1, Ordering::Relaxed);
                if spec.stamped && payload.len() >= STAMP_LEN {
                    let intended = read_u64(&payload[0..8]);
                    let sent = read_u64(&payload[8..16]);
                    if intended >= spec.measure_from.load(Ordering::Relaxed) {
                        if let Some(r) = spec.recorder.as_mut() {
                            r.record(recv_ns, intended, sent);
                        }
                    }
                }
                if spec.respond {
                    if let Some(r) = reply {
                        lock(&out).publish(r, None, payload);
                    }
                }
            }
            Event::Ping => {
                let mut o = lock(&out);
                o.raw(b"PONG\r\n");
                if let Err(e) = o.flush() {
                    respond_failed = Some(e);
                }
            }
            Event::Pong => {
                pongs += 1;
                if pongs == 1 && spec.reset_at_first_pong {
                    // Warmup traffic is fenced off: measurement restarts here.
                    shared.received.fetch_sub(st.msgs, Ordering::Relaxed);
                    st = ClientStats::default();
                    progress.store(0, Ordering::Relaxed);
                }
                let _ = notices.send(Notice::Pong);
            }
            Event::Err(e) => {
                if e.to_ascii_lowercase().contains("slow consumer") {
                    res.slow += 1;
                }
                res.errors
                    .push(format!("subscriber {}: -ERR {e}", spec.idx));
            }
            Event::Ok | Event::Info(_) => {}
        }
        // Responders batch replies for as long as requests are buffered.
        if spec.respond && !reader.has_buffered() {
            if let Err(e) = lock(&out).flush() {
                respond_failed = Some(e);
            }
        }
        if let Some(e) = respond_failed {
            res.disconnected = true;
            res.errors
                .push(format!("subscriber {}: write: {e}", spec.idx));
            break;
        }
    }
    res.stats = st;
    // Dropping the recorder ships its last interval to the collector.
    drop(spec.recorder.take());
    res
}

/// A poisoned lock only means another thread panicked mid-write; the buffer
/// is still usable for counting purposes.
fn lock(o: &Mutex<OutBuf>) -> std::sync::MutexGuard<'_, OutBuf> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// PING every subscriber and wait for each PONG (bounded).
fn fence_subs(subs: &[SubHandle], timeout: Duration) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        let mut o = lock(&s.out);
        o.raw(b"PING\r\n");
        if let Err(e) = o.flush() {
            errors.push(format!("subscriber {i}: PING: {e}"));
        }
    }
    let deadline = now_ns() + timeout.as_nanos() as u64;
    for (i, s) in subs.iter().enumerate() {
        let left = deadline.saturating_sub(now_ns());
        if s.join.is_finished() {
            continue;
        }
        if s.notices
            .recv_timeout(Duration::from_nanos(left.max(1)))
            .is_err()
        {
            errors.push(format!("subscriber {i}: no PONG within {timeout:?}"));
        }
    }
    errors
}

// ----------------------------------------------------------------- publishers

enum Ctl {
    Ping,
    Pong,
    Err(String),
    Closed(String),
}

struct PubResult {
    stats: ClientStats,
    errors: Vec<String>,
}

/// The publisher's reader thread: the publisher itself never blocks on reads,
/// so server PINGs, PONGs and -ERRs are forwarded over a channel and handled
/// at batch boundaries (keeps the write stream frame-aligned).
fn spawn_pub_reader(
    idx: usize,
    mut reader: crate::client::Reader,
    shared: Arc<Shared>,
) -> Receiver<Ctl> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let _ = std::thread::Builder::new()
        .name(format!("pub-rd-{idx}"))
        .spawn(move || loop {
            let c = match reader.next_event() {
                Ok(Some(Event::Ping)) => Ctl::Ping,
                Ok(Some(Event::Pong)) => Ctl::Pong,
                Ok(Some(Event::Err(e))) => Ctl::Err(e),
                Ok(Some(_)) => continue,
                Ok(None) => {
                    if shared.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    let _ = tx.send(Ctl::Closed(e.to_string()));
                    return;
                }
            };
            if tx.send(c).is_err() {
                return;
            }
        });
    rx
}

struct PubPlan {
    idx: usize,
    subject: Vec<u8>,
    size: usize,
    stamped: bool,
    /// Closed-loop warmup length (0 = none); fenced by the coordinator.
    warmup: Duration,
    /// Messages in the measured phase (open loop: including warmup messages).
    count: u64,
    /// Closed loop: stop after this long even if `count` is not reached.
    duration: Option<Duration>,
    /// Open loop: ns between this publisher's messages, and its first intended time.
    period_ns: f64,
    offset_ns: f64,
}

struct PubIo {
    out: OutBuf,
    ctl: Receiver<Ctl>,
    errors: Vec<String>,
}

impl PubIo {
    /// Handles control messages; Err if the connection is gone.
    fn poll_ctl(&mut self) -> Result<bool, String> {
        let mut got_pong = false;
        while let Ok(c) = self.ctl.try_recv() {
            got_pong |= self.handle(c)?;
        }
        Ok(got_pong)
    }

    fn handle(&mut self, c: Ctl) -> Result<bool, String> {
        match c {
            Ctl::Ping => {
                self.out.raw(b"PONG\r\n");
                Ok(false)
            }
            Ctl::Pong => Ok(true),
            Ctl::Err(e) => {
                self.errors.push(format!("publisher: -ERR {e}"));
                Ok(false)
            }
            Ctl::Closed(e) => Err(format!("publisher connection closed: {e}")),
        }
    }

    /// Flush and PING, wait for the PONG: the server has processed everything.
    fn fence(&mut self, timeout: Duration) -> Result<(), String> {
        self.out.raw(b"PING\r\n");
        self.out
            .flush()
            .map_err(|e| format!("publisher write: {e}"))?;
        let deadline = now_ns() + timeout.as_nanos() as u64;
        loop {
            let left = deadline.saturating_sub(now_ns());
            if left == 0 {
                return Err(format!("publisher: no PONG within {timeout:?}"));
            }
            match self.ctl.recv_timeout(Duration::from_nanos(left)) {
                Ok(c) => {
                    if self.handle(c)? {
                        return Ok(());
                    }
                    self.out.flush().map_err(|e| e.to_string())?;
                }
                Err(_) => return Err(format!("publisher: no PONG within {timeout:?}")),
            }
        }
    }
}

/// Appends one message; stamped payloads get [intended][sent] in front.
#[inline]
fn push_msg(out: &mut OutBuf, header: &[u8], payload: &[u8], stamp: Option<(u64, u64)>) {
    out.buf.extend_from_slice(header);
    let at = out.buf.len();
    out.buf.extend_from_slice(payload);
    if let Some((intended, sent)) = stamp {
        out.buf[at..at + 8].copy_from_slice(&intended.to_le_bytes());
        out.buf[at + 8..at + 16].copy_from_slice(&sent.to_le_bytes());
    }
    out.buf.extend_from_slice(b"\r\n");
}

fn publisher(
    cfg: &Config,
    plan: PubPlan,
    mut io: PubIo,
    barrier: Arc<Barrier>,
    shared: Arc<Shared>,
    t0: Arc<AtomicU64>,
) -> PubResult {
    pin_thread(cfg, plan.idx);
    clock::tighten_timer_slack();
    let mut header = Vec::new();
    header.extend_from_slice(b"PUB ");
    header.extend_from_slice(&plan.subject);
    header.push(b' ');
    crate::client::push_usize(&mut header, plan.size);
    header.extend_from_slice(b"\r\n");
    let payload = vec![0u8; plan.size];
    let mut failure: Option<String> = None;
    let fence_timeout = Duration::from_secs(30);

    barrier.wait(); // everyone connected
    if !plan.warmup.is_zero() {
        let end = now_ns() + plan.warmup.as_nanos() as u64;
        let r = (|| -> Result<(), String> {
            while now_ns() < end && !shared.stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    let stamp = plan.stamped.then(|| {
                        let t = now_ns();
                        (t, t)
                    });
                    push_msg(&mut io.out, &header, &payload, stamp);
                }
                io.out.flush_if_full().map_err(|e| e.to_string())?;
                io.poll_ctl()?;
            }
            io.fence(fence_timeout)
        })();
        if let Err(e) = r {
            failure = Some(e);
        }
        barrier.wait(); // warmup flushed; coordinator fences subscribers
        barrier.wait(); // subscribers reset; measured phase starts
    }

    let mut st = ClientStats {
        start_ns: now_ns(),
        ..Default::default()
    };
    if failure.is_none() {
        let r = if plan.period_ns > 0.0 {
            open_loop(&plan, &mut io, &header, &payload, &shared, &t0, &mut st)
        } else {
            closed_loop(&plan, &mut io, &header, &payload, &shared, &mut st)
        };
        if let Err(e) = r.and_then(|_| io.fence(fence_timeout)) {
            failure = Some(e);
        }
    }
    st.end_ns = now_ns();
    let mut errors = std::mem::take(&mut io.errors);
    if let Some(f) = failure {
        errors.push(format!("publisher {}: {f}", plan.idx));
    }
    PubResult { stats: st, errors }
}

fn closed_loop(
    plan: &PubPlan,
    io: &mut PubIo,
    header: &[u8],
    payload: &[u8],
    shared: &Shared,
    st: &mut ClientStats,
) -> Result<(), String> {
    let deadline_ns = plan.duration.map(|d| st.start_ns + d.as_nanos() as u64);
    let mut unreported = 0u64;
    let mut i = 0u64;
    while i < plan.count {
        let stamp = plan.stamped.then(|| {
            let t = now_ns();
            (t, t)
        });
        push_msg(&mut io.out, header, payload, stamp);
        i += 1;
        unreported += 1;
        if io.out.buf.len() >= FLUSH_AT {
            io.out.flush().map_err(|e| format!("write: {e}"))?;
            shared.sent.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
            io.poll_ctl()?;
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(d) = deadline_ns {
                if now_ns() >= d {
                    break;
                }
            }
        }
    }
    io.out.flush().map_err(|e| format!("write: {e}"))?;
    shared.sent.fetch_add(unreported, Ordering::Relaxed);
    st.msgs = i;
    st.bytes = i * plan.size as u64;
    Ok(())
}

/// Fixed-rate sending. Message i is due at t0 + offset + i*period; when the
/// publisher falls behind it sends immediately (never skips), so the receiver,
/// measuring from the due time, sees the delay the schedule would have seen.
fn open_loop(
    plan: &PubPlan,
    io: &mut PubIo,
    header: &[u8],
    payload: &[u8],
    shared: &Shared,
    t0: &AtomicU64,
    st: &mut ClientStats,
) -> Result<(), String> {
    // Small batches when behind: large ones would add client-side queueing
    // to the very latency being measured.
    const BEHIND_BATCH: usize = 16 * 1024;
    let base = t0.load(Ordering::Relaxed) as f64 + plan.offset_ns;
    st.start_ns = base as u64;
    let mut i = 0u64;
    while i < plan.count {
        let intended = (base + i as f64 * plan.period_ns) as u64;
        clock::wait_until(intended);
        push_msg(&mut io.out, header, payload, Some((intended, now_ns())));
        i += 1;
        let next_due = (base + i as f64 * plan.period_ns) as u64;
        if now_ns() < next_due || io.out.buf.len() >= BEHIND_BATCH {
            io.out.flush().map_err(|e| format!("write: {e}"))?;
            shared.sent.fetch_add(1, Ordering::Relaxed);
            io.poll_ctl()?;
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
        } else {
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    io.out.flush().map_err(|e| format!("write: {e}"))?;
    st.msgs = i;
    st.bytes = i * plan.size as u64;
    Ok(())
}

// ------------------------------------------------------------------ requesters

fn requester(
    cfg: &Config,
    idx: usize,
    mut conn: Conn,
    count: u64,
    mut rec: Recorder,
    barrier: Arc<Barrier>,
    shared: Arc<Shared>,
) -> PubResult {
    pin_thread(cfg, idx);
    let mut errors = Vec::new();
    let inbox = format!("_INBOX.percore-bench.{}.{idx}", std::process::id());
    let mut st = ClientStats::default();
    let r = (|| -> Result<(), String> {
        conn.out.subscribe(&inbox, None, 1);
        conn.round_trip(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        Ok(())
    })();
    barrier.wait();
    if let Err(e) = r {
        errors.push(format!("requester {idx}: {e}"));
        return PubResult { stats: st, errors };
    }
    let payload_len = cfg.size.max(8);
    let mut payload = vec![0u8; payload_len];
    let per_request_timeout = 5_000_000_000u64;
    st.start_ns = now_ns();
    let deadline_ns = cfg.duration.map(|d| st.start_ns + d.as_nanos() as u64);
    let mut seq = 0u64;
    'outer: while seq < count {
        if shared.stop.load(Ordering::Relaxed) || deadline_ns.is_some_and(|d| now_ns() >= d) {
            break;
        }
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        let t = now_ns();
        conn.out
            .publish(cfg.subject.as_bytes(), Some(inbox.as_bytes()), &payload);
        if let Err(e) = conn.out.flush() {
            errors.push(format!("requester {idx}: write: {e}"));
            break;
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        seq += 1;
        loop {
            match conn.reader.next_event() {
                Ok(Some(Event::Msg {
                    payload: p,
                    recv_ns,
                    ..
                })) => {
                    // Only the reply to the current request counts; a late
                    // reply to a timed-out one is ignored (it was counted lost).
                    if p.len() >= 8 && read_u64(&p[..8]) == seq - 1 {
                        rec.record_rtt(recv_ns, recv_ns.saturating_sub(t));
                        st.msgs += 1;
                        st.bytes += p.len() as u64;
                        // shared.received counts the responders' side.
                        break;
                    }
                }
                Ok(Some(Event::Ping)) => {
                    conn.out.raw(b"PONG\r\n");
                    let _ = conn.out.flush();
                }
                Ok(Some(Event::Err(e))) => errors.push(format!("requester {idx}: -ERR {e}")),
                Ok(Some(_)) => {}
                Ok(None) => {}
                Err(e) => {
                    errors.push(format!("requester {idx}: {e}"));
                    break 'outer;
                }
            }
            if now_ns() - t > per_request_timeout {
                errors.push(format!("requester {idx}: request {} timed out", seq - 1));
                break;
            }
            if shared.stop.load(Ordering::Relaxed) {
                break 'outer;
            }
        }
    }
    st.end_ns = now_ns();
    drop(rec);
    conn.shutdown();
    PubResult { stats: st, errors }
}

// ----------------------------------------------------------------- coordinator

fn progress_line(label: &str, start_ns: u64, shared: &Shared, last: &mut (u64, u64)) {
    let now = now_ns();
    let sent = shared.sent.load(Ordering::Relaxed);
    let recv = shared.received.load(Ordering::Relaxed);
    let dt = (now - last.0) as f64 / 1e9;
    let rate = if dt > 0.0 {
        (sent - last.1.min(sent)) as f64 / dt
    } else {
        0.0
    };
    eprintln!(
        "  [{label} {:>5.1}s] sent {:>12}  received {:>12}  ({} msgs/s now)",
        (now - start_ns) as f64 / 1e9,
        crate::stats::commas(sent as f64),
        crate::stats::commas(recv as f64),
        crate::stats::commas(rate)
    );
    *last = (now, sent);
}

/// Runs one scenario end to end.
pub fn run(cfg: &Config) -> Result<Outcome, String> {
    validate(cfg)?;
    // Every connection holds two descriptors (reader and writer handles).
    let conns = cfg.pubs + cfg.subs + cfg.idle_conns + cfg.slow_subs;
    extra_conns::ensure_fd_limit(2 * conns as u64 + 64)?;
    let started_at = SystemTime::now();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
    });
    let mut errors: Vec<String> = Vec::new();
    let connect_to = |url: &str, what: &str, i: usize| {
        Conn::connect(url).map_err(|e| format!("{what} {i}: connect {url}: {e}"))
    };
    let connect = |what: &str, i: usize| connect_to(&cfg.server, what, i);
    let sub_server = cfg.sub_server.as_deref().unwrap_or(&cfg.server);

    let (n_pubs, n_subs) = match cfg.mode {
        Mode::Pub => (cfg.pubs, 0),
        Mode::Sub => (0, cfg.subs),
        _ => (cfg.pubs, cfg.subs),
    };
    let respond = cfg.mode == Mode::Reqrep;
    let queue = match cfg.mode {
        Mode::Queue | Mode::Reqrep => Some(cfg.queue.clone().unwrap_or_else(|| "percore-q".into())),
        _ => cfg.queue.clone(),
    };
    let closed_warmup = !cfg.open_loop() && cfg.mode != Mode::Reqrep && cfg.mode != Mode::Sub;
    let warm = if closed_warmup {
        cfg.warmup
    } else {
        Duration::ZERO
    };

    // Latency plumbing: one recorder per receiving thread, one collector.
    let wants_latency = cfg.stamped() || cfg.mode == Mode::Reqrep;
    let (htx, hrx) = crossbeam_channel::unbounded::<IntervalHists>();
    let collector = wants_latency.then(|| std::thread::spawn(move || latency::collect(hrx)));

    // Open-loop schedule origin (t0) and the end of its warmup; both are set
    // once every connection is up, just before the start barrier.
    let t0 = Arc::new(AtomicU64::new(0));
    let measure_from = Arc::new(AtomicU64::new(0));
    let run_start = now_ns();

    // Subscribers first: they must be in place before anything is published.
    let mut server = ServerInfo::default();
    let mut subs: Vec<SubHandle> = Vec::new();
    for i in 0..n_subs {
        let mut c = connect_to(sub_server, "subscriber", i)?;
        if i == 0 {
            server = c.info.clone();
        }
        c.out.subscribe(&cfg.subject, queue.as_deref(), 1);
        c.round_trip(Duration::from_secs(5))
            .map_err(|e| format!("subscriber {i}: subscribe: {e}"))?;
        let spec = SubSpec {
            idx: i,
            stamped: cfg.stamped(),
            respond,
            reset_at_first_pong: !warm.is_zero(),
            measure_from: measure_from.clone(),
            recorder: (wants_latency && !respond).then(|| Recorder::new(run_start, htx.clone())),
        };
        subs.push(spawn_sub(cfg, c, spec, shared.clone()).map_err(|e| e.to_string())?);
    }

    if n_subs > 0 && !cfg.interest_wait.is_zero() {
        std::thread::sleep(cfg.interest_wait);
    }

    // Publishers (or requesters).
    let barrier = Arc::new(Barrier::new(n_pubs + 1));
    let mut pubs: Vec<JoinHandle<PubResult>> = Vec::new();
    let total = planned_total(cfg);
    for i in 0..n_pubs {
        let c = connect("publisher", i)?;
        if server.version.is_empty() {
            server = c.info.clone();
        }
        let share = split(total, n_pubs, i);
        let (b, sh, cf) = (barrier.clone(), shared.clone(), cfg.clone());
        let h = if cfg.mode == Mode::Reqrep {
            let rec = Recorder::new(run_start, htx.clone());
            std::thread::Builder::new()
                .name(format!("req-{i}"))
                .spawn(move || requester(&cf, i, c, share, rec, b, sh))
        } else {
            let Conn { reader, out, .. } = c;
            let ctl = spawn_pub_reader(i, reader, shared.clone());
            let rate_per_pub = cfg.rate / n_pubs as f64;
            let plan = PubPlan {
                idx: i,
                subject: cfg.subject.clone().into_bytes(),
                size: cfg.size,
                stamped: cfg.stamped(),
                warmup: warm,
                count: share,
                duration: if cfg.open_loop() { None } else { cfg.duration },
                period_ns: if cfg.open_loop() {
                    1e9 / rate_per_pub
                } else {
                    0.0
                },
                // Stagger publishers across one period so the aggregate is smooth.
                offset_ns: if cfg.open_loop() {
                    (1e9 / rate_per_pub) * i as f64 / n_pubs as f64
                } else {
                    0.0
                },
            };
            let io = PubIo {
                out,
                ctl,
                errors: Vec::new(),
            };
            let t0c = t0.clone();
            std::thread::Builder::new()
                .name(format!("pub-{i}"))
                .spawn(move || publisher(&cf, plan, io, b, sh, t0c))
        };
        pubs.push(h.map_err(|e| e.to_string())?);
    }
    drop(htx); // the collector ends when the last recorder is dropped

    // Unmeasured connections come after the measured ones, so those keep
    // their connection numbers (percore: connection k on shard (k-1) mod N);
    // slow subscribers first, so their numbers do not depend on --idle-conns.
    let slow_conns = if cfg.slow_subs > 0 {
        Some(extra_conns::open_slow(
            &cfg.server,
            &cfg.subject,
            cfg.slow_subs,
            cfg.slow_rate,
            cfg.stamped(),
        )?)
    } else {
        None
    };
    let idle_conns = if cfg.idle_conns > 0 {
        Some(extra_conns::open_idle(
            &cfg.server,
            cfg.idle_conns,
            cfg.progress,
        )?)
    } else {
        None
    };

    // Watchdog: the whole run is bounded no matter what the server does.
    let hard_deadline = run_start + cfg.timeout.as_nanos() as u64;
    let mut timed_out = false;
    // 20 ms lead-in: every publisher is past the barrier before its first due time.
    let start = now_ns() + 20_000_000;
    t0.store(start, Ordering::Relaxed);
    let warm_ns = if cfg.open_loop() {
        cfg.warmup.as_nanos() as u64
    } else {
        0
    };
    measure_from.store(start + warm_ns, Ordering::Relaxed);
    barrier.wait(); // go

    if !warm.is_zero() && n_pubs > 0 {
        barrier.wait(); // publishers flushed their warmup
        errors.extend(fence_subs(&subs, Duration::from_secs(30)));
        shared.sent.store(0, Ordering::Relaxed);
        barrier.wait(); // measured phase
    }

    let measure_t = now_ns();
    let mut last = (measure_t, 0u64);
    let mut next_progress = measure_t + 2_000_000_000;
    let label = format!("{:?}", cfg.mode).to_lowercase();
    let expected_now = |sent: u64| expected_for(cfg, sent);
    // Wait for publishers, or (sub mode) for the expected count.
    loop {
        let now = now_ns();
        let done = if n_pubs > 0 {
            pubs.iter().all(|h| h.is_finished())
        } else {
            let want = expected_now(total);
            shared.received.load(Ordering::Relaxed) >= want
                || cfg
                    .duration
                    .is_some_and(|d| now >= measure_t + d.as_nanos() as u64)
                || subs.iter().all(|s| s.join.is_finished())
        };
        if done {
            break;
        }
        if now >= hard_deadline {
            timed_out = true;
            errors.push(format!("run exceeded --timeout {:?}; stopped", cfg.timeout));
            shared.stop.store(true, Ordering::Relaxed);
            break;
        }
        if cfg.progress && now >= next_progress {
            progress_line(&label, measure_t, &shared, &mut last);
            next_progress += 2_000_000_000;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut pub_stats = Vec::new();
    for h in pubs {
        match h.join() {
            Ok(r) => {
                pub_stats.push(r.stats);
                errors.extend(r.errors);
            }
            Err(_) => errors.push("a publisher thread panicked".into()),
        }
    }
    let sent: u64 = pub_stats.iter().map(|s| s.msgs).sum();
    let expected = if n_pubs > 0 {
        expected_for(cfg, sent)
    } else {
        expected_for(cfg, total)
    };

    // Final fence, then a bounded settle window for asynchronous routing.
    if n_pubs > 0 && !subs.is_empty() && !timed_out {
        errors.extend(fence_subs(&subs, Duration::from_secs(30)));
        let settle_end = now_ns() + cfg.settle.as_nanos() as u64;
        while now_ns() < settle_end {
            let got: u64 = subs
                .iter()
                .map(|s| s.progress.load(Ordering::Relaxed))
                .sum();
            if got >= expected {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut sub_stats = Vec::new();
    let (mut slow, mut disconnects) = (0u64, 0u64);
    for s in subs {
        match s.join.join() {
            Ok(r) => {
                sub_stats.push(r.stats);
                errors.extend(r.errors);
                slow += r.slow;
                disconnects += u64::from(r.disconnected);
            }
            Err(_) => errors.push("a subscriber thread panicked".into()),
        }
    }
    let received: u64 = if cfg.mode == Mode::Reqrep {
        pub_stats.iter().map(|s| s.msgs).sum()
    } else {
        sub_stats.iter().map(|s| s.msgs).sum()
    };
    // Times in the extra connections' reports count from the start of publishing.
    let slow_subs: Vec<SlowSubReport> = slow_conns
        .map(|s| s.finish())
        .unwrap_or_default()
        .into_iter()
        .map(|mut r| {
            let since_start = |at| extra_conns::secs_since(start, at);
            r.disconnect_seen_after_s = r.disconnect_seen_at_ns.map(since_start);
            r.last_msg_published_after_s = r.last_msg_intended_ns.map(since_start);
            r
        })
        .collect();
    let idle = idle_conns.map(|i| {
        let mut r = i.finish();
        for d in &mut r.drops {
            d.after_s = extra_conns::secs_since(start, d.at_ns);
        }
        r
    });
    if let Some(e) = idle.as_ref().and_then(|r| r.error.clone()) {
        errors.push(e);
    }
    let latency = collector.and_then(|c| c.join().ok());
    let achieved_rate = crate::stats::GroupStats::of(&pub_stats).msgs_per_s;
    Ok(Outcome {
        server,
        started_at,
        pub_stats,
        sub_stats,
        sent,
        expected,
        received,
        errors,
        slow_consumers: slow,
        disconnects,
        latency,
        achieved_rate,
        timed_out,
        idle,
        slow_subs,
    })
}

/// Messages all publishers send together (or, in sub mode, that we wait for).
fn planned_total(cfg: &Config) -> u64 {
    if cfg.open_loop() {
        if let Some(m) = cfg.msgs {
            return m + (cfg.rate * cfg.warmup.as_secs_f64()) as u64;
        }
        let d = cfg.duration.unwrap_or(Duration::from_secs(10)) + cfg.warmup;
        return (cfg.rate * d.as_secs_f64()).round() as u64;
    }
    match (cfg.msgs, cfg.duration) {
        (Some(m), _) => m,
        (None, Some(_)) => u64::MAX,
        (None, None) => 1_000_000,
    }
}

/// Deliveries the subscribers should see for `sent` published messages.
fn expected_for(cfg: &Config, sent: u64) -> u64 {
    let per = match cfg.mode {
        Mode::Pub => 0,
        Mode::Queue | Mode::Reqrep => 1,
        _ if cfg.queue.is_some() => 1,
        _ => cfg.subs as u64,
    };
    sent.saturating_mul(per)
}

fn split(total: u64, n: usize, i: usize) -> u64 {
    if total == u64::MAX {
        return u64::MAX;
    }
    let n = n as u64;
    total / n + u64::from((i as u64) < total % n)
}

fn validate(cfg: &Config) -> Result<(), String> {
    if cfg.mode == Mode::Soak {
        return Err("soak mode runs through soak::run::run, not scenario::run".into());
    }
    if cfg.stamped() && cfg.size < STAMP_LEN {
        return Err(format!(
            "--size must be at least {STAMP_LEN} bytes when latency is measured (the payload carries two timestamps)"
        ));
    }
    if cfg.mode == Mode::Reqrep && cfg.size < 8 {
        return Err("--size must be at least 8 for reqrep (sequence number)".into());
    }
    let needs_pubs = !matches!(cfg.mode, Mode::Sub);
    let needs_subs = !matches!(cfg.mode, Mode::Pub);
    if needs_pubs && cfg.pubs == 0 {
        return Err("--pub must be at least 1".into());
    }
    if needs_subs && cfg.subs == 0 {
        return Err("--sub must be at least 1".into());
    }
    if cfg.rate < 0.0 || !cfg.rate.is_finite() {
        return Err("--rate must be a positive number (0 = closed loop)".into());
    }
    if cfg.slow_subs > 0 && cfg.slow_rate == 0 {
        return Err("--slow-rate must be at least 1 byte/s".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_total() {
        let parts: Vec<u64> = (0..3).map(|i| split(10, 3, i)).collect();
        assert_eq!(parts, vec![4, 3, 3]);
        assert_eq!(split(u64::MAX, 2, 1), u64::MAX);
    }
}
