//! N shards' state machines in one thread, driven the way `src/server.rs`
//! drives them on glommio, with every choice the runtime would make left
//! to a seeded scheduler: which client writes or reads, which shard task
//! runs its next unit of work, which ring delivers its next batch (each ring
//! stays FIFO; rings are consumed independently, so control deltas and
//! messages from different shards interleave in any order), when time
//! moves, when a client vanishes mid-batch, how much a socket takes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore_core::account::{
    Account, AccountTable, Export, ExportKind, StreamImport, SubjectTransform,
};
use percore_core::auth::{AuthPolicy, PasswordUser, Permissions, Rules, Secret, SubscribeRule};
use percore_core::connection::CloseReason;
use percore_core::ids::AccountId;
use percore_core::ids::{ClientId, ConnKey, ShardId};
use percore_core::info::ServerIdentity;
use percore_core::limits::ShardLimits;
use percore_core::mesh::ShardBatch;
use percore_core::outbound_queue::{BlockPool, OutboundQueue};
use percore_core::protocol::Parser;
use percore_core::shard::{Accepted, BarrierTarget, Next, ShardBroker, ShardSetup, WallClock};

use crate::client::SimClient;
use crate::model::{Model, Step};
use crate::rng::SimRng;
use crate::sim_io::{SimIo, SimSocket};

type Broker = ShardBroker<SimIo>;

/// A task waiting, after its unit of work, for slow readers to drain.
struct Stall {
    keys: Vec<ConnKey>,
    started: Instant,
    allowance: Duration,
}

enum Writer {
    Idle,
    /// Holds what it took from the state machine, writing as the socket
    /// takes it, and the blocks it emptied so far.
    Writing(OutboundQueue, BlockPool),
    Ended,
}

/// The server side of one client connection: its reader and writer tasks.
struct ServerConn {
    key: ConnKey,
    shard: usize,
    parser: Parser,
    read_buffer: Vec<u8>,
    /// A PING waiting for its cross-shard barrier.
    barrier: Option<BarrierTarget>,
    stall: Option<Stall>,
    reader_done: bool,
    writer: Writer,
    removed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Clients run their programs; clients may vanish.
    Run,
    /// Every open client sends a last PING; the run ends once all is quiet.
    Drain,
}

