//! The shard state machine driven as the runtime drives it (see
//! `src/server.rs`), over a fake [`ShardIo`]: sockets are byte sinks with a
//! configurable room, time is a base `Instant` plus offsets the tests choose,
//! and ring batches are carried between brokers by hand. Every test checks
//! what a client would read, byte for byte, or an exact value the broker
//! reports.
//!
//! The call protocol mirrored here: `process_input` then, at the end of each
//! unit of work, `drain_batches` (ring push) and `flush_dirty`; the writer
//! task is `writer_should_run` / `take_for_writer` / `chunk_written` /
//! `writer_done`; a ring consumer calls `apply_batch`; housekeeping calls
//! `tick`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::connection::CloseReason;
use crate::ids::{ClientId, ConnKey, ShardId};
use crate::info::ServerIdentity;
use crate::io::{ShardIo, Wake};
use crate::limits::ShardLimits;
use crate::mesh::{MeshItem, ShardBatch};
use crate::outbound_queue::BlockPool;
use crate::protocol::Parser;
use crate::snapshot::{ShardSnapshot, SnapshotRequest, SubscriptionSnapshot};

use super::{InputOutcome, Next, ShardBroker, ShardSetup, WallClock};

// ---------------------------------------------------------------------------
// The fake I/O seam.

#[derive(Default)]
pub(super) struct SocketState {
    /// Everything the socket took, in order, not yet read by the test.
    sent: Vec<u8>,
    /// Bytes the socket still takes; `None`: as many as it is given.
    room: Option<usize>,
    /// Every send fails (a reset connection).
    fail: bool,
    shutdown: bool,
    writer_wakes: u32,
    /// Sends attempted after the shutdown (they fail, as on a real socket).
    sends_after_shutdown: u32,
}

/// One client socket: shared by the test and the broker's connection.
#[derive(Clone, Default)]
pub(super) struct Socket(Rc<RefCell<SocketState>>);

