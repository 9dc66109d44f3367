//! `ShardBroker`: everything one shard knows and does, as a synchronous state
//! machine. The async glue in `server.rs` feeds it socket bytes and ring
//! batches and carries out what it asks for (flushes, ring pushes, waits).
//!
//! Concurrency contract: one `ShardBroker` per shard, reached through
//! `Rc<RefCell<_>>` by that shard's tasks only; every method runs to
//! completion without awaiting, so a borrow never spans an `.await`. Other
//! shards are reached only through ring batches ([`crate::shard_batch`]).
//!
//! The replica model: the shard's [`SubscriptionIndex`] holds its own
//! subscriptions in full and other shards' interest as counts. A publish is
//! delivered here to local subscribers and forwarded once per interested
//! shard; the shard that owns a subscription makes the final delivery, so
//! UNSUB, auto-unsubscribe counts, echo and slow-consumer accounting stay
//! exact without locks.

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use slab::Slab;

use shards::net::{shutdown_fd, try_send_fd, try_send_vectored_fd, HandOff};
use shards::sync::WaitList;
use shards::ShardId;

use crate::client::{ClientConnection, CloseReason, Sid, Subscription, Traffic};
use crate::connect::{parse_connect, ClientOptions, ConnectError};
use crate::monitor::snapshot::{
    ConnectionSnapshot, IndexStats, ShardSnapshot, SnapshotRequest, SubscriptionSnapshot,
};
use crate::outbound::{
    encode_err, encode_msg, encode_no_responders, err_len_bound, msg_len_bound,
    no_responders_len_bound, OK, PING, PONG,
};
use crate::outbound_queue::{BlockPool, OutboundQueue};
use crate::protocol::{ClientOp, ParseError, Parser, Publish};
use crate::rng::FastRng;
use crate::shard_batch::{BatchBuffers, BatchBuilder, MeshItem, ShardBatch, SpareBuffers};
use crate::shared::BrokerShared;
use crate::subject::{is_valid_publish_subject, is_valid_subscribe_subject, pattern_matches};
use crate::sublist::{QueueMatch, SubKey, SubscriptionIndex};

/// The first server PING (nats-server's RTT ping) goes out this soon after
/// CONNECT, or after `ping_interval` if that is shorter, plus up to
/// [`FIRST_PING_JITTER_PERMILLE`] of it at random, as nats-server does: a
/// thousand clients that connect together are not pinged in one burst
/// (which, in one housekeeping tick, tripled p99 for the other clients).
const FIRST_PING_DELAY: Duration = Duration::from_secs(2);
const FIRST_PING_JITTER_PERMILLE: u64 = 200;
/// Closed connections `/connz?state=closed` can list, server-wide (as
/// nats-server's `MAX_CLOSED_CLIENTS`).
const CLOSED_CONNECTIONS_KEPT: usize = 10_000;
/// Reply prefixes nats-server reserves for its own routing.
const RESERVED_REPLY_PREFIXES: [&[u8]; 3] = [b"_R_.", b"$JS.ACK.", b"_GR_."];
/// Flow control: a subscriber whose backlog passes this (or half of
/// max_pending, if smaller) holds back the task that fed it until it drains.
const STALL_THRESHOLD: usize = 8 * 1024 * 1024;
/// A subscriber may hold publishers back this long in all before its backlog
/// drains again; after that it gets no more help and, if it really is slow,
/// reaches max_pending and is cut off while publishers go on at full speed.
pub const STALL_BUDGET: Duration = Duration::from_secs(1);
/// One stall waits at most this long; the next unit of work decides again.
const STALL_EPISODE_MAX: Duration = Duration::from_millis(50);
/// A subscriber whose socket has taken nothing from the writer for this
/// long is not draining: it does not read, or reads less than one writer
/// piece (at most a 64 KiB block once the socket is full) per window.
/// Stalling publishers for it would only delay everyone else on the subject
/// (nats-server 2.9 does not stall before half of max_pending either), so
/// its backlog grows until max_pending or the write deadline cuts it off.
/// Long enough that a fast reader the scheduler kept off the CPU for a while
/// still counts as draining (20 ms was not, on a 2-vCPU VM).
const STALL_PROGRESS_WINDOW: Duration = Duration::from_millis(250);

/// Turns the shard's `Instant`s into wall-clock times for monitoring.
struct WallClock {
    now: Instant,
    wall_now: SystemTime,
}

impl WallClock {
    fn now() -> WallClock {
        WallClock {
            now: Instant::now(),
            wall_now: SystemTime::now(),
        }
    }

    fn wall(&self, at: Instant) -> SystemTime {
        self.wall_now - self.now.saturating_duration_since(at)
    }
}

/// What the caller must do after [`ShardBroker::process_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Everything parseable was handled; read more bytes.
    NeedMore,
    /// A PING must wait until every peer has applied what this shard sent it:
    /// flush, wait for [`ShardBroker::barrier_reached`] on the
    /// [`ShardBroker::barrier_target`] taken after the flush, then call
    /// [`ShardBroker::send_pong`] and continue with the rest of the input.
    Barrier,
    /// The connection is closing; stop reading.
    Close,
}

#[derive(Debug, Clone, Copy)]
pub struct InputOutcome {
    pub consumed: usize,
    pub next: Next,
}

/// Per-shard counters (plain integers: only this shard writes them).
#[derive(Debug, Default, Clone)]
pub struct ShardStats {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    /// Queue deliveries routed here after the chosen group lost its last
    /// local member (a race with UNSUB): dropped, as nats-server would.
    pub queue_no_member: u64,
}