pub struct World {
    pub rng: SimRng,
    shards: Vec<Broker>,
    /// `rings[src][dst]`: what the consumer can take now.
    rings: Vec<Vec<VecDeque<ShardBatch<()>>>>,
    /// `staged[src][dst]`: batches waiting for room in a full ring, in
    /// order (`RingOutbox`); a reader's catch-up does not wait for them.
    staged: Vec<Vec<VecDeque<ShardBatch<()>>>>,
    ring_capacity: usize,
    /// `ring_stalls[dst][src]`: the consumer of ring src->dst is stalled.
    ring_stalls: Vec<Vec<Option<Stall>>>,
    clients: Vec<SimClient>,
    conns: Vec<ServerConn>,
    pub model: Model,
    base: Instant,
    now: Instant,
    pub step: Step,
    phase: Phase,
    /// The last steps, printed when a run fails.
    pub trail: VecDeque<String>,
    /// `PERCORE_SIM_TRACE=1`: print every step as it happens.
    trace: bool,
}

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = SimRng::new(seed);
        let shard_count = 1 + rng.below(4) as usize;
        let client_count = 2 + rng.below(6) as usize;
        // Tiny rings in half the runs, so batches queue up behind them and
        // only the PING barrier orders them (the catch-up does not).
        let ring_capacity = if rng.chance(50) {
            1 + rng.below(3) as usize
        } else {
            256
        };
        let mut limits = ShardLimits::default();
        if rng.chance(30) {
            // Small enough that slow readers are cut off.
            limits.max_pending = 2048 + rng.below(16 * 1024) as usize;
        }
        if rng.chance(20) {
            limits.max_subscriptions = 1 + rng.below(6) as usize;
        }
        // In a third of the runs every client is one user with permissions
        // (logged in through `no_auth_user`, as the clients send no
        // credentials): `c.>` may not be published, `b.*` not received.
        let permissions = rng
            .chance(33)
            .then(|| (vec!["c.>".to_string()], vec!["b.*".to_string()]));
        // In a third of the runs (independently) the clients are split
        // between accounts A and B, logging in as users `a` and `b`, and B
        // imports A's `a.>` stream as `c.a.>`.
        let accounts = rng.chance(33);
        if accounts {
            limits.accounts = Arc::new(sim_accounts());
        }
        if accounts || permissions.is_some() {
            limits.auth = Arc::new(sim_policy(permissions.as_ref(), accounts));
        }
        let identity = Arc::new(ServerIdentity {
            server_id: "NSIM".into(),
            server_name: "sim".into(),
            host: "127.0.0.1".into(),
            port: 4222,
            headers: true,
            auth_required: false,
            max_payload: limits.max_payload,
            tls: Default::default(),
        });
        let base = Instant::now();
        let shards = (0..shard_count)
            .map(|id| {
                let setup = ShardSetup {
                    id: ShardId::new(id),
                    shard_count,
                    identity: identity.clone(),
                    limits: limits.clone(),
                    seed: rng.next_u64(),
                    io: SimIo,
                };
                ShardBroker::new(setup, base)
            })
            .collect();
        let mut world = World {
            rng,
            shards,
            rings: (0..shard_count)
                .map(|_| (0..shard_count).map(|_| VecDeque::new()).collect())
                .collect(),
            staged: (0..shard_count)
                .map(|_| (0..shard_count).map(|_| VecDeque::new()).collect())
                .collect(),
            ring_capacity,
            ring_stalls: (0..shard_count)
                .map(|_| (0..shard_count).map(|_| None).collect())
                .collect(),
            clients: Vec::new(),
            conns: Vec::new(),
            model: Model::default(),
            base,
            now: base,
            step: 0,
            phase: Phase::Run,
            trail: VecDeque::new(),
            trace: std::env::var_os("PERCORE_SIM_TRACE").is_some(),
        };
        if let Some((publish_deny, subscribe_deny)) = permissions {
            world.model.publish_deny = publish_deny;
            world.model.subscribe_deny = subscribe_deny;
        }
        world.model.import = accounts;
        for id in 0..client_count {
            let account = if accounts {
                Some(world.rng.below(2) as u8)
            } else {
                None
            };
            world.connect_client(id, &limits, account);
        }
        world
    }

    /// `account`: log in as user `a` (0, account A) or `b` (1, account B).
    fn connect_client(&mut self, id: usize, limits: &ShardLimits, account: Option<u8>) {
        let shard = self.rng.below(self.shards.len() as u64) as usize;
        let buffer = 64 + self.rng.below(8192) as usize;
        let socket = SimSocket::new(buffer);
        let mut client = SimClient::new(id, &mut self.rng, socket.clone());
        client.max_subscriptions = limits.max_subscriptions;
        client.write_connect(account.map(|a| if a == 0 { "a" } else { "b" }));
        self.model.echo.push(client.echo);
        self.model.account.push(account.unwrap_or(0));
        let key = self.shards[shard].register_connection(
            Accepted {
                client_id: ClientId(id as u64 + 1),
                endpoint: socket,
                ip: "127.0.0.1".into(),
                port: 10_000 + id as u16,
                nonce: None,
            },
            self.now,
        );
        self.conns.push(ServerConn {
            key,
            shard,
            parser: Parser::new(limits.max_control_line, limits.max_payload),
            read_buffer: Vec::new(),
            barrier: None,
            stall: None,
            reader_done: false,
            writer: Writer::Idle,
            removed: false,
        });
        self.clients.push(client);
        self.end_of_work(shard);
    }

    fn note(&mut self, what: String) {
        if self.trace {
            eprintln!("#{} {what}", self.step);
        }
        if self.trail.len() == 60 {
            self.trail.pop_front();
        }
        self.trail.push_back(format!("#{} {what}", self.step));
    }

    /// Runs the whole simulation; `Err` names the first broken guarantee.
    pub fn run(&mut self) -> Result<(), String> {
        const MAX_STEPS: u64 = 400_000;
        loop {
            self.step += 1;
            if self.step > MAX_STEPS {
                return Err("no quiet state after 400000 steps".into());
            }
            if self.phase == Phase::Run
                && self.clients.iter().all(|c| c.ops_left == 0 || !c.is_open())
            {
                self.phase = Phase::Drain;
                let step = self.step;
                for client in self.clients.iter_mut().filter(|c| c.is_open()) {
                    client.write_ping(step);
                }
                self.note("drain: every open client sends a last PING".into());
            }
            if !self.step_once()? {
                if self.phase == Phase::Drain && self.quiet() {
                    break;
                }
                self.advance_time(Duration::from_millis(20));
            }
        }
        for client in &self.clients {
            if !client.is_open() {
                self.model.unhealthy.insert(client.id);
            }
            if let Some(error) = client.errors.iter().find(|e| !expected_error(e)) {
                return Err(format!("client {} got -ERR {error}", client.id));
            }
        }
        self.model.check_required()
    }

    /// Nothing left to do: no input, no batch, no writer work, no PONG owed.
    fn quiet(&self) -> bool {
        self.rings.iter().flatten().all(VecDeque::is_empty)
            && self.staged.iter().flatten().all(VecDeque::is_empty)
            && self
                .clients
                .iter()
                .all(|c| !c.is_open() || (!c.awaiting_pong() && c.to_server.is_empty()))
    }

    /// One scheduling decision. False when no task could run.
    fn step_once(&mut self) -> Result<bool, String> {
        let mut choices: Vec<(u32, Action)> = Vec::new();
        for c in 0..self.clients.len() {
            let client = &self.clients[c];
            if self.phase == Phase::Run && client.is_open() && client.ops_left > 0 {
                choices.push((6, Action::ClientWrite(c)));
            }
            let socket = client.socket.0.borrow();
            if client.is_open() && (!socket.in_kernel.is_empty() || socket.shut) {
                let weight = if client.slow_reader && self.phase == Phase::Run {
                    1
                } else {
                    6
                };
                choices.push((weight, Action::ClientRead(c)));
            }
            drop(socket);
            let may_close = self.phase == Phase::Run && client.is_open();
            if may_close && self.rng.chance(1) {
                choices.push((1, Action::ClientClose(c)));
            }
            if self.reader_can_run(c) {
                choices.push((8, Action::ServerRead(c)));
            }
            if self.writer_can_run(c) {
                choices.push((6, Action::Writer(c)));
            }
        }
        for src in 0..self.shards.len() {
            for dst in 0..self.shards.len() {
                if !self.rings[src][dst].is_empty() && self.stall_released(dst, Some(src), None) {
                    choices.push((6, Action::RingApply { src, dst }));
                }
                if !self.staged[src][dst].is_empty()
                    && self.rings[src][dst].len() < self.ring_capacity
                {
                    choices.push((4, Action::Unstage { src, dst }));
                }
            }
        }
        if choices.is_empty() {
            return Ok(false);
        }
        choices.push((
            1,
            Action::Tick(self.rng.below(self.shards.len() as u64) as usize),
        ));
        choices.push((2, Action::Advance));
        let total: u32 = choices.iter().map(|(w, _)| w).sum();
        let mut draw = self.rng.below(u64::from(total)) as u32;
        let action = choices
            .iter()
            .find(|(w, _)| {
                if draw < *w {
                    true
                } else {
                    draw -= w;
                    false
                }
            })
            .map(|&(_, a)| a)
            .unwrap_or(Action::Advance);
        self.perform(action)?;
        Ok(true)
    }

    fn perform(&mut self, action: Action) -> Result<(), String> {
        let step = self.step;
        match action {
            Action::ClientWrite(c) => {
                let ops = 1 + self.rng.below(3);
                let before = self.clients[c].to_server.len();
                for _ in 0..ops {
                    if self.clients[c].ops_left > 0 {
                        self.clients[c].write_random_op(&mut self.rng, &mut self.model, step);
                    }
                }
                let written: Vec<u8> = self.clients[c].to_server.range(before..).copied().collect();
                self.note(format!(
                    "client {c} writes {:?}",
                    String::from_utf8_lossy(&written)
                ));
            }
            Action::ClientRead(c) => {
                let max = if self.clients[c].slow_reader {
                    1 + self.rng.below(64) as usize
                } else {
                    1 + self.rng.below(16 * 1024) as usize
                };
                self.note(format!("client {c} reads up to {max} bytes"));
                self.clients[c].read(max, &mut self.model, step)?;
            }
            Action::ClientClose(c) => {
                self.note(format!("client {c} closes its socket"));
                self.clients[c].gone = true;
                self.model.unhealthy.insert(c);
            }
            Action::ServerRead(c) => self.server_read(c),
            Action::Writer(c) => self.writer_step(c),
            Action::RingApply { src, dst } => {
                self.note(format!("ring {src}->{dst} applies a batch"));
                let batch = self.rings[src][dst].pop_front().expect("non-empty ring");
                let now = self.now;
                let adopted = self.shards[dst].apply_batch(ShardId::new(src), batch, now);
                assert!(
                    adopted.is_empty(),
                    "no sockets are handed over in the simulation"
                );
                self.end_of_work(dst);
                let stall = self.take_stall(dst);
                self.ring_stalls[dst][src] = stall;
            }
            Action::Unstage { src, dst } => {
                self.note(format!("staged batch {src}->{dst} enters the ring"));
                let batch = self.staged[src][dst].pop_front().expect("staged batch");
                self.rings[src][dst].push_back(batch);
            }
            Action::Tick(shard) => {
                self.note(format!("shard {shard} housekeeping"));
                let now = self.now;
                self.shards[shard].tick(now);
                self.end_of_work(shard);
            }
            Action::Advance => {
                let by = if self.rng.chance(5) {
                    Duration::from_millis(50 + self.rng.below(250))
                } else {
                    Duration::from_micros(self.rng.below(5000))
                };
                self.advance_time(by);
            }
        }
        Ok(())
    }

    fn advance_time(&mut self, by: Duration) {
        self.now += by;
        let at = self.now - self.base;
        self.note(format!("time +{by:?} = {at:?}"));
    }

    /// End of a unit of work on `shard`: one batch per peer into the rings,
    /// then one write per dirty connection (as `ShardContext::end_of_work`).
    fn end_of_work(&mut self, shard: usize) {
        let (rings, staged, capacity) = (&mut self.rings, &mut self.staged, self.ring_capacity);
        self.shards[shard].drain_batches(|dst, batch| {
            let (ring, staged) = (
                &mut rings[shard][dst.index()],
                &mut staged[shard][dst.index()],
            );
            if staged.is_empty() && ring.len() < capacity {
                ring.push_back(batch);
            } else {
                staged.push_back(batch);
            }
        });
        let now = self.now;
        self.shards[shard].flush_dirty(now);
        if self.shards[shard].delivery_latency_due() {
            self.shards[shard].delivery_written(now);
        }
    }

    fn take_stall(&mut self, shard: usize) -> Option<Stall> {
        let keys = self.shards[shard].take_stall();
        if keys.is_empty() {
            return None;
        }
        let allowance = self.shards[shard].stall_allowance(&keys);
        Some(Stall {
            keys,
            started: self.now,
            allowance,
        })
    }

    /// Whether a task's stall (a ring consumer's, or a reader's) is over;
    /// charges the time waited when it is.
    fn stall_released(
        &mut self,
        shard: usize,
        ring_src: Option<usize>,
        conn: Option<usize>,
    ) -> bool {
        let slot = match (ring_src, conn) {
            (Some(src), _) => &mut self.ring_stalls[shard][src],
            (None, Some(c)) => &mut self.conns[c].stall,
            (None, None) => return true,
        };
        let Some(stall) = slot else {
            return true;
        };
        let waited = self.now.saturating_duration_since(stall.started);
        if !self.shards[shard].stall_over(&stall.keys) && waited < stall.allowance {
            return false;
        }
        let stall = slot.take().expect("checked above");
        self.shards[shard].charge_stall(&stall.keys, waited);
        true
    }

    fn reader_can_run(&mut self, c: usize) -> bool {
        let conn = &self.conns[c];
        if conn.removed {
            return false;
        }
        let shard = conn.shard;
        if conn.reader_done {
            // Waiting for the writer to end, then the connection goes.
            return matches!(conn.writer, Writer::Ended);
        }
        // A read first waits for what peers already placed in this shard's
        // rings (`catch_up_with_rings`).
        if self.rings.iter().any(|from| !from[shard].is_empty()) {
            return false;
        }
        if !self.stall_released(shard, None, Some(c)) {
            return false;
        }
        let conn = &self.conns[c];
        let broker = &self.shards[shard];
        if broker.is_closing(conn.key) || self.clients[c].gone {
            return true;
        }
        if let Some(target) = &conn.barrier {
            return broker.barrier_reached(target);
        }
        !self.clients[c].to_server.is_empty()
    }

    fn writer_can_run(&self, c: usize) -> bool {
        let conn = &self.conns[c];
        let socket = self.clients[c].socket.0.borrow();
        match &conn.writer {
            Writer::Ended => false,
            Writer::Writing(..) => socket.shut || socket.in_kernel.len() < socket.buffer_limit,
            Writer::Idle => self.shards[conn.shard].writer_should_run(conn.key),
        }
    }

    /// One unit of work of a connection's reader task (`serve_client`).
    fn server_read(&mut self, c: usize) {
        let shard = self.conns[c].shard;
        let key = self.conns[c].key;
        let now = self.now;
        if self.conns[c].reader_done {
            self.note(format!("conn {c} removed"));
            let clock = WallClock {
                now,
                wall_now: std::time::SystemTime::UNIX_EPOCH,
            };
            self.shards[shard].remove_connection(key, clock);
            self.conns[c].removed = true;
            self.end_of_work(shard);
            return;
        }
        if self.shards[shard].is_closing(key) || self.clients[c].gone {
            self.note(format!("conn {c} reader ends"));
            self.shards[shard].begin_close(key, CloseReason::ClientClosed);
            self.conns[c].reader_done = true;
            self.end_of_work(shard);
            return;
        }
        if self.conns[c].barrier.take().is_some() {
            self.note(format!("conn {c} barrier reached: PONG"));
            self.shards[shard].send_pong(key);
        } else {
            let available = self.clients[c].to_server.len() as u64;
            let n = 1 + self.rng.below(available) as usize;
            let chunk: Vec<u8> = self.clients[c].to_server.drain(..n).collect();
            self.note(format!(
                "conn {c} reads {n} bytes: {:?}",
                String::from_utf8_lossy(&chunk)
            ));
            self.conns[c].read_buffer.extend_from_slice(&chunk);
        }
        loop {
            let conn = &mut self.conns[c];
            let outcome =
                self.shards[shard].process_input(key, &mut conn.parser, &conn.read_buffer, now);
            conn.read_buffer.drain(..outcome.consumed);
            match outcome.next {
                Next::NeedMore => break,
                Next::Barrier => {
                    self.end_of_work(shard);
                    let target = self.shards[shard].barrier_target();
                    if self.shards[shard].barrier_reached(&target) {
                        self.note(format!("conn {c} PING: barrier already reached, PONG"));
                        self.shards[shard].send_pong(key);
                        continue;
                    }
                    self.note(format!("conn {c} PING waits for the barrier"));
                    self.conns[c].barrier = Some(target);
                    break;
                }
                Next::Verify => unreachable!("the simulation configures no authentication"),
                Next::Close => {
                    self.note(format!("conn {c} closes"));
                    self.end_of_work(shard);
                    self.shards[shard].begin_close(key, CloseReason::ClientClosed);
                    self.conns[c].reader_done = true;
                    break;
                }
            }
        }
        self.end_of_work(shard);
        self.conns[c].stall = self.take_stall(shard);
    }

    /// One step of a connection's writer task (`write_client`).
    fn writer_step(&mut self, c: usize) {
        let shard = self.conns[c].shard;
        let key = self.conns[c].key;
        let now = self.now;
        let socket = self.clients[c].socket.clone();
        match std::mem::replace(&mut self.conns[c].writer, Writer::Idle) {
            Writer::Ended => self.conns[c].writer = Writer::Ended,
            Writer::Idle => match self.shards[shard].take_for_writer(key, now) {
                None => {
                    self.note(format!("conn {c} writer ends"));
                    self.conns[c].writer = Writer::Ended;
                }
                Some(queue) => {
                    self.note(format!("conn {c} writer takes {} bytes", queue.len()));
                    self.conns[c].writer = Writer::Writing(queue, BlockPool::default());
                }
            },
            Writer::Writing(mut queue, mut blocks) => {
                match socket.send_slices(&queue.send_slices()) {
                    Ok(n) => {
                        queue.consume(&mut blocks, n);
                        self.note(format!("conn {c} writer wrote {n} bytes"));
                        self.shards[shard].chunk_written(key, n, now);
                        if queue.is_empty() {
                            self.shards[shard].writer_done(key, blocks, true, now);
                        } else {
                            self.conns[c].writer = Writer::Writing(queue, blocks);
                        }
                    }
                    Err(_) => {
                        self.note(format!("conn {c} writer fails"));
                        queue.clear(&mut blocks);
                        self.shards[shard].writer_done(key, blocks, false, now);
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    ClientWrite(usize),
    ClientRead(usize),
    ClientClose(usize),
    ServerRead(usize),
    Writer(usize),
    RingApply { src: usize, dst: usize },
    Unstage { src: usize, dst: usize },
    Tick(usize),
    Advance,
}

/// `-ERR`s a random program may earn without any server fault.
fn expected_error(text: &str) -> bool {
    text == "'maximum subscriptions exceeded'"
        || text == "'Stale Connection'"
        || text.starts_with("'Permissions Violation for ")
}

/// Accounts A and B; A exports `a.>`, B imports it as `c.a.>`.
fn sim_accounts() -> AccountTable {
    let mut a = Account::new(AccountId::GLOBAL, "A");
    a.exports.push(Export {
        subject: "a.>".into(),
        kind: ExportKind::Stream,
        accounts: None,
    });
    let mut b = Account::new(AccountId::GLOBAL, "B");
    b.stream_imports.push(StreamImport {
        exporter: AccountId(1),
        subject: "a.>".into(),
        transform: Some(SubjectTransform::prefix("c")),
    });
    let table = AccountTable::build(vec![a, b], Some("$SYS"));
    assert_eq!(table.lookup("A"), Some(AccountId(1)));
    table
}

/// Without accounts: one user, the `no_auth_user`, with the deny-only
/// permissions. With accounts: users `a` (A) and `b` (B), with them too.
fn sim_policy(permissions: Option<&(Vec<String>, Vec<String>)>, accounts: bool) -> AuthPolicy {
    let permissions = permissions.map(|(publish_deny, subscribe_deny)| {
        Arc::new(Permissions {
            publish: Some(Rules {
                allow: None,
                deny: publish_deny.iter().map(|p| p.as_bytes().into()).collect(),
            }),
            subscribe: Some(Rules {
                allow: None,
                deny: subscribe_deny
                    .iter()
                    .map(|p| SubscribeRule {
                        subject: p.as_bytes().into(),
                        queue: None,
                    })
                    .collect(),
            }),
            allow_responses: None,
        })
    });
    let names: &[(&str, AccountId)] = if accounts {
        &[("a", AccountId(1)), ("b", AccountId(2))]
    } else {
        &[("sim", AccountId::GLOBAL)]
    };
    let users: HashMap<String, PasswordUser> = names
        .iter()
        .map(|&(name, account)| {
            let user = PasswordUser {
                account,
                name: name.into(),
                password: Secret::Plain("pw".into()),
                permissions: permissions.clone(),
            };
            (name.to_string(), user)
        })
        .collect();
    AuthPolicy {
        users,
        no_auth_user: (!accounts).then(|| "sim".into()),
        ..AuthPolicy::default()
    }
}