impl Socket {
    /// A non-blocking send of `slices`, in order, as far as the room allows.
    fn accept(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        if state.shutdown {
            state.sends_after_shutdown += 1;
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if state.fail {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let mut taken = 0;
        for slice in slices {
            let room = state.room.unwrap_or(usize::MAX);
            let n = slice.len().min(room);
            state.sent.extend_from_slice(&slice[..n]);
            if let Some(room) = &mut state.room {
                *room -= n;
            }
            taken += n;
            if n < slice.len() {
                break;
            }
        }
        Ok(taken)
    }

    /// What the client has read since the last call (all of it ASCII here,
    /// so the comparison stays byte-exact).
    pub(super) fn read(&self) -> String {
        let bytes = std::mem::take(&mut self.0.borrow_mut().sent);
        String::from_utf8(bytes).expect("protocol bytes are UTF-8")
    }

    fn set_room(&self, room: Option<usize>) {
        self.0.borrow_mut().room = room;
    }

    fn set_fail(&self) {
        self.0.borrow_mut().fail = true;
    }

    fn is_shut_down(&self) -> bool {
        self.0.borrow().shutdown
    }

    fn writer_wakes(&self) -> u32 {
        self.0.borrow().writer_wakes
    }

    fn sends_after_shutdown(&self) -> u32 {
        self.0.borrow().sends_after_shutdown
    }
}

#[derive(Default)]
pub(super) struct FakeIo {
    wakes: RefCell<Vec<Wake>>,
}

impl FakeIo {
    fn wakes_of(&self, event: Wake) -> usize {
        self.wakes.borrow().iter().filter(|&&w| w == event).count()
    }
}

impl ShardIo for FakeIo {
    type Endpoint = Socket;
    /// An accepted socket in transit is just a number here.
    type Handoff = u64;

    fn send(&self, endpoint: &Socket, bytes: &[u8]) -> io::Result<usize> {
        endpoint.accept(&[IoSlice::new(bytes)])
    }

    fn send_vectored(&self, endpoint: &Socket, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        endpoint.accept(slices)
    }

    fn shutdown(&self, endpoint: &Socket) {
        endpoint.0.borrow_mut().shutdown = true;
    }

    fn wake_writer(&self, endpoint: &Socket) {
        endpoint.0.borrow_mut().writer_wakes += 1;
    }

    fn wake(&self, event: Wake) {
        self.wakes.borrow_mut().push(event);
    }
}

// ---------------------------------------------------------------------------
// The harness: brokers, clients, units of work, rings carried by hand.

const CLIENT_IP: &str = "10.0.0.1";
const SEED: u64 = 0x5eed;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn identity() -> Arc<ServerIdentity> {
    Arc::new(ServerIdentity {
        server_id: "NTEST".into(),
        server_name: "test".into(),
        host: "127.0.0.1".into(),
        port: 4222,
        headers: true,
        auth_required: false,
        max_payload: 1024 * 1024,
        tls: Default::default(),
    })
}

/// The INFO a client of [`identity`] gets, written out in full.
fn info(cid: u64, ip: &str, lame_duck: bool) -> String {
    format!(
        "INFO {{\"server_id\":\"NTEST\",\"server_name\":\"test\",\"version\":\"2.9.10\",\
         \"proto\":1,\"go\":\"percore-{}\",\"host\":\"127.0.0.1\",\"port\":4222,\
         \"headers\":true,\"max_payload\":1048576,\"client_id\":{cid},\"client_ip\":\"{ip}\"{}}} \r\n",
        env!("CARGO_PKG_VERSION"),
        if lame_duck { ",\"ldm\":true" } else { "" },
    )
}

/// A fixed wall-clock moment, so monitoring times are exact.
fn wall_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

const EVERYTHING: SnapshotRequest = SnapshotRequest {
    with_connections: true,
    with_subscriptions: true,
    with_closed: true,
    with_routes: true,
    with_route_subs: true,
};

pub(super) struct Client {
    pub(super) key: ConnKey,
    pub(super) cid: u64,
    socket: Socket,
    parser: Parser,
}

impl Client {
    pub(super) fn read(&self) -> String {
        self.socket.read()
    }
}

/// One shard with the runtime's duties: units of work, its outbound rings.
pub(super) struct Node {
    pub(super) broker: ShardBroker<FakeIo>,
    /// Batches pushed at the end of units of work, oldest first.
    outbox: VecDeque<(ShardId, ShardBatch<u64>)>,
    /// The time of the next unit of work.
    pub(super) now: Instant,
}

impl Node {
    fn new(index: usize, shard_count: usize, limits: ShardLimits, now: Instant) -> Node {
        let setup = ShardSetup {
            id: ShardId::new(index),
            shard_count,
            identity: identity(),
            limits,
            seed: SEED + index as u64,
            io: FakeIo::default(),
        };
        Node {
            broker: ShardBroker::new(setup, now),
            outbox: VecDeque::new(),
            now,
        }
    }

    pub(super) fn single(limits: ShardLimits) -> Node {
        Node::new(0, 1, limits, Instant::now())
    }

    fn io(&self) -> &FakeIo {
        self.broker.io()
    }

    /// End of a unit of work, in `server.rs`'s order: ring pushes, then one
    /// flush per dirty connection.
    pub(super) fn end_of_work(&mut self) {
        let outbox = &mut self.outbox;
        self.broker
            .drain_batches(|dst, batch| outbox.push_back((dst, batch)));
        self.broker.flush_dirty(self.now);
        if self.broker.delivery_latency_due() {
            self.broker.delivery_written(self.now);
        }
    }

    /// Accepts a client and checks the INFO it is greeted with.
    pub(super) fn connect(&mut self, cid: u64) -> Client {
        let (client, greeting) = self.accept(cid, None);
        assert_eq!(greeting, info(cid, CLIENT_IP, false));
        client
    }

    /// Accepts a client whose INFO carries `nonce` (not checked further).
    pub(super) fn connect_with_nonce(&mut self, cid: u64, nonce: &str) -> Client {
        let (client, greeting) = self.accept(cid, Some(nonce));
        assert!(greeting.contains(&format!("\"nonce\":\"{nonce}\"")));
        client
    }

    /// Registers a client as the accept path does; returns it and the
    /// bytes it was greeted with.
    pub(super) fn accept(&mut self, cid: u64, nonce: Option<&str>) -> (Client, String) {
        let socket = Socket::default();
        let key = self.broker.register_connection(
            super::Accepted {
                client_id: ClientId(cid),
                endpoint: socket.clone(),
                ip: CLIENT_IP.into(),
                port: 40_000 + cid as u16,
                nonce: nonce.map(str::to_string),
            },
            self.now,
        );
        self.end_of_work();
        let greeting = socket.read();
        let limits = self.broker.limits();
        let client = Client {
            key,
            cid,
            socket,
            parser: Parser::new(limits.max_control_line, limits.max_payload),
        };
        (client, greeting)
    }

    /// One socket read, handled as far as the broker goes without waiting;
    /// no end of work.
    pub(super) fn process(&mut self, client: &mut Client, bytes: &[u8]) -> InputOutcome {
        self.broker
            .process_input(client.key, &mut client.parser, bytes, self.now)
    }

    /// One socket read that is handled completely, then the end of work.
    pub(super) fn input(&mut self, client: &mut Client, bytes: &str) {
        let outcome = self.process(client, bytes.as_bytes());
        assert_eq!(outcome.next, Next::NeedMore, "after {bytes:?}");
        assert_eq!(outcome.consumed, bytes.len(), "after {bytes:?}");
        self.end_of_work();
    }

    pub(super) fn tick(&mut self) {
        self.broker.tick(self.now);
        self.end_of_work();
    }

    pub(super) fn clock(&self) -> WallClock {
        WallClock {
            now: self.now,
            wall_now: wall_now(),
        }
    }

    pub(super) fn snapshot(&self) -> ShardSnapshot {
        self.broker.snapshot(EVERYTHING, self.clock())
    }

    /// The reader and writer ended: forget the connection, as the reader
    /// task does last.
    pub(super) fn remove(&mut self, client: &Client) -> bool {
        let removed = self.broker.remove_connection(client.key, self.clock());
        self.end_of_work();
        removed
    }

    /// The batches pushed so far, described; they stay queued for `carry`.
    fn batches(&self) -> Vec<(usize, u64, Vec<String>)> {
        self.outbox
            .iter()
            .map(|(dst, batch)| (dst.index(), batch.seq, describe(batch)))
            .collect()
    }
}

/// Carries every batch `from` pushed for `to` over the ring and applies it
/// as `to`'s ring consumer does (one unit of work per batch). Returns the
/// sockets handed over.
pub(super) fn carry(from: &mut Node, to: &mut Node) -> Vec<(u64, ClientId)> {
    let src = from.broker.shard_id();
    let dst = to.broker.shard_id();
    let mut adopted = Vec::new();
    let mut kept = VecDeque::new();
    while let Some((target, batch)) = from.outbox.pop_front() {
        if target != dst {
            kept.push_back((target, batch));
            continue;
        }
        adopted.extend(to.broker.apply_batch(src, batch, to.now));
        to.end_of_work();
    }
    from.outbox = kept;
    adopted
}

fn describe(batch: &ShardBatch<u64>) -> Vec<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    batch
        .items
        .iter()
        .map(|item| match item {
            MeshItem::Interest {
                subject,
                queue,
                delta,
                ..
            } => format!(
                "interest {} {} {delta:+}",
                text(subject),
                queue.as_deref().map_or("-".into(), text)
            ),
            MeshItem::Ack { seq } => format!("ack {seq}"),
            MeshItem::AckWanted => "ack wanted".to_owned(),
            MeshItem::Deliver {
                subject,
                reply,
                header_len,
                payload,
                queues,
                ..
            } => format!(
                "deliver {} reply={} hdr={:?} payload={} queues={:?}",
                text(subject.slice(&batch.arena)),
                reply.map_or("-".into(), |r| text(r.slice(&batch.arena))),
                header_len,
                text(payload.slice(&batch.arena)),
                crate::mesh::QueueNames::new(queues.slice(&batch.arena))
                    .map(text)
                    .collect::<Vec<_>>()
            ),
            MeshItem::Adopt { socket, client_id } => format!("adopt {socket} cid {client_id}"),
            MeshItem::ConnectUrls(info) => format!("connect_urls {:?}", info.connect_urls),
        })
        .collect()
}

/// `CONNECT <json>\r\n`.
fn connect_with(json: &str) -> String {
    format!("CONNECT {json}\r\n")
}

const NON_VERBOSE: &str = "CONNECT {\"verbose\":false}\r\n";

/// One round of the writer task, woken with work and a socket that takes
/// everything: takes the queue, sends it, reports it. Returns the bytes sent.
fn writer_round(node: &mut Node, client: &Client) -> usize {
    assert!(node.broker.writer_should_run(client.key));
    let mut queue = node
        .broker
        .take_for_writer(client.key, node.now)
        .expect("the connection is open");
    let mut blocks = BlockPool::default();
    let sent = client.socket.accept(&queue.send_slices()).unwrap();
    queue.consume(&mut blocks, sent);
    assert!(queue.is_empty(), "the socket took everything");
    node.broker.chunk_written(client.key, sent, node.now);
    node.broker.writer_done(client.key, blocks, true, node.now);
    sent
}

// ---------------------------------------------------------------------------
// Handshake and PING/PONG.

#[test]
fn register_queues_info_and_flush_dirty_sends_it() {
    let mut node = Node::single(ShardLimits::default());
    let socket = Socket::default();
    let key = node.broker.register_connection(
        super::Accepted {
            client_id: ClientId(7),
            endpoint: socket.clone(),
            ip: CLIENT_IP.into(),
            port: 40_007,
            nonce: None,
        },
        node.now,
    );
    assert_eq!(socket.read(), "", "queued, not sent, until the flush");
    assert_eq!(node.broker.connection_count(), 1);
    assert!(!node.broker.is_closing(key));
    node.end_of_work();
    assert_eq!(socket.read(), info(7, CLIENT_IP, false));
    assert_eq!(socket.writer_wakes(), 0, "the socket took it all directly");
    assert_eq!(node.io().wakes_of(Wake::Drained), 1);
    node.end_of_work();
    assert_eq!(socket.read(), "", "nothing is sent twice");
}

#[test]
fn connect_non_verbose_then_ping_gets_pong() {
    let mut node = Node::single(ShardLimits::default());
    let mut client = node.connect(1);
    node.input(&mut client, "CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(client.read(), "PONG\r\n");
}

#[test]
fn verbose_is_the_default_and_acknowledges_each_op() {
    let mut node = Node::single(ShardLimits::default());
    // Before any CONNECT the defaults (verbose) apply.
    let mut telnet = node.connect(1);
    node.input(&mut telnet, "SUB foo 1\r\n");
    assert_eq!(telnet.read(), "+OK\r\n");

    let mut client = node.connect(2);
    node.input(
        &mut client,
        "CONNECT {}\r\nSUB bar 1\r\nPUB bar 2\r\nhi\r\nUNSUB 1\r\nPING\r\n",
    );
    assert_eq!(
        client.read(),
        "+OK\r\n+OK\r\n+OK\r\nMSG bar 1 2\r\nhi\r\n+OK\r\nPONG\r\n"
    );
}

#[test]
fn a_connect_split_over_two_reads_is_handled_once_complete() {
    let mut node = Node::single(ShardLimits::default());
    let mut client = node.connect(1);
    let outcome = node.process(&mut client, b"CONNECT {\"verbose\":fa");
    assert_eq!((outcome.consumed, outcome.next), (0, Next::NeedMore));
    node.end_of_work();
    assert_eq!(client.read(), "");
    node.input(&mut client, "CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(client.read(), "PONG\r\n");
}

#[test]
fn an_unknown_op_gets_the_error_and_closes() {
    let mut node = Node::single(ShardLimits::default());
    let mut client = node.connect(1);
    let outcome = node.process(&mut client, b"PING\r\nFOO\r\nPING\r\n");
    assert_eq!(outcome.next, Next::Close);
    assert_eq!(outcome.consumed, 6, "only the first PING was consumed");
    // Last words are sent at once, before the shutdown.
    assert_eq!(
        client.read(),
        "PONG\r\n-ERR 'Unknown Protocol Operation'\r\n"
    );
    assert!(client.socket.is_shut_down());
    assert_eq!(client.socket.writer_wakes(), 1, "the writer is told to end");
    assert!(node.broker.is_closing(client.key));
    node.end_of_work();
    assert_eq!(client.socket.sends_after_shutdown(), 0);
    // The writer ends, then the reader forgets the connection.
    assert!(node.broker.writer_should_run(client.key));
    assert!(node.broker.take_for_writer(client.key, node.now).is_none());
    assert!(node.remove(&client));
    let snapshot = node.snapshot();
    assert_eq!(snapshot.open_connections, 0);
    assert_eq!(snapshot.closed.len(), 1);
    assert_eq!(
        snapshot.closed[0].reason.as_deref(),
        Some("Protocol Violation")
    );
}

#[test]
fn reject_connection_sends_info_and_the_error_and_shuts_down() {
    let node = Node::single(ShardLimits::default());
    let socket = Socket::default();
    node.broker
        .reject_connection(ClientId(9), &socket, "10.0.0.9");
    assert_eq!(
        socket.read(),
        info(9, "10.0.0.9", false) + "-ERR 'maximum connections exceeded'\r\n"
    );
    assert!(socket.is_shut_down());
    assert_eq!(node.broker.connection_count(), 0);
}

// ---------------------------------------------------------------------------
// Publish and subscribe on one shard.

#[test]
fn sub_and_pub_on_one_shard_deliver_the_exact_msg() {
    let mut node = Node::single(ShardLimits::default());
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    node.input(&mut sub, &(NON_VERBOSE.to_owned() + "SUB foo.* 1\r\n"));
    node.input(
        &mut publisher,
        &(NON_VERBOSE.to_owned()
            + "PUB foo.bar 5\r\nhello\r\nPUB foo.baz reply.to 2\r\nhi\r\nPUB other 1\r\nx\r\n"),
    );
    assert_eq!(
        sub.read(),
        "MSG foo.bar 1 5\r\nhello\r\nMSG foo.baz 1 reply.to 2\r\nhi\r\n"
    );
    assert_eq!(publisher.read(), "");
    let stats = &node.broker.stats;
    assert_eq!(
        (
            stats.in_msgs,
            stats.in_bytes,
            stats.out_msgs,
            stats.out_bytes
        ),
        (3, 8, 2, 7)
    );
    let snapshot = node.snapshot();
    let traffic: Vec<_> = snapshot
        .connections
        .iter()
        .map(|c| (c.cid, c.in_msgs, c.in_bytes, c.out_msgs, c.out_bytes))
        .collect();
    assert_eq!(traffic, [(1, 0, 0, 2, 7), (2, 3, 8, 0, 0)]);
}

#[test]
fn hpub_reaches_header_clients_as_hmsg_and_others_as_msg() {
    let mut node = Node::single(ShardLimits::default());
    let mut plain = node.connect(1);
    let mut with_headers = node.connect(2);
    let mut publisher = node.connect(3);
    node.input(&mut plain, &(NON_VERBOSE.to_owned() + "SUB foo 1\r\n"));
    node.input(
        &mut with_headers,
        &(connect_with(r#"{"verbose":false,"headers":true}"#) + "SUB foo 2\r\n"),
    );
    node.input(
        &mut publisher,
        &(connect_with(r#"{"verbose":false,"headers":true}"#)
            + "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
    );
    assert_eq!(plain.read(), "MSG foo 1 2\r\nhi\r\n");
    assert_eq!(
        with_headers.read(),
        "HMSG foo 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    );

    // A client that did not announce headers is closed without a word.
    let mut rude = node.connect(4);
    node.input(&mut rude, NON_VERBOSE);
    let outcome = node.process(&mut rude, b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(outcome.next, Next::Close);
    node.end_of_work();
    assert_eq!(rude.read(), "");
    assert!(rude.socket.is_shut_down());
    assert_eq!(
        (plain.read(), with_headers.read()),
        (String::new(), String::new())
    );
    assert!(node.remove(&rude));
    assert_eq!(
        node.snapshot().closed[0].reason.as_deref(),
        Some("Protocol Violation")
    );
}

#[test]
fn echo_false_suppresses_self_delivery_only() {
    let mut node = Node::single(ShardLimits::default());
    let mut no_echo = node.connect(1);
    let mut echo = node.connect(2);
    node.input(
        &mut no_echo,
        &(connect_with(r#"{"verbose":false,"echo":false}"#) + "SUB foo 1\r\nPUB foo 2\r\nhi\r\n"),
    );
    assert_eq!(no_echo.read(), "", "no echo of its own message");
    node.input(&mut echo, &(NON_VERBOSE.to_owned() + "SUB foo 9\r\n"));
    node.input(&mut no_echo, "PUB foo 3\r\nabc\r\n");
    assert_eq!(no_echo.read(), "");
    assert_eq!(echo.read(), "MSG foo 9 3\r\nabc\r\n");
    // Echo is on by default: a publisher gets its own message back, and
    // the echo-less subscriber gets others' messages.
    node.input(&mut echo, "PUB foo 2\r\nyo\r\n");
    assert_eq!(echo.read(), "MSG foo 9 2\r\nyo\r\n");
    assert_eq!(no_echo.read(), "MSG foo 1 2\r\nyo\r\n");
}

#[test]
fn unsub_with_max_auto_unsubscribes_after_max_deliveries() {
    let mut node = Node::single(ShardLimits::default());
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    node.input(
        &mut sub,
        &(NON_VERBOSE.to_owned() + "SUB foo 1\r\nUNSUB 1 2\r\n"),
    );
    node.input(
        &mut publisher,
        &(NON_VERBOSE.to_owned() + "PUB foo 1\r\n1\r\n"),
    );
    assert_eq!(sub.read(), "MSG foo 1 1\r\n1\r\n");
    let subs = &node.snapshot().connections[0].subscription_list;
    assert_eq!(
        subs,
        &[SubscriptionSnapshot {
            subject: "foo".into(),
            queue: None,
            sid: "1".into(),
            msgs: 1,
            max: Some(2),
            cid: 1,
        }]
    );
    node.input(&mut publisher, "PUB foo 1\r\n2\r\nPUB foo 1\r\n3\r\n");
    assert_eq!(sub.read(), "MSG foo 1 1\r\n2\r\n");
    let snapshot = node.snapshot();
    assert_eq!(snapshot.index.num_subscriptions, 0);
    assert_eq!(snapshot.connections[0].subscriptions, 0);

    // A max already reached removes the subscription at once.
    node.input(&mut sub, "SUB bar 2\r\n");
    node.input(&mut publisher, "PUB bar 1\r\na\r\n");
    assert_eq!(sub.read(), "MSG bar 2 1\r\na\r\n");
    node.input(&mut sub, "UNSUB 2 1\r\n");
    node.input(&mut publisher, "PUB bar 1\r\nb\r\n");
    assert_eq!(sub.read(), "");
    assert_eq!(node.snapshot().index.num_subscriptions, 0);
}

#[test]
fn a_reused_sid_is_ignored_and_the_first_subscription_stays() {
    let mut node = Node::single(ShardLimits::default());
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    // Verbose (no CONNECT): the ignored SUB is acknowledged all the same.
    node.input(&mut sub, "SUB foo 1\r\nSUB bar 1\r\n");
    assert_eq!(sub.read(), "+OK\r\n+OK\r\n");
    node.input(
        &mut publisher,
        &(NON_VERBOSE.to_owned() + "PUB bar 1\r\nb\r\nPUB foo 1\r\nf\r\n"),
    );
    assert_eq!(sub.read(), "MSG foo 1 1\r\nf\r\n");
    assert_eq!(node.snapshot().index.num_subscriptions, 1);
}

#[test]
fn an_invalid_subject_gets_the_error_and_the_connection_stays() {
    let mut node = Node::single(ShardLimits::default());
    let mut client = node.connect(1);
    node.input(
        &mut client,
        &(NON_VERBOSE.to_owned() + "SUB foo..bar 1\r\nSUB foo.>.x 2\r\nSUB foo 3\r\nPING\r\n"),
    );
    assert_eq!(
        client.read(),
        "-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\nPONG\r\n"
    );
    assert!(!node.broker.is_closing(client.key));
    assert!(!client.socket.is_shut_down());
    assert_eq!(node.snapshot().index.num_subscriptions, 1);
}

#[test]
fn max_subscriptions_gives_the_nats_server_error() {
    let limits = ShardLimits {
        max_subscriptions: 2,
        ..ShardLimits::default()
    };
    let mut node = Node::single(limits);
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    node.input(
        &mut sub,
        &(NON_VERBOSE.to_owned() + "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n"),
    );
    assert_eq!(
        sub.read(),
        "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n"
    );
    assert!(!node.broker.is_closing(sub.key));
    node.input(
        &mut publisher,
        &(NON_VERBOSE.to_owned() + "PUB c 1\r\nx\r\n"),
    );
    assert_eq!(sub.read(), "", "the refused subscription does not exist");
    // Room again after an UNSUB.
    node.input(&mut sub, "UNSUB 1\r\nSUB c 3\r\n");
    node.input(&mut publisher, "PUB c 1\r\ny\r\n");
    assert_eq!(sub.read(), "MSG c 3 1\r\ny\r\n");
}

#[test]
fn reserved_reply_and_gateway_subjects_are_refused() {
    let mut node = Node::single(ShardLimits::default());
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    node.input(&mut sub, &(NON_VERBOSE.to_owned() + "SUB > 1\r\n"));
    node.input(
        &mut publisher,
        &(NON_VERBOSE.to_owned() + "PUB foo _R_.x 1\r\na\r\nPUB _GR_.x 1\r\nb\r\n"),
    );
    assert_eq!(
        publisher.read(),
        "-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n\
         -ERR 'Permissions Violation for Publish to \"_GR_.x\"'\r\n"
    );
    assert_eq!(sub.read(), "");
    assert!(!node.broker.is_closing(publisher.key));
}

#[test]
fn pedantic_invalid_publish_subject_errs_yet_still_delivers() {
    let mut node = Node::single(ShardLimits::default());
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    node.input(&mut sub, &(NON_VERBOSE.to_owned() + "SUB foo.* 1\r\n"));
    // Default options: verbose and pedantic.
    node.input(&mut publisher, "PUB foo.* 1\r\na\r\n");
    assert_eq!(
        publisher.read(),
        "-ERR 'Invalid Publish Subject'\r\n+OK\r\n"
    );
    assert_eq!(sub.read(), "MSG foo.* 1 1\r\na\r\n");
}

#[test]
fn a_request_nobody_takes_gets_no_responders_when_asked_for() {
    let mut node = Node::single(ShardLimits::default());
    let mut requester = node.connect(1);
    node.input(
        &mut requester,
        &(connect_with(r#"{"verbose":false,"headers":true,"no_responders":true}"#)
            + "SUB _INBOX.x 7\r\nPUB nobody _INBOX.x 0\r\n\r\n"),
    );
    assert_eq!(
        requester.read(),
        "HMSG _INBOX.x 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
    // Without no_responders, silence.
    let mut old = node.connect(2);
    node.input(
        &mut old,
        &(connect_with(r#"{"verbose":false,"headers":true}"#)
            + "SUB _INBOX.y 1\r\nPUB nobody _INBOX.y 0\r\n\r\n"),
    );
    assert_eq!(old.read(), "");
}

#[test]
fn a_queue_group_takes_each_message_once() {
    let mut node = Node::single(ShardLimits::default());
    let mut a = node.connect(1);
    let mut b = node.connect(2);
    let mut publisher = node.connect(3);
    node.input(&mut a, &(NON_VERBOSE.to_owned() + "SUB work q 1\r\n"));
    node.input(&mut b, &(NON_VERBOSE.to_owned() + "SUB work q 2\r\n"));
    let mut input = NON_VERBOSE.to_owned();
    for _ in 0..40 {
        input += "PUB work 1\r\nx\r\n";
    }
    node.input(&mut publisher, &input);
    let (to_a, to_b) = (a.read(), b.read());
    let got_a = to_a.matches("MSG work 1 1\r\nx\r\n").count();
    let got_b = to_b.matches("MSG work 2 1\r\nx\r\n").count();
    assert_eq!(to_a.len(), got_a * 17, "only whole MSGs: {to_a:?}");
    assert_eq!(to_b.len(), got_b * 17, "only whole MSGs: {to_b:?}");
    assert_eq!(got_a + got_b, 40);
    assert!(
        got_a > 0 && got_b > 0,
        "both members are picked: {got_a}/{got_b}"
    );
}

// ---------------------------------------------------------------------------
// Two shards: interest replication, forwarding, acks and the PING barrier.

pub(super) fn two_shards(limits: ShardLimits) -> (Node, Node) {
    let now = Instant::now();
    (
        Node::new(0, 2, limits.clone(), now),
        Node::new(1, 2, limits, now),
    )
}

/// The delivery latency histogram (`crate::delivery_latency`): one sample
/// per unit of work that delivered, from the publisher's read to the end of
/// the delivering flush, across the ring with the read's instant.
#[test]
fn delivery_latency_runs_from_the_publishers_read_to_the_delivering_flush() {
    let (mut n0, mut n1) = two_shards(ShardLimits::default());
    let mut sub = n1.connect(2);
    let mut publisher = n0.connect(1);
    let mut neighbour = n1.connect(3);
    n1.input(&mut sub, &(NON_VERBOSE.to_owned() + "SUB foo 1\r\n"));
    carry(&mut n1, &mut n0);
    n0.input(&mut publisher, NON_VERBOSE);
    n1.input(&mut neighbour, NON_VERBOSE);
    let none = n1.broker.stats.delivery_latency;
    assert_eq!(
        none.count(),
        0,
        "reads that delivered nothing add no sample"
    );

    // Two messages in one read on shard 0; shard 1 applies their batch
    // 300 µs later: one sample of 300 µs, on shard 1 only.
    let read_at = n0.now;
    n0.input(&mut publisher, "PUB foo 2\r\nhi\r\nPUB foo 2\r\nho\r\n");
    n1.now = read_at + Duration::from_micros(300);
    carry(&mut n0, &mut n1);
    assert_eq!(sub.read(), "MSG foo 1 2\r\nhi\r\nMSG foo 1 2\r\nho\r\n");
    let latency = n1.broker.stats.delivery_latency;
    assert_eq!(latency.count(), 1, "per unit of work, not per message");
    assert_eq!(latency.sum(), Duration::from_micros(300));
    assert_eq!(n0.broker.stats.delivery_latency.count(), 0);

    // A publish on the subscriber's own shard: read and flush in the same
    // unit, no time passed in the fake clock.
    n1.input(&mut neighbour, "PUB foo 1\r\nx\r\n");
    assert_eq!(sub.read(), "MSG foo 1 1\r\nx\r\n");
    let latency = n1.broker.stats.delivery_latency;
    assert_eq!(latency.count(), 2);
    assert_eq!(latency.sum(), Duration::from_micros(300));

    // A unit without deliveries after one with: no second sample, and the
    // next one starts from its own read, not the earlier one's.
    n1.input(&mut neighbour, "PING\r\n");
    assert_eq!(neighbour.read(), "PONG\r\n");
    n1.now += Duration::from_millis(5);
    n1.input(&mut neighbour, "PUB foo 1\r\ny\r\n");
    let latency = n1.broker.stats.delivery_latency;
    assert_eq!(latency.count(), 3);
    assert_eq!(latency.sum(), Duration::from_micros(300));
    assert_eq!(n1.snapshot().delivery_latency, latency, "in the snapshot");
}

#[test]
fn interest_and_messages_cross_shards_through_batches() {
    let (mut n0, mut n1) = two_shards(ShardLimits::default());
    let mut sub = n1.connect(2);
    let mut publisher = n0.connect(1);
    // Before any interest reached shard 0, a PUB there goes nowhere.
    n0.input(
        &mut publisher,
        &(NON_VERBOSE.to_owned() + "PUB foo 1\r\nx\r\n"),
    );
    assert!(n0.outbox.is_empty());

    n1.input(&mut sub, &(NON_VERBOSE.to_owned() + "SUB foo 1\r\n"));
    assert_eq!(n1.batches(), [(0, 1, vec!["interest foo - +1".to_owned()])]);
    carry(&mut n1, &mut n0);
    // Shard 0 folds its ack of the batch it applied: nothing goes back yet.
    assert_eq!(n0.batches(), []);

    // The ack rides on the next batch of work going back.
    n0.input(&mut publisher, "PUB foo 5\r\nhello\r\n");
    assert_eq!(
        n0.batches(),
        [(
            1,
            1,
            vec![
                "deliver foo reply=- hdr=None payload=hello queues=[]".to_owned(),
                "ack 1".to_owned()
            ]
        )]
    );
    assert_eq!(sub.read(), "", "not before the batch is applied");
    carry(&mut n0, &mut n1);
    assert_eq!(sub.read(), "MSG foo 1 5\r\nhello\r\n");
    assert_eq!(publisher.read(), "");
    assert_eq!(n1.batches(), [], "ack folded");
    // Counted where published and where delivered.
    assert_eq!((n0.broker.stats.in_msgs, n0.broker.stats.out_msgs), (2, 0));
    assert_eq!((n1.broker.stats.in_msgs, n1.broker.stats.out_msgs), (0, 1));

    // The publisher forwarded something, so its PING waits for the ack.
    // It asks shard 1 for it, which answers in a batch that needs no ack.
    let outcome = n0.process(&mut publisher, b"PING\r\n");
    assert_eq!((outcome.consumed, outcome.next), (6, Next::Barrier));
    n0.end_of_work();
    let target = n0.broker.barrier_target();
    assert!(!n0.broker.barrier_reached(&target));
    assert_eq!(n0.batches(), [(1, 0, vec!["ack wanted".to_owned()])]);
    carry(&mut n0, &mut n1);
    assert_eq!(n1.batches(), [(0, 0, vec!["ack 1".to_owned()])]);
    carry(&mut n1, &mut n0);
    assert!(n0.outbox.is_empty(), "no ack of an ack");
    assert!(n0.broker.barrier_reached(&target));
    n0.broker.send_pong(publisher.key);
    n0.end_of_work();
    assert_eq!(publisher.read(), "PONG\r\n");

    // UNSUB on shard 1 withdraws the interest: shard 0 stops forwarding.
    n1.input(&mut sub, "UNSUB 1\r\n");
    assert_eq!(n1.batches(), [(0, 2, vec!["interest foo - -1".to_owned()])]);
    carry(&mut n1, &mut n0);
    n0.outbox.clear();
    n0.input(&mut publisher, "PUB foo 5\r\nagain\r\n");
    assert_eq!(n0.batches(), []);
}

#[test]
fn a_ping_after_sub_waits_until_the_peer_acked_the_interest() {
    let (mut n0, mut n1) = two_shards(ShardLimits::default());
    let mut sub = n1.connect(2);
    let input = NON_VERBOSE.to_owned() + "SUB a 1\r\n";
    n1.input(&mut sub, &input);
    // A second SUB and a PING in one read.
    let outcome = n1.process(&mut sub, b"SUB b 2\r\nPING\r\n");
    assert_eq!(outcome.next, Next::Barrier);
    assert_eq!(outcome.consumed, 15, "the PING was consumed");
    n1.end_of_work();
    assert_eq!(sub.read(), "", "no PONG before the barrier");
    assert_eq!(
        n1.batches(),
        [
            (0, 1, vec!["interest a - +1".to_owned()]),
            (
                0,
                2,
                vec!["interest b - +1".to_owned(), "ack wanted".to_owned()]
            )
        ]
    );
    let target = n1.broker.barrier_target();
    assert!(!n1.broker.barrier_reached(&target));

    // Shard 0 applies the first batch only: it folds the ack, so the
    // barrier neither moves nor is reached.
    let (dst, first) = n1.outbox.pop_front().expect("first batch");
    assert_eq!(dst, ShardId::new(0));
    n0.broker.apply_batch(ShardId::new(1), first, n0.now);
    n0.end_of_work();
    assert_eq!(n0.batches(), []);
    assert_eq!(n1.io().wakes_of(Wake::Barrier), 0);
    assert!(!n1.broker.barrier_reached(&target));

    // The second batch asks for the ack: it covers both.
    carry(&mut n1, &mut n0);
    assert_eq!(n0.batches(), [(1, 0, vec!["ack 2".to_owned()])]);
    carry(&mut n0, &mut n1);
    assert_eq!(n1.io().wakes_of(Wake::Barrier), 1);
    assert!(n1.broker.barrier_reached(&target));
    n1.broker.send_pong(sub.key);
    n1.end_of_work();
    assert_eq!(sub.read(), "PONG\r\n");

    // Nothing forwarded since: the next PING is answered at once.
    n1.input(&mut sub, "PING\r\n");
    assert_eq!(sub.read(), "PONG\r\n");
    // An ack that repeats an old number moves nothing and wakes nobody.
    let stale_ack = ShardBatch {
        seq: 0,
        arena: bytes::Bytes::new(),
        items: vec![MeshItem::Ack { seq: 1 }],
        returned: Vec::new(),
        ingress: None,
    };
    n1.broker.apply_batch(ShardId::new(0), stale_ack, n1.now);
    assert_eq!(n1.io().wakes_of(Wake::Barrier), 1);
    assert!(n1.broker.barrier_reached(&target));
}

#[test]
fn a_queue_group_spread_over_shards_takes_each_message_once() {
    let (mut n0, mut n1) = two_shards(ShardLimits::default());
    let mut local = n0.connect(1);
    let mut remote = n1.connect(2);
    let mut publisher = n0.connect(3);
    n0.input(&mut local, &(NON_VERBOSE.to_owned() + "SUB work q 1\r\n"));
    n1.input(&mut remote, &(NON_VERBOSE.to_owned() + "SUB work q 2\r\n"));
    carry(&mut n1, &mut n0);
    carry(&mut n0, &mut n1);
    n0.outbox.clear();
    let mut input = NON_VERBOSE.to_owned();
    for _ in 0..40 {
        input += "PUB work 1\r\nx\r\n";
    }
    n0.input(&mut publisher, &input);
    let forwarded: Vec<String> = n0
        .batches()
        .into_iter()
        .flat_map(|(_, _, items)| items)
        .filter(|item| !item.starts_with("ack "))
        .collect();
    assert!(forwarded
        .iter()
        .all(|item| item == "deliver work reply=- hdr=None payload=x queues=[\"q\"]"));
    carry(&mut n0, &mut n1);
    let got_local = local.read().matches("MSG work 1 1\r\nx\r\n").count();
    let got_remote = remote.read().matches("MSG work 2 1\r\nx\r\n").count();
    assert_eq!(got_remote, forwarded.len());
    assert_eq!(got_local + got_remote, 40);
    assert!(got_local > 0 && got_remote > 0, "{got_local}/{got_remote}");
    assert_eq!(n1.broker.stats.queue_no_member, 0);
}

#[test]
fn an_adopted_socket_travels_to_its_shard() {
    let (mut n0, mut n1) = two_shards(ShardLimits::default());
    n0.broker.send_adopt(ShardId::new(1), 99, ClientId(5));
    n0.end_of_work();
    assert_eq!(n0.batches(), [(1, 1, vec!["adopt 99 cid 5".to_owned()])]);
    assert_eq!(carry(&mut n0, &mut n1), [(99, ClientId(5))]);
    // The ack is folded (nothing goes back to shard 0 to carry it) until
    // the tick sends it on its own.
    assert_eq!(n1.batches(), []);
    n1.tick();
    assert_eq!(n1.batches(), [(0, 0, vec!["ack 1".to_owned()])]);
}

#[test]
fn acks_go_back_on_their_own_after_a_run_of_batches() {
    let (mut n0, mut n1) = two_shards(ShardLimits::default());
    let mut sent = Vec::new();
    for i in 0..super::peers::ACK_EVERY {
        n0.broker
            .send_adopt(ShardId::new(1), 100 + i as u64, ClientId(5));
        n0.end_of_work();
        carry(&mut n0, &mut n1);
        sent.extend(n1.batches());
    }
    // One ack, for the whole run, once the run is long enough.
    assert_eq!(
        sent,
        [(0, 0, vec![format!("ack {}", super::peers::ACK_EVERY)])]
    );
}

// ---------------------------------------------------------------------------
// Flow control: the writer hand-over, stalls and slow consumers.

/// A subscriber on `foo` (sid 1) and a publisher, both past the handshake.
fn subscriber_and_publisher(node: &mut Node) -> (Client, Client) {
    let mut sub = node.connect(1);
    let mut publisher = node.connect(2);
    node.input(&mut sub, &(NON_VERBOSE.to_owned() + "SUB foo 1\r\n"));
    node.input(&mut publisher, NON_VERBOSE);
    (sub, publisher)
}

#[test]
fn a_full_socket_hands_over_to_the_writer_and_order_holds() {
    let mut node = Node::single(ShardLimits::default());
    let (sub, mut publisher) = subscriber_and_publisher(&mut node);
    sub.socket.set_room(Some(0));
    assert!(!node.broker.writer_should_run(sub.key));

    node.input(&mut publisher, "PUB foo 3\r\none\r\n");
    assert_eq!(sub.socket.writer_wakes(), 1, "the direct send took nothing");
    assert!(node.broker.writer_should_run(sub.key));
    // While the writer owns the output, new bytes queue behind it.
    node.input(&mut publisher, "PUB foo 3\r\ntwo\r\n");
    assert_eq!(sub.socket.writer_wakes(), 1);
    assert_eq!(sub.read(), "");

    // The writer takes both frames (18 bytes each)...
    let mut held = node
        .broker
        .take_for_writer(sub.key, node.now)
        .expect("open");
    assert_eq!(held.len(), 36);
    assert!(!node.broker.writer_should_run(sub.key), "all taken");
    // ...and the socket takes 10 bytes of them.
    let mut blocks = BlockPool::default();
    sub.socket.set_room(Some(10));
    let sent = sub.socket.accept(&held.send_slices()).unwrap();
    assert_eq!(sent, 10);
    held.consume(&mut blocks, sent);
    node.broker.chunk_written(sub.key, sent, node.now);
    assert_eq!(node.snapshot().connections[0].pending_bytes, 26);

    // A frame published meanwhile waits behind the writer's.
    node.input(&mut publisher, "PUB foo 5\r\nthree\r\n");
    assert_eq!(node.snapshot().connections[0].pending_bytes, 26 + 20);
    assert_eq!(sub.socket.writer_wakes(), 1);
    assert_eq!(sub.read(), "MSG foo 1 ");

    // The socket drains: the writer finishes, then takes the new frame.
    sub.socket.set_room(None);
    let sent = sub.socket.accept(&held.send_slices()).unwrap();
    assert_eq!(sent, 26);
    held.consume(&mut blocks, sent);
    node.broker.chunk_written(sub.key, sent, node.now);
    node.broker.writer_done(sub.key, blocks, true, node.now);
    assert!(node.broker.writer_should_run(sub.key), "a frame waits");
    assert_eq!(writer_round(&mut node, &sub), 20);
    assert!(!node.broker.writer_should_run(sub.key));
    assert_eq!(
        sub.read(),
        "3\r\none\r\nMSG foo 1 3\r\ntwo\r\nMSG foo 1 5\r\nthree\r\n"
    );

    // The writer is done: direct sends again.
    node.input(&mut publisher, "PUB foo 4\r\nfour\r\n");
    assert_eq!(sub.read(), "MSG foo 1 4\r\nfour\r\n");
    assert_eq!(sub.socket.writer_wakes(), 1);
    assert_eq!(node.snapshot().connections[0].pending_bytes, 0);
}

/// One `MSG foo 1 100` frame: 15 + 100 + 2 bytes.
const FRAME: usize = 117;

fn pub_100(node: &mut Node, publisher: &mut Client) {
    let input = format!("PUB foo 100\r\n{}\r\n", "p".repeat(100));
    node.input(publisher, &input);
}

#[test]
fn pending_bytes_past_max_pending_close_a_slow_consumer() {
    let limits = ShardLimits {
        max_pending: 1000,
        ..ShardLimits::default()
    };
    // The stall threshold is half of max_pending: 500.
    let mut node = Node::single(limits);
    let (sub, mut publisher) = subscriber_and_publisher(&mut node);
    sub.socket.set_room(Some(0));

    let mut stalled = Vec::new();
    for _ in 0..8 {
        pub_100(&mut node, &mut publisher);
        let keys = node.broker.take_stall();
        if !keys.is_empty() {
            assert_eq!(keys, [sub.key]);
            assert!(!node.broker.stall_over(&keys));
            assert_eq!(node.broker.stall_allowance(&keys), ms(50));
        }
        stalled.push(!keys.is_empty());
    }
    // Over 500 bytes from the 5th frame (585) on, while it is draining.
    assert_eq!(
        stalled,
        [false, false, false, false, true, true, true, true]
    );
    assert_eq!(
        node.snapshot().connections[0].pending_bytes,
        8 * FRAME as u64
    );
    assert!(!node.broker.is_closing(sub.key));
    assert_eq!(sub.socket.writer_wakes(), 1);

    // The 9th frame (1053 bytes) passes max_pending.
    pub_100(&mut node, &mut publisher);
    assert!(node.broker.is_closing(sub.key));
    assert!(node.broker.take_stall().is_empty());
    assert!(sub.socket.is_shut_down());
    assert_eq!(sub.socket.writer_wakes(), 2, "the writer is told to end");
    assert_eq!(
        sub.read(),
        "",
        "a slow consumer's backlog is dropped unsent"
    );
    assert_eq!(node.broker.stats.slow_consumers, 1);
    assert!(!node.broker.is_closing(publisher.key));
    assert_eq!(publisher.read(), "");

    // Its writer ends, its reader removes it.
    assert!(node.broker.writer_should_run(sub.key));
    assert!(node.broker.take_for_writer(sub.key, node.now).is_none());
    assert!(node.remove(&sub));
    let snapshot = node.snapshot();
    assert_eq!(snapshot.slow_consumers, 1);
    assert_eq!(snapshot.open_connections, 1);
    let closed = &snapshot.closed[0];
    assert_eq!(closed.cid, sub.cid);
    assert_eq!(
        closed.reason.as_deref(),
        Some("Slow Consumer (Pending Bytes)")
    );
    assert_eq!(closed.stop, Some(wall_now()));
    assert_eq!(closed.out_msgs, 9);
    assert_eq!(closed.pending_bytes, 0);
    assert_eq!(closed.subscription_list[0].msgs, 9);
    assert_eq!(snapshot.index.num_subscriptions, 0);
    assert_eq!(sub.socket.sends_after_shutdown(), 0);
}

#[test]
fn a_reader_that_takes_nothing_gets_no_stall_after_the_progress_window() {
    let limits = ShardLimits {
        max_pending: 10_000,
        ..ShardLimits::default()
    };
    // Stall threshold: 5000 bytes, between 42 and 43 frames.
    let mut node = Node::single(limits);
    let (sub, mut publisher) = subscriber_and_publisher(&mut node);
    sub.socket.set_room(Some(0));
    let t0 = node.now;
    pub_100(&mut node, &mut publisher); // hands over to the writer at t0
    let mut held = node.broker.take_for_writer(sub.key, t0).expect("open");
    for _ in 0..41 {
        pub_100(&mut node, &mut publisher);
    }
    assert!(
        node.broker.take_stall().is_empty(),
        "4914 bytes is not over"
    );

    // 250 ms without the socket taking anything: not draining, no stall
    // although over the threshold.
    node.now = t0 + ms(250);
    pub_100(&mut node, &mut publisher);
    assert_eq!(
        node.snapshot().connections[0].pending_bytes,
        43 * FRAME as u64
    );
    assert!(node.broker.take_stall().is_empty());

    // The socket takes one frame: draining again, for 250 ms.
    node.now = t0 + ms(300);
    sub.socket.set_room(Some(FRAME));
    let sent = sub.socket.accept(&held.send_slices()).unwrap();
    held.consume(&mut BlockPool::default(), sent);
    node.broker.chunk_written(sub.key, sent, node.now);
    node.now = t0 + ms(549);
    pub_100(&mut node, &mut publisher);
    assert_eq!(node.broker.take_stall(), [sub.key]);
    node.now = t0 + ms(550);
    pub_100(&mut node, &mut publisher);
    assert!(node.broker.take_stall().is_empty());
    assert_eq!(
        node.snapshot().connections[0].pending_bytes,
        44 * FRAME as u64
    );
}

#[test]
fn the_write_deadline_closes_a_stuck_writer() {
    let limits = ShardLimits {
        write_deadline: Duration::from_secs(1),
        ..ShardLimits::default()
    };
    let mut node = Node::single(limits);
    let (sub, mut publisher) = subscriber_and_publisher(&mut node);
    sub.socket.set_room(Some(0));
    let t0 = node.now;
    node.input(&mut publisher, "PUB foo 2\r\nhi\r\n");
    // The writer takes the frame at once; the socket takes none of it.
    let held = node.broker.take_for_writer(sub.key, t0).expect("open");
    assert_eq!(sub.socket.accept(&held.send_slices()).unwrap(), 0);

    node.now = t0 + ms(999);
    node.tick();
    assert!(!node.broker.is_closing(sub.key));
    node.now = t0 + ms(1000);
    node.tick();
    assert!(node.broker.is_closing(sub.key));
    assert!(sub.socket.is_shut_down());
    assert_eq!(sub.socket.writer_wakes(), 2);
    assert_eq!(node.broker.stats.slow_consumers, 1);
    assert!(!node.broker.is_closing(publisher.key));
    assert_eq!(publisher.read(), "", "no PING before the first-ping delay");

    // The writer's send fails on the shut socket; it reports and ends.
    node.broker
        .writer_done(sub.key, BlockPool::default(), false, node.now);
    assert!(node.remove(&sub));
    assert_eq!(
        node.snapshot().closed[0].reason.as_deref(),
        Some("Slow Consumer (Write Deadline)")
    );
}

#[test]
fn a_send_error_closes_with_write_error() {
    let mut node = Node::single(ShardLimits::default());
    let (sub, mut publisher) = subscriber_and_publisher(&mut node);
    sub.socket.set_fail();
    node.input(&mut publisher, "PUB foo 2\r\nhi\r\n");
    assert!(node.broker.is_closing(sub.key));
    assert!(sub.socket.is_shut_down());
    assert!(node.remove(&sub));
    let snapshot = node.snapshot();
    assert_eq!(snapshot.closed[0].reason.as_deref(), Some("Write Error"));
    assert_eq!(snapshot.slow_consumers, 0);
}

// ---------------------------------------------------------------------------
// Timers.

#[test]
fn server_pings_after_ping_interval_and_closes_a_stale_connection() {
    let limits = ShardLimits {
        ping_interval: Duration::from_secs(10),
        ping_max: 2,
        ..ShardLimits::default()
    };
    let mut node = Node::single(limits);
    let t0 = node.now;
    // No CONNECT: the first PING is due one interval after the accept.
    let client = node.connect(1);
    node.now = t0 + ms(9_999);
    node.tick();
    assert_eq!(client.read(), "");
    node.now = t0 + ms(10_000);
    node.tick();
    assert_eq!(client.read(), "PING\r\n");
    node.now = t0 + ms(20_000);
    node.tick();
    assert_eq!(client.read(), "PING\r\n");
    assert!(!node.broker.is_closing(client.key));
    // ping_max PINGs unanswered: the next check closes it.
    node.now = t0 + ms(30_000);
    node.broker.tick(node.now);
    assert_eq!(client.read(), "-ERR 'Stale Connection'\r\n");
    assert!(node.broker.is_closing(client.key));
    assert!(client.socket.is_shut_down());
    node.end_of_work();
    assert_eq!(client.socket.sends_after_shutdown(), 0);
    assert!(node.remove(&client));
    assert_eq!(
        node.snapshot().closed[0].reason.as_deref(),
        Some("Stale Connection")
    );
}

#[test]
fn answered_pings_keep_a_connection_and_measure_its_rtt() {
    let limits = ShardLimits {
        ping_interval: Duration::from_secs(10),
        ping_max: 2,
        ..ShardLimits::default()
    };
    let mut node = Node::single(limits);
    let t0 = node.now;
    let mut client = node.connect(1);
    node.now = t0 + ms(3);
    node.input(&mut client, NON_VERBOSE);
    // Until a PING is answered, the RTT is accept to CONNECT.
    assert_eq!(node.snapshot().connections[0].rtt, Some(ms(3)));

    // The first PING comes 2 s after CONNECT, plus up to 20 % jitter.
    node.now = t0 + ms(3 + 1_999);
    node.tick();
    assert_eq!(client.read(), "");
    let first_ping = t0 + ms(3 + 2_400);
    node.now = first_ping;
    node.tick();
    assert_eq!(client.read(), "PING\r\n");
    node.now = first_ping + ms(5);
    node.input(&mut client, "PONG\r\n");
    assert_eq!(node.snapshot().connections[0].rtt, Some(ms(5)));

    for round in 1..=5u64 {
        node.now = first_ping + ms(round * 10_000);
        node.tick();
        assert_eq!(client.read(), "PING\r\n", "round {round}");
        node.input(&mut client, "PONG\r\n");
    }
    assert!(!node.broker.is_closing(client.key));

    // A client that published since the last check is not pinged.
    node.input(&mut client, "PUB x 1\r\na\r\n");
    node.now = first_ping + ms(60_000);
    node.tick();
    assert_eq!(client.read(), "");
    node.now = first_ping + ms(70_000);
    node.tick();
    assert_eq!(client.read(), "PING\r\n");
}

#[test]
fn lame_duck_tells_proto_1_clients_after_their_first_pong() {
    let mut node = Node::single(ShardLimits::default());
    let mut ready = node.connect(1);
    let mut no_pong_yet = node.connect(2);
    let mut proto_0 = node.connect(3);
    let proto_1 = connect_with(r#"{"verbose":false,"protocol":1}"#);
    node.input(&mut ready, &(proto_1.clone() + "PING\r\n"));
    node.input(&mut no_pong_yet, &proto_1);
    node.input(&mut proto_0, &(NON_VERBOSE.to_owned() + "PING\r\n"));
    assert_eq!(ready.read(), "PONG\r\n");
    assert_eq!(proto_0.read(), "PONG\r\n");

    let keys = node.broker.enter_lame_duck();
    node.end_of_work();
    assert!(node.broker.in_lame_duck());
    assert_eq!(keys, [ready.key, no_pong_yet.key, proto_0.key]);
    assert_eq!(ready.read(), info(1, CLIENT_IP, true));
    assert_eq!(no_pong_yet.read(), "");
    assert_eq!(proto_0.read(), "");
}

// ---------------------------------------------------------------------------
// Connection keys.

#[test]
fn a_removed_connections_key_is_rejected_after_its_slot_is_reused() {
    let mut node = Node::single(ShardLimits::default());
    let mut old = node.connect(1);
    node.broker.begin_close(old.key, CloseReason::ClientClosed);
    assert!(node.remove(&old));
    let mut new = node.connect(2);
    assert_eq!(new.key.slot, old.key.slot, "the slot is reused");
    assert_ne!(new.key, old.key);

    assert!(node.broker.is_closing(old.key));
    assert!(!node.broker.is_closing(new.key));
    assert!(node.broker.endpoint(old.key).is_none());
    let endpoint = node.broker.endpoint(new.key).expect("registered");
    assert!(Rc::ptr_eq(&endpoint.0, &new.socket.0));

    // Nothing done with the old key reaches the new connection.
    let outcome = node.process(&mut old, b"PING\r\n");
    assert_eq!((outcome.consumed, outcome.next), (0, Next::Close));
    node.broker
        .begin_close(old.key, CloseReason::ProtocolViolation);
    assert!(node.broker.writer_should_run(old.key), "its writer ends");
    assert!(node.broker.take_for_writer(old.key, node.now).is_none());
    node.broker.chunk_written(old.key, 5, node.now);
    node.broker
        .writer_done(old.key, BlockPool::default(), false, node.now);
    assert!(!node.remove(&old));
    assert!(!new.socket.is_shut_down());
    assert!(!node.broker.is_closing(new.key));
    assert_eq!(node.broker.connection_count(), 1);
    let closed = node.snapshot().closed;
    assert_eq!(closed.len(), 1, "closed once");
    assert_eq!((closed[0].cid, closed[0].port), (old.cid, 40_001));
    assert_eq!(old.read(), "");
    node.input(&mut new, "PING\r\n");
    assert_eq!(new.read(), "PONG\r\n");
}