/// Scratch per destination shard for one publish.
#[derive(Default)]
struct RemoteTarget {
    plain: bool,
    queues: Vec<Bytes>,
}

enum QueuePick {
    None,
    DeliveredLocally,
    Remote(ShardId),
}

pub struct ShardBroker {
    id: ShardId,
    shard_count: usize,
    shared: Arc<BrokerShared>,
    conns: Slab<ClientConnection>,
    subs: Slab<Subscription>,
    index: SubscriptionIndex,
    /// Per destination shard: what this unit of work sends it.
    outgoing: Vec<BatchBuilder>,
    /// Connections with queued output, flushed at the end of the unit of work.
    dirty: Vec<usize>,
    /// Number of the latest batch this shard sent that needs an ack.
    batch_seq: u64,
    /// Per peer: number of the latest batch sent to it that needs an ack.
    sent: Vec<u64>,
    /// Per peer: the highest of our batches it has applied.
    acked: Vec<u64>,
    /// Per peer: its highest batch we applied and must ack (0: none).
    ack_due: Vec<u64>,
    /// Woken when `acked` moves (PINGs waiting for the barrier).
    barrier: Rc<WaitList>,
    targets: Vec<RemoteTarget>,
    /// Connections this unit of work pushed over the stall threshold.
    stalled: Vec<usize>,
    /// [`STALL_THRESHOLD`], or half of max_pending if that is smaller.
    stall_threshold: usize,
    /// Woken whenever a connection's backlog shrinks (stalled feeders wait here).
    drained: Rc<WaitList>,
    rng: FastRng,
    lame_duck: bool,
    /// Emptied outbound blocks, shared by this shard's connections.
    pool: BlockPool,
    /// Ring batch buffers the peers sent back, for the next batches.
    spare_batches: SpareBuffers,
    /// Recently closed connections, oldest first (see `remember_closed`).
    closed: VecDeque<ConnectionSnapshot>,
    pub stats: ShardStats,
}

impl ShardBroker {
    pub fn new(id: ShardId, shared: Arc<BrokerShared>) -> ShardBroker {
        let shard_count = shared.shard_count;
        let stall_threshold = STALL_THRESHOLD.min(shared.options.max_pending / 2);
        ShardBroker {
            id,
            shard_count,
            shared,
            conns: Slab::new(),
            subs: Slab::new(),
            index: SubscriptionIndex::new(),
            outgoing: (0..shard_count).map(|_| BatchBuilder::default()).collect(),
            dirty: Vec::new(),
            batch_seq: 0,
            sent: vec![0; shard_count],
            acked: vec![0; shard_count],
            ack_due: vec![0; shard_count],
            barrier: Rc::new(WaitList::new()),
            targets: (0..shard_count).map(|_| RemoteTarget::default()).collect(),
            stalled: Vec::new(),
            stall_threshold,
            drained: Rc::new(WaitList::new()),
            rng: FastRng::seeded(0x5eed_0000 + id as u64),
            lame_duck: false,
            pool: BlockPool::default(),
            spare_batches: SpareBuffers::default(),
            closed: VecDeque::new(),
            stats: ShardStats::default(),
        }
    }

    pub fn shard_id(&self) -> ShardId {
        self.id
    }

    pub fn barrier(&self) -> Rc<WaitList> {
        self.barrier.clone()
    }

    // ----- connection life cycle -------------------------------------------------

    /// Registers an accepted client and queues its INFO.
    pub fn register_connection(
        &mut self,
        client_id: u64,
        fd: RawFd,
        peer: (String, u16),
        writer_wake: Rc<WaitList>,
    ) -> usize {
        let (client_ip, client_port) = peer;
        let now = Instant::now();
        let info = self.shared.identity.info_line(client_id, &client_ip, false);
        let key = self.conns.insert(ClientConnection {
            client_id,
            fd,
            client_ip,
            client_port,
            options: ClientOptions::default(),
            first_pong_sent: false,
            outbound: {
                let mut queue = OutboundQueue::default();
                queue.extend_from_slice(&mut self.pool, &info);
                queue
            },
            in_flight: 0,
            writer_busy: false,
            write_started: None,
            dirty: false,
            writer_wake,
            subs: HashMap::new(),
            pings_out: 0,
            // Until CONNECT, the regular interval (see `handle_connect`).
            next_ping: now + self.shared.options.ping_interval,
            first_ping_done: false,
            active: false,
            forwarded: false,
            closing: None,
            stall_spent: Duration::ZERO,
            chunk_started: now,
            started: now,
            last_activity: now,
            ping_sent_at: None,
            rtt: None,
            traffic: Traffic::default(),
        });
        self.mark_dirty(key);
        crate::debug!(
            "{} - cid:{} - Client connection created (shard {})",
            self.conn_ip(key),
            client_id,
            self.id
        );
        key
    }

    /// Sends `INFO` then `-ERR 'maximum connections exceeded'` and closes.
    pub fn reject_connection(&self, client_id: u64, fd: RawFd, client_ip: &str) {
        let mut bytes = self.shared.identity.info_line(client_id, client_ip, false);
        encode_err(&mut bytes, "maximum connections exceeded");
        let _ = try_send_fd(fd, &bytes);
        shutdown_fd(fd);
    }

    /// Starts closing: tries to hand queued bytes (an `-ERR`) to the socket,
    /// shuts the socket down so the reader sees EOF, and wakes the writer so
    /// it ends. The reader task then calls [`ShardBroker::remove_connection`].
    pub fn begin_close(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing.is_some() {
            return;
        }
        conn.closing = Some(reason);
        if reason.discards_pending() {
            conn.outbound.clear(&mut self.pool);
            self.stats.slow_consumers += 1;
            crate::warn!(
                "{} - cid:{} - Slow Consumer Detected: {}",
                conn.client_ip,
                conn.client_id,
                reason.as_str()
            );
        } else if !conn.writer_busy && !conn.outbound.is_empty() {
            let _ = try_send_vectored_fd(conn.fd, &conn.outbound.send_slices());
            conn.outbound.clear(&mut self.pool);
        }
        shutdown_fd(conn.fd);
        conn.writer_wake.notify_all();
        crate::debug!(
            "{} - cid:{} - Client connection closed: {}",
            conn.client_ip,
            conn.client_id,
            reason.as_str()
        );
    }

    /// Forgets a connection whose reader and writer have ended: removes its
    /// subscriptions (telling the other shards) and frees its slot.
    pub fn remove_connection(&mut self, key: usize) {
        self.remember_closed(key);
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let sub_keys: Vec<SubKey> = conn.subs.values().copied().collect();
        for sk in sub_keys {
            self.remove_subscription(sk);
        }
        self.conns.remove(key);
        self.shared.live_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn is_closing(&self, key: usize) -> bool {
        self.conns.get(key).is_none_or(|c| c.closing.is_some())
    }

    fn conn_ip(&self, key: usize) -> &str {
        self.conns
            .get(key)
            .map(|c| c.client_ip.as_str())
            .unwrap_or("?")
    }

    // ----- input -----------------------------------------------------------------

    /// Parses and handles as many complete ops from `buf` as possible.
    pub fn process_input(&mut self, key: usize, parser: &mut Parser, buf: &[u8]) -> InputOutcome {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.last_activity = Instant::now();
        }
        let mut consumed = 0;
        loop {
            if self.is_closing(key) {
                return InputOutcome {
                    consumed,
                    next: Next::Close,
                };
            }
            match parser.next(&buf[consumed..]) {
                Ok(None) => {
                    return InputOutcome {
                        consumed,
                        next: Next::NeedMore,
                    }
                }
                Ok(Some((op, used))) => {
                    consumed += used;
                    match self.handle_op(key, op) {
                        Next::NeedMore => {}
                        next => return InputOutcome { consumed, next },
                    }
                }
                Err(error) => {
                    let reason = match error {
                        ParseError::UnknownOperation => CloseReason::ProtocolViolation,
                        ParseError::MaxControlLineExceeded => CloseReason::MaxControlLineExceeded,
                        ParseError::MaxPayloadExceeded => CloseReason::MaxPayloadExceeded,
                        ParseError::Malformed => CloseReason::ParseError,
                    };
                    let next = self.close_with_error(key, error.err_text(), reason);
                    return InputOutcome { consumed, next };
                }
            }
        }
    }

    fn handle_op(&mut self, key: usize, op: ClientOp<'_>) -> Next {
        if crate::logging::trace_enabled() {
            self.trace_op(key, &op);
        }
        match op {
            ClientOp::Connect(json) => self.handle_connect(key, json),
            ClientOp::Ping => {
                let conn = &mut self.conns[key];
                conn.active = true;
                if conn.forwarded {
                    return Next::Barrier;
                }
                self.send_pong(key);
                Next::NeedMore
            }
            ClientOp::Pong => {
                let conn = &mut self.conns[key];
                conn.pings_out = 0;
                if let Some(sent) = conn.ping_sent_at.take() {
                    conn.rtt = Some(sent.elapsed());
                }
                Next::NeedMore
            }
            ClientOp::Pub(publish) => self.handle_pub(key, publish),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => {
                self.handle_sub(key, subject, queue, sid);
                Next::NeedMore
            }
            ClientOp::Unsub { sid, max } => {
                self.handle_unsub(key, sid, max);
                Next::NeedMore
            }
            ClientOp::Info(json) => {
                // Ignored, but like nats-server we close a client that sends
                // an INFO it cannot even spell.
                if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
                    self.begin_close(key, CloseReason::ParseError);
                    return Next::Close;
                }
                Next::NeedMore
            }
            ClientOp::Ok => Next::NeedMore,
            ClientOp::Err(_) => {
                self.begin_close(key, CloseReason::ClientClosed);
                Next::Close
            }
        }
    }

    fn trace_op(&self, key: usize, op: &ClientOp<'_>) {
        let conn = &self.conns[key];
        let text = match op {
            ClientOp::Connect(json) => format!("CONNECT {}", String::from_utf8_lossy(json)),
            ClientOp::Ping => "PING".into(),
            ClientOp::Pong => "PONG".into(),
            ClientOp::Pub(p) => format!(
                "{} {}{} {}",
                if p.header_len.is_some() {
                    "HPUB"
                } else {
                    "PUB"
                },
                String::from_utf8_lossy(p.subject),
                p.reply
                    .map(|r| format!(" {}", String::from_utf8_lossy(r)))
                    .unwrap_or_default(),
                p.payload.len()
            ),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => format!(
                "SUB {}{} {}",
                String::from_utf8_lossy(subject),
                queue
                    .map(|q| format!(" {}", String::from_utf8_lossy(q)))
                    .unwrap_or_default(),
                String::from_utf8_lossy(sid)
            ),
            ClientOp::Unsub { sid, max } => format!(
                "UNSUB {}{}",
                String::from_utf8_lossy(sid),
                max.map(|m| format!(" {m}")).unwrap_or_default()
            ),
            ClientOp::Info(_) => "INFO".into(),
            ClientOp::Ok => "+OK".into(),
            ClientOp::Err(text) => format!("-ERR {}", String::from_utf8_lossy(text)),
        };
        crate::trace!(
            "{} - cid:{} - <<- [{}]",
            conn.client_ip,
            conn.client_id,
            text
        );
    }

    fn handle_connect(&mut self, key: usize, json: &[u8]) -> Next {
        match parse_connect(json) {
            Ok(options) => {
                let verbose = options.verbose;
                let first_ping = self.first_ping_delay();
                let conn = &mut self.conns[key];
                conn.options = options;
                conn.active = true;
                // As nats-server: the RTT is estimated from accept to CONNECT
                // until a PING is answered, and the first PING is due soon
                // after CONNECT (a client that never sends one is pinged at
                // the regular interval).
                let now = Instant::now();
                conn.rtt = Some(now.saturating_duration_since(conn.started));
                conn.next_ping = now + first_ping;
                if verbose {
                    self.queue_bytes(key, OK);
                }
                Next::NeedMore
            }
            Err(error) => {
                let reason = match error {
                    ConnectError::Malformed => CloseReason::ParseError,
                    ConnectError::InvalidProtocol => CloseReason::BadClientProtocolVersion,
                    ConnectError::NoRespondersWithoutHeaders => {
                        CloseReason::NoRespondersRequiresHeaders
                    }
                    ConnectError::AuthorizationViolation => CloseReason::AuthenticationFailure,
                };
                self.close_with_error(key, error.err_text(), reason)
            }
        }
    }

    /// The first server PING (nats-server's RTT ping) goes out this long
    /// after CONNECT, jittered so clients that connect together are not
    /// pinged in one burst.
    fn first_ping_delay(&mut self) -> Duration {
        let first_ping = FIRST_PING_DELAY.min(self.shared.options.ping_interval);
        let jitter_permille = self.rng.below(FIRST_PING_JITTER_PERMILLE + 1);
        first_ping + first_ping * jitter_permille as u32 / 1000
    }

    fn handle_pub(&mut self, key: usize, publish: Publish<'_>) -> Next {
        let conn = &mut self.conns[key];
        conn.active = true;
        let headers_allowed = conn.options.headers && !self.shared.options.no_header_support;
        if publish.header_len.is_some() && !headers_allowed {
            // nats-server closes without a word when HPUB comes from a client
            // that did not announce header support.
            self.begin_close(key, CloseReason::ProtocolViolation);
            return Next::Close;
        }
        let (verbose, pedantic) = (conn.options.verbose, conn.options.pedantic);
        self.stats.in_msgs += 1;
        self.stats.in_bytes += publish.payload.len() as u64;
        conn.traffic.in_msgs += 1;
        conn.traffic.in_bytes += publish.payload.len() as u64;
        if pedantic && !is_valid_publish_subject(publish.subject) {
            // Quirk kept from nats-server: the error is sent, yet the message
            // is still delivered.
            self.queue_err(key, "Invalid Publish Subject");
        }
        if let Some(reply) = publish.reply {
            if RESERVED_REPLY_PREFIXES.iter().any(|p| reply.starts_with(p)) {
                let text = format!(
                    "Permissions Violation for Publish with Reply of \"{}\"",
                    String::from_utf8_lossy(reply)
                );
                self.queue_err(key, &text);
                return Next::NeedMore;
            }
        }
        if publish.subject.starts_with(b"_GR_.") {
            let text = format!(
                "Permissions Violation for Publish to \"{}\"",
                String::from_utf8_lossy(publish.subject)
            );
            self.queue_err(key, &text);
            return Next::NeedMore;
        }
        if verbose {
            self.queue_bytes(key, OK);
        }
        self.route_publish(key, &publish);
        Next::NeedMore
    }

    fn handle_sub(&mut self, key: usize, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        let conn = &mut self.conns[key];
        conn.active = true;
        let verbose = conn.options.verbose;
        if !is_valid_subscribe_subject(subject) {
            self.queue_err(key, "Invalid Subject");
            return;
        }
        if conn.subs.contains_key(sid) {
            // A reused sid is ignored, as by nats-server: the first
            // subscription stays.
            if verbose {
                self.queue_bytes(key, OK);
            }
            return;
        }
        let max_subs = self.shared.options.max_subscriptions;
        if max_subs > 0 && conn.subs.len() >= max_subs {
            self.queue_err(key, "maximum subscriptions exceeded");
            return;
        }
        let sk = self.subs.insert(Subscription {
            conn: key,
            sid: Sid::new(sid),
            subject: subject.into(),
            queue: queue.map(Into::into),
            max: None,
            delivered: 0,
        });
        self.conns[key].subs.insert(Sid::new(sid), sk);
        self.index.insert_local(subject, queue, sk);
        self.broadcast_interest(key, subject, queue, 1);
        if verbose {
            self.queue_bytes(key, OK);
        }
    }

    fn handle_unsub(&mut self, key: usize, sid: &[u8], max: Option<u64>) {
        let conn = &mut self.conns[key];
        conn.active = true;
        let verbose = conn.options.verbose;
        if let Some(&sk) = conn.subs.get(sid) {
            let delivered = self.subs[sk].delivered;
            match max {
                Some(max) if max > delivered => self.subs[sk].max = Some(max),
                _ => self.remove_subscription(sk),
            }
        }
        if verbose {
            self.queue_bytes(key, OK);
        }
    }

    /// Answers a PING (after its barrier, if it had one).
    pub fn send_pong(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.first_pong_sent = true;
            conn.forwarded = false;
            self.queue_bytes(key, PONG);
        }
    }

    // ----- interest replication ----------------------------------------------

    /// Tells every other shard that connection `key` changed its interest.
    /// The subject and queue are copied once here, only when there are
    /// other shards, and shared by every peer's batch.
    fn broadcast_interest(&mut self, key: usize, subject: &[u8], queue: Option<&[u8]>, delta: i32) {
        if self.shard_count == 1 {
            return;
        }
        let subject = Bytes::copy_from_slice(subject);
        let queue = queue.map(Bytes::copy_from_slice);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.forwarded = true;
        }
        for dst in 0..self.shard_count {
            if dst != self.id {
                self.outgoing[dst].push(MeshItem::Interest {
                    subject: subject.clone(),
                    queue: queue.clone(),
                    delta,
                });
            }
        }
    }

    /// Per peer, the latest batch sent so far; a barrier taken now is
    /// reached once every peer has applied its entry.
    pub fn barrier_target(&self) -> Vec<u64> {
        self.sent.clone()
    }

    pub fn barrier_reached(&self, target: &[u64]) -> bool {
        self.acked
            .iter()
            .zip(target)
            .all(|(acked, needed)| acked >= needed)
    }

    fn remove_subscription(&mut self, sk: SubKey) {
        if !self.subs.contains(sk) {
            return;
        }
        let sub = self.subs.remove(sk);
        self.index
            .remove_local(&sub.subject, sub.queue.as_deref(), sk);
        if let Some(conn) = self.conns.get_mut(sub.conn) {
            conn.subs.remove(&*sub.sid);
        }
        self.broadcast_interest(sub.conn, &sub.subject, sub.queue.as_deref(), -1);
    }

    // ----- routing -----------------------------------------------------------------

    fn route_publish(&mut self, publisher: usize, publish: &Publish<'_>) {
        let result = self.index.matches(publish.subject);
        let mut delivered = false;
        for &sk in &result.local_plain {
            delivered |= self.deliver_publish(sk, publisher, publish);
        }
        let mut targets = std::mem::take(&mut self.targets);
        let mut remote = false;
        for &shard in &result.remote_plain {
            targets[shard].plain = true;
            remote = true;
        }
        for group in &result.queues {
            match self.pick_queue_member(group, publisher, publish) {
                QueuePick::None => {}
                QueuePick::DeliveredLocally => delivered = true,
                QueuePick::Remote(shard) => {
                    targets[shard].queues.push(group.name.clone());
                    remote = true;
                }
            }
        }
        if remote {
            self.conns[publisher].forwarded = true;
            for (shard, target) in targets.iter_mut().enumerate() {
                if target.plain || !target.queues.is_empty() {
                    self.outgoing[shard].push_deliver(
                        publish.subject,
                        publish.reply,
                        publish.header_len,
                        publish.payload,
                        std::mem::take(&mut target.queues),
                    );
                    target.plain = false;
                }
            }
        }
        self.targets = targets;
        if !delivered && !remote {
            if let Some(reply) = publish.reply {
                self.send_no_responders(publisher, reply);
            }
        }
    }

    /// Chooses one member of a queue group uniformly over all members on all
    /// shards (remote shards weighted by their member counts).
    fn pick_queue_member(
        &mut self,
        group: &QueueMatch,
        publisher: usize,
        publish: &Publish<'_>,
    ) -> QueuePick {
        let local = group.local.len() as u64;
        let remote: u64 = group.remote.iter().map(|&(_, w)| u64::from(w)).sum();
        if local + remote == 0 {
            return QueuePick::None;
        }
        let mut draw = self.rng.below(local + remote);
        if draw < local {
            // Start at the drawn member; skip those that cannot take it
            // (the publisher itself with echo off, closing connections).
            for i in 0..group.local.len() {
                let sk = group.local[(draw as usize + i) % group.local.len()];
                if self.deliver_publish(sk, publisher, publish) {
                    return QueuePick::DeliveredLocally;
                }
            }
            if remote == 0 {
                return QueuePick::None;
            }
            draw = local + self.rng.below(remote);
        }
        let mut offset = draw - local;
        for &(shard, weight) in &group.remote {
            if offset < u64::from(weight) {
                return QueuePick::Remote(shard);
            }
            offset -= u64::from(weight);
        }
        QueuePick::None
    }

    /// [`ShardBroker::deliver_local`] of a client's own publish.
    fn deliver_publish(&mut self, sk: SubKey, publisher: usize, publish: &Publish<'_>) -> bool {
        self.deliver_local(
            sk,
            Some(publisher),
            publish.subject,
            publish.reply,
            publish.header_len,
            publish.payload,
        )
    }

    /// Queues one delivery to a local subscription. Returns false when the
    /// subscription is gone or may not receive it (echo off, closing).
    fn deliver_local(
        &mut self,
        sk: SubKey,
        publisher: Option<usize>,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        payload: &[u8],
    ) -> bool {
        let Some(sub) = self.subs.get_mut(sk) else {
            return false;
        };
        let key = sub.conn;
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.closing.is_some() || (publisher == Some(key) && !conn.options.echo) {
            return false;
        }
        sub.delivered += 1;
        let headers = conn.options.headers;
        conn.outbound.append(
            &mut self.pool,
            msg_len_bound(subject, &sub.sid, reply, payload),
            |out| encode_msg(out, subject, &sub.sid, reply, header_len, payload, headers),
        );
        self.stats.out_msgs += 1;
        self.stats.out_bytes += payload.len() as u64;
        conn.traffic.out_msgs += 1;
        conn.traffic.out_bytes += payload.len() as u64;
        let over_limit = conn.pending_bytes() > self.shared.options.max_pending;
        let finished = sub.max.is_some_and(|max| sub.delivered >= max);
        let over_stall = conn.pending_bytes() > self.stall_threshold
            && conn.stall_spent < STALL_BUDGET
            && Self::draining(conn, Instant::now());
        if over_limit {
            self.begin_close(key, CloseReason::SlowConsumerPendingBytes);
        } else {
            self.mark_dirty(key);
            if over_stall && !self.stalled.contains(&key) {
                self.stalled.push(key);
            }
        }
        if finished {
            self.remove_subscription(sk);
        }
        true
    }

    /// No one took a request: tell the requester at once (status 503) on its
    /// subscription that matches the reply subject, if it asked for that.
    fn send_no_responders(&mut self, publisher: usize, reply: &[u8]) {
        let conn = &self.conns[publisher];
        if !(conn.options.no_responders && conn.options.headers) {
            return;
        }
        let target = conn.subs.values().copied().find(|&sk| {
            let sub = &self.subs[sk];
            sub.queue.is_none() && pattern_matches(&sub.subject, reply)
        });
        if let Some(sk) = target {
            let sid = &self.subs[sk].sid;
            self.conns[publisher].outbound.append(
                &mut self.pool,
                no_responders_len_bound(reply, sid),
                |out| encode_no_responders(out, reply, sid),
            );
            self.mark_dirty(publisher);
        }
    }

    // ----- the mesh --------------------------------------------------------------

    /// Applies one batch from shard `src`, in order. Returns the sockets it
    /// handed us to adopt.
    pub fn apply_batch(&mut self, src: ShardId, batch: ShardBatch) -> Vec<(HandOff, u64)> {
        let mut adopted = Vec::new();
        let mut barrier_moved = false;
        let ShardBatch {
            seq,
            arena: arena_bytes,
            mut items,
            returned,
        } = batch;
        self.spare_batches.put(returned);
        let arena = &arena_bytes[..];
        for item in items.drain(..) {
            match item {
                MeshItem::Interest {
                    subject,
                    queue,
                    delta,
                } => {
                    self.index
                        .apply_remote(src, &subject, queue.as_deref(), delta);
                }
                MeshItem::Ack { seq } => {
                    if seq > self.acked[src] {
                        self.acked[src] = seq;
                        barrier_moved = true;
                    }
                }
                MeshItem::Deliver {
                    subject,
                    reply,
                    header_len,
                    payload,
                    queues,
                } => {
                    self.deliver_remote(
                        subject.slice(arena),
                        reply.map(|r| r.slice(arena)),
                        header_len.map(|h| h as usize),
                        payload.slice(arena),
                        &queues,
                    );
                }
                MeshItem::Adopt { socket, client_id } => adopted.push((socket, client_id)),
            }
        }
        if seq > 0 {
            self.ack_due[src] = seq;
        }
        if let Some(buffers) = BatchBuffers::reclaim(arena_bytes, items) {
            self.outgoing[src].give_back(buffers);
        }
        if barrier_moved {
            self.barrier.notify_all();
        }
        adopted
    }

    fn deliver_remote(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        payload: &[u8],
        queues: &[Bytes],
    ) {
        let result = self.index.matches(subject);
        for &sk in &result.local_plain {
            self.deliver_local(sk, None, subject, reply, header_len, payload);
        }
        for name in queues {
            let members = result
                .queues
                .iter()
                .find(|g| g.name == name)
                .map(|g| &g.local[..])
                .unwrap_or_default();
            let mut delivered = false;
            if !members.is_empty() {
                let start = self.rng.below(members.len() as u64) as usize;
                for i in 0..members.len() {
                    if self.deliver_local(
                        members[(start + i) % members.len()],
                        None,
                        subject,
                        reply,
                        header_len,
                        payload,
                    ) {
                        delivered = true;
                        break;
                    }
                }
            }
            if !delivered {
                self.stats.queue_no_member += 1;
            }
        }
    }

    /// Hands a newly accepted socket to shard `target`.
    pub fn send_adopt(&mut self, target: ShardId, socket: HandOff, client_id: u64) {
        self.outgoing[target].push(MeshItem::Adopt { socket, client_id });
    }

    /// Moves this unit of work's batches (and due acks) out, one per peer.
    pub fn drain_batches(&mut self, mut send: impl FnMut(ShardId, ShardBatch)) {
        for dst in 0..self.shard_count {
            if dst == self.id {
                continue;
            }
            let has_work = !self.outgoing[dst].is_empty();
            if self.ack_due[dst] > 0 {
                let seq = std::mem::take(&mut self.ack_due[dst]);
                self.outgoing[dst].push(MeshItem::Ack { seq });
            }
            if !self.outgoing[dst].is_empty() {
                let mut batch = self.outgoing[dst].take(&mut self.spare_batches);
                if has_work {
                    self.batch_seq += 1;
                    self.sent[dst] = self.batch_seq;
                    batch.seq = self.batch_seq;
                }
                send(dst, batch);
            }
        }
    }

    // ----- output ------------------------------------------------------------------

    fn mark_dirty(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    fn queue_bytes(&mut self, key: usize, bytes: &[u8]) {
        self.conns[key]
            .outbound
            .extend_from_slice(&mut self.pool, bytes);
        self.mark_dirty(key);
    }

    /// Sends `-ERR '<text>'` (when there is one) and closes the connection.
    fn close_with_error(&mut self, key: usize, text: Option<&str>, reason: CloseReason) -> Next {
        if let Some(text) = text {
            self.queue_err(key, text);
        }
        self.begin_close(key, reason);
        Next::Close
    }

    fn queue_err(&mut self, key: usize, text: &str) {
        self.conns[key]
            .outbound
            .append(&mut self.pool, err_len_bound(text), |out| {
                encode_err(out, text)
            });
        self.mark_dirty(key);
    }

    /// One write per dirty connection: a direct non-blocking send; what the
    /// socket does not take goes to the connection's writer task.
    pub fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.closing.is_some() || conn.writer_busy || conn.outbound.is_empty() {
                continue;
            }
            let sent = try_send_vectored_fd(conn.fd, &conn.outbound.send_slices());
            match sent {
                Ok(n) => {
                    conn.outbound.consume(&mut self.pool, n);
                    if conn.outbound.is_empty() {
                        continue;
                    }
                    conn.writer_busy = true;
                    conn.start_write(Instant::now());
                    conn.writer_wake.notify_all();
                }
                Err(_) => self.begin_close(key, CloseReason::WriteError),
            }
        }
        self.dirty = dirty;
        if self.drained.has_waiters() {
            self.drained.notify_all();
        }
    }

    /// The writer task has something to do (or must end).
    pub fn writer_should_run(&self, key: usize) -> bool {
        match self.conns.get(key) {
            None => true,
            Some(conn) => conn.closing.is_some() || (conn.writer_busy && !conn.outbound.is_empty()),
        }
    }

    /// Gives the writer task the queued bytes; `None` means it should end.
    pub fn take_for_writer(&mut self, key: usize) -> Option<OutboundQueue> {
        let conn = self.conns.get_mut(key)?;
        if conn.closing.is_some() {
            return None;
        }
        let buffer = conn.outbound.take();
        conn.in_flight = buffer.len();
        conn.start_write(Instant::now());
        Some(buffer)
    }

    /// The socket took `len` more bytes of what the writer task holds.
    pub fn chunk_written(&mut self, key: usize, len: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.in_flight = conn.in_flight.saturating_sub(len);
        conn.chunk_started = Instant::now();
        if conn.pending_bytes() <= self.stall_threshold / 2 {
            conn.stall_spent = Duration::ZERO;
        }
        self.drained.notify_all();
    }

    /// The writer task finished what it took (or failed); `blocks` are the
    /// blocks it emptied.
    pub fn writer_done(&mut self, key: usize, blocks: BlockPool, ok: bool) {
        self.pool.absorb(blocks);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.in_flight = 0;
        if !ok {
            self.begin_close(key, CloseReason::WriteError);
            return;
        }
        if conn.outbound.is_empty() {
            conn.writer_busy = false;
            conn.write_started = None;
        } else {
            conn.start_write(Instant::now());
        }
        if conn.pending_bytes() <= self.stall_threshold / 2 {
            conn.stall_spent = Duration::ZERO;
        }
        self.drained.notify_all();
    }

    // ----- flow control ----------------------------------------------------------

    /// The subscribers this unit of work pushed over the stall threshold; the
    /// caller (the publisher's reader, or a ring consumer, which then stops
    /// taking batches and so backs up the publishing shard) waits on
    /// [`ShardBroker::drained`] until [`ShardBroker::stall_over`], for at most
    /// a slice of each subscriber's [`STALL_BUDGET`], then reports the time
    /// with [`ShardBroker::charge_stall`]. This is nats-server's fast-producer
    /// stall: a healthy subscriber that reads slower than a burst arrives
    /// loses nothing.
    pub fn take_stall(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.stalled)
    }

    pub fn drained(&self) -> Rc<WaitList> {
        self.drained.clone()
    }

    /// Every connection in `keys` is back under the threshold (or gone).
    pub fn stall_over(&self, keys: &[usize]) -> bool {
        let threshold = self.stall_threshold;
        keys.iter().all(|&key| {
            self.conns
                .get(key)
                .is_none_or(|c| c.closing.is_some() || c.pending_bytes() <= threshold)
        })
    }

    /// How long this stall may wait for `keys`: the largest budget left,
    /// at most [`STALL_EPISODE_MAX`].
    pub fn stall_allowance(&self, keys: &[usize]) -> Duration {
        keys.iter()
            .filter_map(|&key| self.conns.get(key))
            .map(|c| STALL_BUDGET.saturating_sub(c.stall_spent))
            .max()
            .unwrap_or(Duration::ZERO)
            .min(STALL_EPISODE_MAX)
    }

    /// The subscriber takes what it is sent: nothing waits for its socket,
    /// or the socket took the writer's previous chunk less than
    /// [`STALL_PROGRESS_WINDOW`] ago.
    fn draining(conn: &ClientConnection, now: Instant) -> bool {
        !conn.writer_busy || now.duration_since(conn.chunk_started) < STALL_PROGRESS_WINDOW
    }

    pub fn charge_stall(&mut self, keys: &[usize], waited: Duration) {
        let threshold = self.stall_threshold;
        for &key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                if conn.pending_bytes() > threshold {
                    conn.stall_spent += waited;
                }
            }
        }
    }

    // ----- timers, lame duck, shutdown --------------------------------------------

    /// Periodic work: server PINGs, stale connections, write deadlines.
    pub fn tick(&mut self, now: Instant) {
        self.pool.trim();
        self.spare_batches.trim();
        let options = &self.shared.options;
        let (interval, ping_max, deadline) = (
            options.ping_interval,
            options.ping_max,
            options.write_deadline,
        );
        let mut to_close = Vec::new();
        let mut to_ping = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if conn.closing.is_some() {
                continue;
            }
            if conn
                .write_started
                .is_some_and(|t| conn.writer_busy && now.duration_since(t) >= deadline)
            {
                to_close.push((key, CloseReason::SlowConsumerWriteDeadline));
                continue;
            }
            if now < conn.next_ping {
                continue;
            }
            conn.next_ping = now + interval;
            // Traffic from the client proves it alive: skip this ping (the
            // first, RTT-measuring ping always goes out).
            if conn.first_ping_done && conn.active {
                conn.active = false;
                continue;
            }
            conn.active = false;
            if conn.pings_out + 1 > ping_max {
                to_close.push((key, CloseReason::StaleConnection));
            } else {
                conn.pings_out += 1;
                conn.first_ping_done = true;
                to_ping.push(key);
            }
        }
        for key in to_ping {
            self.conns[key].ping_sent_at = Some(now);
            self.queue_bytes(key, PING);
        }
        for (key, reason) in to_close {
            if reason == CloseReason::StaleConnection {
                self.queue_err(key, "Stale Connection");
            }
            self.begin_close(key, reason);
        }
    }

    /// This shard's part of a monitoring request (`/varz`, `/connz`, ...).
    /// Ring counters live with the async glue and are added by the caller.
    pub fn snapshot(&self, request: SnapshotRequest) -> ShardSnapshot {
        let clock = WallClock::now();
        let counters = self.index.counters();
        let open = self.conns.iter().filter(|(_, conn)| conn.closing.is_none());
        let open_connections = open.clone().count() as u64;
        let connections = if request.with_connections || request.with_subscriptions {
            open.map(|(_, conn)| self.connection_snapshot(conn, request.with_subscriptions, &clock))
                .collect()
        } else {
            Vec::new()
        };
        ShardSnapshot {
            shard: self.id,
            in_msgs: self.stats.in_msgs,
            in_bytes: self.stats.in_bytes,
            out_msgs: self.stats.out_msgs,
            out_bytes: self.stats.out_bytes,
            slow_consumers: self.stats.slow_consumers,
            ring_stalls: 0,
            ring_dropped: 0,
            index: IndexStats {
                num_subscriptions: self.subs.len() as u64,
                num_cache: self.index.cached_subjects() as u64,
                num_inserts: counters.inserts,
                num_removes: counters.removes,
                num_matches: counters.matches,
                cache_hits: counters.cache_hits,
            },
            open_connections,
            connections,
            closed: if request.with_closed {
                self.closed.iter().cloned().collect()
            } else {
                Vec::new()
            },
        }
    }

    fn connection_snapshot(
        &self,
        conn: &ClientConnection,
        with_subscriptions: bool,
        clock: &WallClock,
    ) -> ConnectionSnapshot {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let subscription_list = if with_subscriptions {
            conn.subs
                .values()
                .filter_map(|&sk| self.subs.get(sk))
                .map(|sub| SubscriptionSnapshot {
                    subject: text(&sub.subject),
                    queue: sub.queue.as_deref().map(text),
                    sid: text(&sub.sid),
                    msgs: sub.delivered,
                    max: sub.max,
                    cid: conn.client_id,
                })
                .collect()
        } else {
            Vec::new()
        };
        let Traffic {
            in_msgs,
            in_bytes,
            out_msgs,
            out_bytes,
        } = conn.traffic;
        ConnectionSnapshot {
            cid: conn.client_id,
            ip: conn.client_ip.clone(),
            port: conn.client_port,
            start: clock.wall(conn.started),
            last_activity: clock.wall(conn.last_activity),
            rtt: conn.rtt,
            pending_bytes: conn.pending_bytes() as u64,
            in_msgs,
            in_bytes,
            out_msgs,
            out_bytes,
            subscriptions: conn.subs.len() as u64,
            name: conn.options.name.clone(),
            lang: conn.options.lang.clone(),
            version: conn.options.version.clone(),
            subscription_list,
            stop: None,
            reason: None,
        }
    }

    /// Keeps a closed connection for `/connz?state=closed`, as nats-server
    /// keeps its last 10,000 (each shard its share), subscriptions included.
    fn remember_closed(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let clock = WallClock::now();
        let mut closed = self.connection_snapshot(conn, true, &clock);
        closed.stop = Some(clock.wall_now);
        closed.reason = Some(
            conn.closing
                .unwrap_or(CloseReason::ClientClosed)
                .as_str()
                .to_string(),
        );
        closed.pending_bytes = 0;
        let keep = CLOSED_CONNECTIONS_KEPT.div_ceil(self.shard_count);
        if self.closed.len() >= keep {
            self.closed.pop_front();
        }
        self.closed.push_back(closed);
    }

    /// Lame duck: tells proto-1 clients (after their handshake) with an INFO
    /// carrying `"ldm":true`. Returns the connections to close gradually.
    pub fn enter_lame_duck(&mut self) -> Vec<usize> {
        self.lame_duck = true;
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for &key in &keys {
            let conn = &self.conns[key];
            if conn.options.protocol >= 1 && conn.first_pong_sent && conn.closing.is_none() {
                let info = self
                    .shared
                    .identity
                    .info_line(conn.client_id, &conn.client_ip, true);
                self.queue_bytes(key, &info);
            }
        }
        keys
    }

    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck
    }

    /// Closes every connection, handing queued bytes to the sockets first.
    pub fn close_all(&mut self, reason: CloseReason) {
        self.flush_dirty();
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.begin_close(key, reason);
        }
    }
}
