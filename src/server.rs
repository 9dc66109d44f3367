//! The broker's async glue: starts the shards and runs, on each, the tasks
//! that feed its [`ShardBroker`]: the accept loop (shard 0), one reader and
//! one writer task per client, one consumer task per inbound ring, and a
//! housekeeping timer. Signals are handled on the main thread and reach the
//! shards as [`AdminCommand`]s over crossbeam channels.
//!
//! Unit of work: one socket read (parsed completely) or one inbound ring
//! batch. At its end, [`ShardContext::end_of_work`] flushes every dirty
//! connection once and pushes one batch per peer shard.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;
use shards::mesh::{MeshPorts, RingMesh, RingOutbox, RingProgress, RingReceiver};
use shards::net::{BoundListener, HandOff, ShardListener};
use shards::sync::WaitList;
use shards::task::Lane;
use shards::{task, timer, PoolConfig, ShardPool};

use crate::ids::ShardId;

use crate::account::ActiveConnections;
pub use crate::admin::AdminCommand;
use crate::admin::{admin_channel, AdminInbox, AdminSender};
use crate::config::Options;
use crate::connection::CloseReason;
use crate::ids::{ClientId, ConnKey};
use crate::info::{ServerIdentity, TlsAdvertised};
use crate::limits::ShardLimits;
use crate::mesh::ShardBatch;
use crate::monitor::shard_source;
use crate::monitor::MonitorServer;
use crate::outbound_queue::{BlockPool, BLOCK_SIZE};
use crate::protocol::Parser;
use crate::read_buffer::ReadBuffer;
use crate::route::ClusterSettings;
use crate::server_id::generate_server_id;
use crate::shard::{Accepted, ShardBroker, ShardSetup, WallClock};
use crate::shard_io::{GlommioIo, SocketEndpoint};
use crate::shared::BrokerShared;
use crate::tls::session::{Phase, TlsLink, TlsRead};

mod accept_backoff;
mod account_lookup;
mod tls_tasks;
use tls_tasks::{link_wants_writer, start_tls, write_client_tls};

mod route_io;

mod client_reader;
use client_reader::{ClientReader, ReadEnd};

/// The state machine of one shard, on glommio.
type Broker = ShardBroker<GlommioIo>;
/// What the rings carry.
type Batch = ShardBatch<HandOff>;

/// Ring capacity in batches per ordered pair of shards.
const RING_CAPACITY: usize = 256;
/// Stop reading client sockets when this many batches are staged for one
/// peer, resume below [`STAGING_LOW_WATERMARK`]. A batch holds at most one
/// read buffer's worth of messages, so this bounds staging to a few MiB.
const STAGING_HIGH_WATERMARK: usize = 64;
const STAGING_LOW_WATERMARK: usize = 16;
/// Listen backlog (nats-server uses the kernel's somaxconn cap as well).
const LISTEN_BACKLOG: i32 = 4096;
/// Busy-poll time before a pinned shard parks (see `PoolConfig`).
const PINNED_SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);
/// glommio's preemption timer outside the newcomers' lane, which asks for
/// its own short turns (`task::NEWCOMER_TURN`). glommio's 100 ms: the
/// shard's tasks bound their own turns (`UNITS_PER_TURN`), and a shorter
/// timer would wake an idle shard more often (armed while a task is
/// runnable, it fires later during the sleep: at 1 ms, 0.18 more
/// `io_uring_enter` per message at 10 k msgs/s, `benches/idle-path.sh`).
const PREEMPT_TIMER: Duration = Duration::from_millis(100);
/// How long a stopping shard waits for its closed connections' readers.
const SHUTDOWN_CLOSE_GRACE: Duration = Duration::from_millis(20);

/// How often each shard runs pings, deadlines and admin commands.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_millis(100);
/// A reader yields to the shard's other tasks after this many units of work
/// in a row: a socket that always has data ready would otherwise never
/// yield, because a read that completes at once does not suspend.
const UNITS_PER_TURN: u32 = 8;
/// A read at least this long suggests the client is streaming, so the next
/// read first tries the socket directly; after a shorter one the connection
/// is probably idle until the next message, and glommio's read (which has
/// already armed a readiness poll) is cheaper than a `recv` that would fail.
const STREAMING_READ_LEN: usize = 4096;
/// Longest gap between two lame-duck closes (as nats-server).
const LAME_DUCK_MAX_CLOSE_GAP: Duration = Duration::from_secs(1);

/// A started broker: its address and the handles to stop it.
pub struct RunningServer {
    pub local_addr: std::net::SocketAddr,
    /// The route listener's address, when clustered.
    pub route_addr: Option<std::net::SocketAddr>,
    pub shard_count: usize,
    pool: ShardPool,
    admin: Vec<AdminSender>,
    shared: Arc<BrokerShared>,
    monitor: Option<MonitorServer>,
    claims_changed: Receiver<()>,
}

impl RunningServer {
    /// Fires when an account JWT was stored over the system account: the
    /// caller rebuilds the accounts and [`RunningServer::reload`]s.
    pub fn claims_changed(&self) -> &Receiver<()> {
        &self.claims_changed
    }

    /// The cluster's name, when clustered.
    pub fn cluster_name(&self) -> Option<&str> {
        self.shared.cluster.as_ref().map(|c| c.name.as_str())
    }

    /// The listeners' schemes and addresses, for the ports file.
    pub fn listeners(&self) -> crate::ports_file::Listeners {
        let options = &self.shared.options;
        let client = if tls_advertised(options).required {
            "tls"
        } else {
            "nats"
        };
        let monitoring = if options.http_port.is_some() {
            "http"
        } else {
            "https"
        };
        let cluster_tls = options.cluster.as_ref().is_some_and(|c| c.tls.is_some());
        crate::ports_file::Listeners {
            client: Some((client, self.local_addr)),
            monitoring: self.monitor.as_ref().map(|m| (monitoring, m.local_addr())),
            cluster: self
                .route_addr
                .map(|addr| (if cluster_tls { "tls" } else { "nats" }, addr)),
        }
    }

    /// Whether the cluster name was generated (none configured).
    pub fn cluster_name_generated(&self) -> bool {
        self.shared
            .options
            .cluster
            .as_ref()
            .is_some_and(|c| c.name.is_none())
    }

    pub fn send_all(&self, command: AdminCommand) {
        for tx in &self.admin {
            let _ = tx.send(command.clone());
        }
    }

    /// Stops the broker gracefully and waits for every shard to end.
    pub fn shutdown(mut self) {
        if let Some(monitor) = self.monitor.take() {
            monitor.stop();
        }
        self.send_all(AdminCommand::Shutdown);
        self.pool.join();
    }

    /// Applies reloadable settings: every shard takes its new copy (and
    /// re-checks its connections) as its admin doorbell rings. TLS
    /// certificates and keys are read again first; if that fails nothing
    /// changes. New handshakes use the new TLS settings; established
    /// connections keep theirs.
    pub fn reload(&self, options: &Options) -> Result<(), String> {
        self.apply(options, true)
    }

    /// Like [`RunningServer::reload`], for accounts a resolver updated: no
    /// configuration file was loaded, so `config_load_time` stays.
    pub fn update_accounts(&self, options: &Options) -> Result<(), String> {
        self.apply(options, false)
    }

    fn apply(&self, options: &Options, loaded_from_file: bool) -> Result<(), String> {
        // As nats-server: new clients' INFO takes a reloaded
        // `client_advertise`; the URL gossiped to the peers stays. Checked
        // first, so that a bad value changes nothing.
        let (host, port) = client_host_port(options, self.local_addr.port()).map_err(|e| {
            format!(
                "invalid ClientAdvertise value of {}, err={e}",
                options.client_advertise.as_deref().unwrap_or_default()
            )
        })?;
        match (&self.shared.tls, &options.tls) {
            (None, None) => {}
            (Some(acceptor), Some(_)) => acceptor.reload(options)?,
            (None, Some(_)) | (Some(_), None) => {
                return Err(
                    "config reload not supported for tls: it cannot be turned on or off \
                     without a restart"
                        .into(),
                )
            }
        }
        let mut identity = (*self.shared.identity).clone();
        identity.auth_required = options.auth.auth_required();
        identity.tls = tls_advertised(options);
        identity.host = host;
        identity.port = port;
        // As nats-server: new clients' INFO gives the reloaded limit.
        identity.max_payload = options.max_payload;
        let identity = Arc::new(identity);
        // The cluster as started, with the reloaded route permissions
        // (the only cluster option a reload may change).
        let cluster = self.shared.cluster.as_ref().map(|started| {
            let mut settings = (**started).clone();
            settings.permissions = options
                .cluster
                .as_ref()
                .and_then(|c| c.permissions.clone())
                .map(percore_core::route_permissions::RoutePermissions::new);
            Arc::new(settings)
        });
        let limits = shard_limits(options, &self.shared.account_connections, cluster);
        if loaded_from_file {
            self.shared.set_loaded(options, identity.clone());
        }
        self.send_all(AdminCommand::Reload(limits, identity));
        Ok(())
    }

    /// Open client connections, all shards.
    pub fn live_connections(&self) -> usize {
        self.shared.live_connections.load(Ordering::Relaxed)
    }

    pub fn all_shards_ended(&self) -> bool {
        self.pool.all_finished()
    }
}

/// Binds the listener, starts the shards, and returns once clients can connect.
pub fn start(options: Options) -> Result<RunningServer, String> {
    let shard_count = if options.shards == 0 {
        default_shard_count(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        )
    } else {
        options.shards
    };
    if shard_count > ShardId::MAX_COUNT {
        return Err(format!(
            "--shards {shard_count}: at most {} shards",
            ShardId::MAX_COUNT
        ));
    }
    // Certificate files are read before the port is taken: a bad one stops
    // the start with its path in the message.
    let tls = crate::tls::TlsAcceptor::new(&options)?;
    if let Some(operator) = &options.operator {
        crate::config::operator::store_preloads(operator)?;
    }
    let route_tls = crate::tls::RouteTls::new(&options)?;
    let listener =
        BoundListener::bind(&options.host, options.port, LISTEN_BACKLOG).map_err(|e| {
            format!(
                "Error listening on port: {}:{}, \"{}\"",
                options.host, options.port, e
            )
        })?;
    let local_addr = listener.local_addr();
    // Bound before any shard starts, so a busy monitor port fails start-up
    // cleanly, as a busy client port does.
    let monitor_listener = shard_source::bind_monitor(&options)?;
    let route_listener = match options.cluster.as_ref().filter(|c| c.enabled()) {
        Some(cluster) => Some(
            BoundListener::bind(&cluster.host, cluster.bind_port(), LISTEN_BACKLOG)
                .map_err(|e| format!("Error listening on router port: {} - {}", cluster.port, e))?,
        ),
        None => None,
    };
    let route_addr = route_listener.as_ref().map(BoundListener::local_addr);
    // Checked now that the port is known, as nats-server (its fatal text).
    let (client_host, client_port) =
        client_host_port(&options, local_addr.port()).map_err(|e| {
            format!(
                "Error setting server INFO with ClientAdvertise value of {}, err={e}",
                options.client_advertise.as_deref().unwrap_or_default()
            )
        })?;
    let server_id = generate_server_id();
    let cluster = route_addr
        .map(|addr| cluster_settings(&options, addr, local_addr, &server_id).map(Arc::new))
        .transpose()?;
    let identity = ServerIdentity {
        server_name: options
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone()),
        server_id,
        host: client_host,
        port: client_port,
        headers: !options.no_header_support,
        auth_required: options.auth.auth_required(),
        max_payload: options.max_payload,
        tls: tls_advertised(&options),
    };
    let (claims_changed_tx, claims_changed) = crossbeam_channel::unbounded();
    let identity = Arc::new(identity);
    let started = SystemTime::now();
    let shared = Arc::new(BrokerShared {
        claims_changed: claims_changed_tx,
        options: options.clone(),
        identity: identity.clone(),
        shard_count,
        live_connections: AtomicUsize::new(0),
        account_connections: Arc::default(),
        total_connections: Default::default(),
        started,
        loaded: std::sync::RwLock::new(crate::shared::LoadedConfig {
            options: Arc::new(options.clone()),
            identity,
            at: started,
        }),
        tls,
        route_tls,
        cluster,
        route_addr,
    });

    let ports: Vec<Option<MeshPorts<Batch>>> = RingMesh::build(shard_count, RING_CAPACITY)
        .into_iter()
        .map(Some)
        .collect();
    let ports = Mutex::new(ports);
    let listener = Mutex::new(Some(listener));
    let route_listener = Mutex::new(route_listener);
    let (admin_tx, admin_rx): (Vec<_>, Vec<_>) = (0..shard_count).map(|_| admin_channel()).unzip();
    let admin_rx = Mutex::new(admin_rx.into_iter().map(Some).collect::<Vec<_>>());

    let pool_config = PoolConfig {
        shard_count,
        pin: options.pin,
        // A pinned shard owns its CPU: busy-polling a little before parking
        // saves the io_uring sleep/wake (tens of µs) on every quiet gap.
        // glommio ignores it for unpinned shards anyway.
        spin_before_park: options.pin.then_some(PINNED_SPIN_BEFORE_PARK),
        preempt_timer: PREEMPT_TIMER,
    };
    let shared_for_main = shared.clone();
    // Every shard answers the system account's server services by asking
    // all shards, as the HTTP monitor does.
    let admin_for_services = admin_tx.clone();
    let pool = ShardPool::start(&pool_config, move |shard| {
        let ports = lock(&ports)[shard].take();
        let (listener, route_listener) = if shard == 0 {
            (lock(&listener).take(), lock(&route_listener).take())
        } else {
            (None, None)
        };
        let admin = lock(&admin_rx)[shard].take();
        run_shard(
            ShardId::new(shard),
            shared.clone(),
            ports,
            listener,
            route_listener,
            admin,
            crate::monitor::shard_source::system_api(&shared, &admin_for_services),
        )
    })
    .map_err(|e| e.to_string())?;
    let monitor = match monitor_listener
        .map(|listener| shard_source::start_monitor(listener, &shared_for_main, &admin_tx))
        .transpose()
    {
        Ok(monitor) => monitor,
        Err(e) => {
            for tx in &admin_tx {
                let _ = tx.send(AdminCommand::Shutdown);
            }
            pool.join();
            return Err(e);
        }
    };
    Ok(RunningServer {
        local_addr,
        route_addr,
        shard_count,
        pool,
        admin: admin_tx,
        shared: shared_for_main,
        monitor,
        claims_changed,
    })
}

/// The client INFO's `host` and `port`: `client_advertise`, or the
/// listener's; `port` is the listener's actual port (the default when the
/// advertised address has none).
fn client_host_port(options: &Options, port: u16) -> Result<(String, u16), String> {
    match &options.client_advertise {
        Some(advertise) => percore_core::go_host_port::parse_host_port(advertise, port),
        None => Ok((options.host.clone(), port)),
    }
}

/// INFO's TLS flags for these options.
fn tls_advertised(options: &Options) -> TlsAdvertised {
    match &options.tls {
        None => TlsAdvertised::default(),
        Some(tls) => TlsAdvertised {
            required: !options.allow_non_tls,
            verify: tls.verify,
            available: options.allow_non_tls,
        },
    }
}

/// One shard per CPU, except on hosts with two CPUs or fewer, where one
/// shard leaves a CPU for the kernel's network work and the clients: on a
/// 2-vCPU VM two shards measured 1.4x nats-server's p50 latency at 10-50k
/// msgs/s and 0.57x its request rate, one shard 0.5-0.9x and 1.13x
/// (BENCHMARKS.md), because every cross-shard hop wakes a parked executor.
pub fn default_shard_count(cpus: usize) -> usize {
    if cpus <= 2 {
        1
    } else {
        cpus
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Everything the tasks of one shard share.
struct ShardContext {
    broker: RefCell<Broker>,
    /// The broker's wait lists (its [`GlommioIo`] signals them).
    barrier: Rc<WaitList>,
    drained: Rc<WaitList>,
    outboxes: Vec<Option<RingOutbox<Batch>>>,
    shared: Arc<BrokerShared>,
    /// Notified when staged ring backlog shrinks.
    pressure: Rc<WaitList>,
    /// How far each inbound ring has been consumed; `ring_applied` is
    /// notified after every inbound batch (see `catch_up_with_rings`).
    inbound: Vec<Rc<RingProgress>>,
    ring_applied: WaitList,
    stopping: Cell<bool>,
    stop: WaitList,
    /// Woken whenever a connection leaves this shard (its reader forgot it).
    departures: WaitList,
    /// Shard 0's accept loop; dropped (closing the listener) in lame duck.
    accept_task: RefCell<Option<task::Task<()>>>,
    /// The cluster shard's route accept loop; dropped at shutdown so the
    /// route port closes with the process (see `ShardListener`'s `Drop`).
    route_accept_task: RefCell<Option<task::Task<()>>>,
    /// The next route id (`/routez` `rid`), on the cluster shard.
    next_route_id: Cell<u64>,
    /// The monitoring endpoints for the system account's services.
    system_api: Arc<crate::monitor::system_api::SystemApi>,
}

impl ShardContext {
    /// End of a unit of work: one write per dirty connection, one ring push
    /// per peer with work.
    ///
    /// Ring pushes go first: a client that sees the answer to its PING (or
    /// anything else this unit wrote) can then rely on the other shards
    /// finding this unit's interest changes in their rings (see
    /// `catch_up_with_rings`).
    fn end_of_work(&self) {
        let mut broker = self.broker.borrow_mut();
        broker.drain_batches(|dst, batch| {
            if let Some(outbox) = &self.outboxes[dst.index()] {
                outbox.push(batch);
            }
        });
        broker.flush_dirty(Instant::now());
        // Only a unit that delivered something reads the clock again: the
        // end of its writes closes its latency sample.
        if broker.delivery_latency_due() {
            broker.delivery_written(Instant::now());
        }
    }

    /// Before acting on bytes a client sent, apply every batch that peers
    /// have already placed in this shard's rings. A SUB processed on
    /// another shard before this read is then in effect for the PUBs in it,
    /// as with nats-server's one subscription list. (nats.py sends its
    /// flush PING ahead of a pending SUB, so its PONG alone does not order
    /// the SUB before another connection's publish.) Waits only for batches
    /// already in the rings, which the ring consumers apply without waiting
    /// for ring space. A batch still staged behind a full ring is not in it
    /// yet, so while a ring is backed up this ordering is only as good as
    /// the PING/PONG barrier (which still holds).
    async fn catch_up_with_rings(&self) {
        for progress in &self.inbound {
            let placed = progress.placed();
            if progress.taken() < placed {
                self.ring_applied
                    .wait_until(|| progress.taken() >= placed)
                    .await;
            }
        }
    }

    /// Closes one unit of work (a socket read or a ring batch): flush, flow
    /// control, and a yield to the shard's other tasks every
    /// [`UNITS_PER_TURN`] units.
    async fn finish_unit(&self, units_this_turn: &mut u32) {
        self.end_of_work();
        self.stall_for_slow_readers().await;
        *units_this_turn += 1;
        if *units_this_turn >= UNITS_PER_TURN {
            *units_this_turn = 0;
            task::yield_now().await;
        } else {
            task::yield_if_needed().await;
        }
    }

    /// Flow control after a unit of work: if it pushed subscribers over the
    /// stall threshold, wait (bounded by their stall budget) for them to drain.
    async fn stall_for_slow_readers(&self) {
        let keys = self.broker.borrow_mut().take_stall();
        if keys.is_empty() {
            return;
        }
        let allowance = self.broker.borrow().stall_allowance(&keys);
        let started = Instant::now();
        futures_lite::future::or(
            self.drained
                .wait_until(|| self.broker.borrow().stall_over(&keys)),
            timer::sleep(allowance),
        )
        .await;
        self.broker
            .borrow_mut()
            .charge_stall(&keys, started.elapsed());
    }

    fn staged_max(&self) -> usize {
        self.outboxes
            .iter()
            .flatten()
            .map(|o| o.staged())
            .max()
            .unwrap_or(0)
    }

    /// Backpressure: while any ring to a peer is backed up, readers wait here
    /// (TCP then pushes back on publishers). Ring consumers never wait for
    /// ring space, only (bounded by a stall budget) for a slow subscriber of
    /// their own shard, so the backlog always drains.
    async fn wait_for_ring_space(&self) {
        if self.staged_max() >= STAGING_HIGH_WATERMARK {
            self.pressure
                .wait_until(|| self.staged_max() <= STAGING_LOW_WATERMARK)
                .await;
        }
    }
}

async fn run_shard(
    id: ShardId,
    shared: Arc<BrokerShared>,
    ports: Option<MeshPorts<Batch>>,
    listener: Option<BoundListener>,
    route_listener: Option<BoundListener>,
    admin: Option<AdminInbox>,
    system_api: Arc<crate::monitor::system_api::SystemApi>,
) {
    task::open_newcomer_lane();
    let pressure = Rc::new(WaitList::new());
    let Some(ports) = ports else {
        crate::error!("shard {id} started without its mesh ports");
        return;
    };
    let mesh = ports.connect(pressure.clone()).await;
    let inbound = mesh
        .inbound
        .iter()
        .flatten()
        .map(RingReceiver::progress)
        .collect();
    let barrier = Rc::new(WaitList::new());
    let drained = Rc::new(WaitList::new());
    let setup = ShardSetup {
        id,
        shard_count: shared.shard_count,
        identity: shared.identity.clone(),
        limits: shard_limits(
            &shared.options,
            &shared.account_connections,
            shared.cluster.clone(),
        ),
        seed: shard_seed(id),
        io: GlommioIo {
            barrier: barrier.clone(),
            drained: drained.clone(),
        },
    };
    let ctx = Rc::new(ShardContext {
        broker: RefCell::new(ShardBroker::new(setup, Instant::now())),
        barrier,
        drained,
        outboxes: mesh.outboxes,
        shared,
        pressure,
        inbound,
        ring_applied: WaitList::new(),
        stopping: Cell::new(false),
        stop: WaitList::new(),
        departures: WaitList::new(),
        accept_task: RefCell::new(None),
        route_accept_task: RefCell::new(None),
        next_route_id: Cell::new(1),
        system_api,
    });
    for (src, receiver) in mesh.inbound.into_iter().enumerate() {
        if let Some(receiver) = receiver {
            task::spawn(consume_ring(ctx.clone(), ShardId::new(src), receiver)).detach();
        }
    }
    if let Some(listener) = listener {
        let accept = task::spawn_in(
            Lane::Newcomers,
            accept_loop(ctx.clone(), listener.into_shard_listener()),
        );
        *ctx.accept_task.borrow_mut() = Some(accept);
    }
    if let Some(AdminInbox { commands, bell }) = admin {
        let commands = Rc::new(commands);
        if let Some(bell) = bell {
            task::spawn(answer_the_bell(ctx.clone(), commands.clone(), bell)).detach();
        }
        task::spawn(housekeeping(ctx.clone(), commands)).detach();
    }
    if let Some(listener) = route_listener {
        let accept = task::spawn(route_io::route_accept_loop(
            ctx.clone(),
            listener.into_shard_listener(),
        ));
        *ctx.route_accept_task.borrow_mut() = Some(accept);
        route_io::solicit_configured_routes(&ctx);
    }
    ctx.stop.wait_until(|| ctx.stopping.get()).await;
    // Closing sockets wakes their readers; let them finish (log, forget
    // their connection), for a short while at most. The shard ends as soon
    // as they have: nats-server's process is gone within a millisecond or
    // two of closing its clients, and a client that reconnects elsewhere
    // (nats.py's cluster tests) must not find this one still running.
    ctx.broker
        .borrow_mut()
        .close_all(CloseReason::ServerShutdown, Instant::now());
    let all_gone = ctx
        .departures
        .wait_until(|| ctx.broker.borrow().connection_count() == 0);
    futures_lite::future::or(all_gone, timer::sleep(SHUTDOWN_CLOSE_GRACE)).await;
}

async fn consume_ring(ctx: Rc<ShardContext>, src: ShardId, receiver: RingReceiver<Batch>) {
    let mut units_this_turn = 0;
    while let Some(batch) = receiver.recv().await {
        let adopted = ctx
            .broker
            .borrow_mut()
            .apply_batch(src, batch, Instant::now());
        ctx.ring_applied.notify_all();
        for (socket, client_id) in adopted {
            task::spawn_in(
                Lane::Newcomers,
                serve_client(ctx.clone(), socket, client_id),
            )
            .detach();
        }
        ctx.finish_unit(&mut units_this_turn).await;
    }
}

async fn accept_loop(ctx: Rc<ShardContext>, listener: ShardListener) {
    let shard_count = ctx.shared.shard_count;
    let mut next_client_id: u64 = 1;
    let mut backoff = accept_backoff::AcceptBackoff::default();
    loop {
        let socket = match listener.accept().await {
            Ok(socket) => {
                backoff.succeeded();
                socket
            }
            Err(e) => {
                // Typically EMFILE: the connection waits in the backlog
                // while we back off, instead of spinning on the error.
                let (line, delay) = backoff.failed("Client", &e);
                crate::error!("{line}");
                timer::sleep(delay).await;
                continue;
            }
        };
        // glommio's accept first tries the syscall directly, so while the
        // backlog holds connections this loop never suspends: a burst of
        // 2 000 connects would be taken in one go and starve every socket
        // already served. Giving way at the preemption timer bounds that.
        task::yield_if_needed().await;
        let client_id = ClientId(next_client_id);
        next_client_id += 1;
        ctx.shared.total_connections.fetch_add(1, Ordering::Relaxed);
        let live = ctx.shared.live_connections.fetch_add(1, Ordering::Relaxed);
        if live >= ctx.shared.options.max_connections {
            ctx.shared.live_connections.fetch_sub(1, Ordering::Relaxed);
            reject_client(&ctx, socket, client_id);
            continue;
        }
        let target = ShardId::new(((client_id.0 - 1) % shard_count as u64) as usize);
        if target == ctx.broker.borrow().shard_id() {
            task::spawn(serve_client(ctx.clone(), socket, client_id)).detach();
        } else {
            ctx.broker
                .borrow_mut()
                .send_adopt(target, socket, client_id);
            ctx.end_of_work();
        }
    }
}

fn reject_client(ctx: &ShardContext, socket: HandOff, client_id: ClientId) {
    match socket.adopt() {
        Ok(conn) => {
            let ip = conn
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            crate::error!("{ip} - cid:{client_id} - maximum connections exceeded");
            // INFO and the -ERR go out in plaintext, before any handshake,
            // as nats-server sends them.
            let endpoint = SocketEndpoint {
                fd: conn.raw_fd(),
                writer_wake: Rc::new(WaitList::new()),
                tls: None,
            };
            ctx.broker
                .borrow()
                .reject_connection(client_id, &endpoint, &ip);
        }
        Err(e) => crate::error!("cannot adopt rejected connection: {e}"),
    }
}

/// The reader side of one client: read, parse, route, flush; repeat. On a
/// TLS port it first runs the handshake, then reads through the
/// connection's record layer (`crate::tls::session`).
async fn serve_client(ctx: Rc<ShardContext>, socket: HandOff, client_id: ClientId) {
    let conn = match socket.adopt() {
        Ok(conn) => Rc::new(conn),
        Err(e) => {
            crate::error!("cannot adopt client connection cid:{client_id}: {e}");
            ctx.shared.live_connections.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    let peer = conn
        .peer_addr()
        .map(|a| (a.ip().to_string(), a.port()))
        .unwrap_or_default();
    let accepting = ctx.shared.tls.as_ref().map(|tls| tls.current());
    let link = match accepting.as_ref().map(|a| a.link()).transpose() {
        Ok(link) => link.map(Rc::new),
        Err(e) => {
            crate::error!("cannot start TLS for cid:{client_id}: {e}");
            ctx.shared.live_connections.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    let writer_wake = Rc::new(WaitList::new());
    let (ip, port) = peer;
    // Log lines name the client as nats-server's do: `ip:port - cid:N`.
    let log_peer = percore_core::connection::PeerAddr { ip: &ip, port }.to_string();
    let nonce = if ctx.broker.borrow().limits().auth.wants_nonce() {
        crate::auth_checks::new_nonce()
    } else {
        None
    };
    let accepted = Accepted {
        nonce,
        client_id,
        endpoint: SocketEndpoint {
            fd: conn.raw_fd(),
            writer_wake: writer_wake.clone(),
            tls: link.clone(),
        },
        ip,
        port,
    };
    let key = ctx
        .broker
        .borrow_mut()
        .register_connection(accepted, Instant::now());
    if let Some(accepting) = &accepting {
        // The auth timer starts after the handshake; until then only the
        // handshake's own timeout (twice, with allow_non_tls: once to see
        // the first byte, once for the handshake) can close the connection.
        let handshake_time = accepting.timeout * if accepting.allow_non_tls { 2 } else { 1 };
        ctx.broker
            .borrow_mut()
            .start_auth_timer_at(key, Instant::now() + handshake_time);
    }
    ctx.end_of_work();
    let writer = spawn_writer(
        &ctx,
        key,
        &conn,
        &writer_wake,
        link.as_ref(),
        Lane::Newcomers,
    );

    let parser = {
        let broker = ctx.broker.borrow();
        let limits = broker.limits();
        Parser::new(limits.max_control_line, limits.max_payload)
    };
    let mut buffer = ReadBuffer::new();
    let mut close_reason = CloseReason::ClientClosed;
    if let (Some(link), Some(accepting)) = (&link, &accepting) {
        let label = (log_peer.as_str(), client_id);
        // Boxed: the handshake's future is over 1.5 KB and only TLS
        // connections run it; inline, every client's task carried its space
        // for as long as it lived (serve_client's future: 2 720 bytes with
        // both boxes out, 560 with them in).
        if let Err(reason) = Box::pin(start_tls(
            &ctx,
            key,
            label,
            &conn,
            link,
            accepting,
            &mut buffer,
        ))
        .await
        {
            close_reason = reason;
        }
    }
    // Plaintext that arrived with the end of the handshake (or the bytes
    // that told an allow_non_tls client's choice) is parsed before reading.
    let carried_over = !buffer.data().is_empty();
    let mut reader = ClientReader {
        key,
        client_id,
        log_peer,
        conn,
        // The record layer to read through, once TLS is up (not when an
        // allow_non_tls client chose plaintext).
        tls: link.clone().filter(|l| l.phase() == Phase::Established),
        link,
        writer_wake,
        parser,
        buffer,
        close_reason,
        carried_over,
        streaming: true,
        units_this_turn: 0,
        writer,
    };
    // Until its CONNECT is accepted, the connection is served in the
    // newcomers' lane (this task's); then its reading goes on in a task of
    // the established lane (see `task::Lane`).
    if reader.serve(&ctx, Lane::Newcomers).await == ReadEnd::Established {
        reader.move_writer_to(&ctx, Lane::Established);
        task::spawn_in(Lane::Established, async move {
            if reader.serve(&ctx, Lane::Established).await == ReadEnd::Closed {
                reader.close(&ctx).await;
            }
        })
        .detach();
        return;
    }
    reader.close(&ctx).await;
}

/// This shard's identity as system messages name it.
fn responder(ctx: &ShardContext) -> crate::system_account::envelope::Responder {
    crate::system_account::envelope::Responder {
        name: ctx.shared.identity.server_name.clone(),
        host: ctx.shared.identity.host.clone(),
        id: ctx.shared.identity.server_id.clone(),
    }
}

/// Publishes the account connection events this shard collected (only
/// those someone listens to are collected); the caller ends the unit.
fn publish_system_events(ctx: &ShardContext) {
    if !ctx.broker.borrow().has_system_events() {
        return;
    }
    let clock = wall_clock();
    let events = ctx.broker.borrow_mut().take_system_events(&clock);
    let me = responder(ctx);
    for event in events {
        let payload = crate::system_account::events::render(&event, &me, clock.wall_now);
        ctx.broker
            .borrow_mut()
            .publish_system(&event.subject, payload.as_bytes());
    }
}

/// Answers, off this task, the system requests the last unit of work
/// collected (a client's, or one a route brought from another server).
fn spawn_system_answers(ctx: &Rc<ShardContext>) {
    let requests = ctx.broker.borrow_mut().take_system_requests();
    if !requests.is_empty() {
        task::spawn(answer_system_requests(ctx.clone(), requests)).detach();
    }
}

/// Requests published on the system account: the server's
/// services (rendered from a cross-shard snapshot, see
/// [`crate::system_account::services`]) and account JWT updates (checked and stored),
/// both on the blocking thread, answered from this shard; a stored JWT has
/// the main thread give every shard the new accounts.
async fn answer_system_requests(
    ctx: Rc<ShardContext>,
    requests: Vec<percore_core::shard::SystemRequest>,
) {
    let me = responder(&ctx);
    for request in requests {
        if percore_core::shard::system_requests::is_claims_request(&request.subject) {
            answer_claims_request(&ctx, request, &me).await;
            continue;
        }
        let (api, me) = (ctx.system_api.clone(), me.clone());
        let facts = crate::system_account::services::FilterFacts {
            cluster: ctx
                .shared
                .cluster
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        let answer = task::spawn_blocking(move || {
            crate::system_account::services::handle(&request, &api, &me, &facts)
        })
        .await;
        if let Some(answer) = answer {
            ctx.broker
                .borrow_mut()
                .publish_system(&answer.subject, answer.payload.as_bytes());
            ctx.end_of_work();
        }
    }
}

async fn answer_claims_request(
    ctx: &ShardContext,
    request: percore_core::shard::SystemRequest,
    me: &crate::system_account::envelope::Responder,
) {
    let Some(operator) = ctx.shared.options.operator.clone() else {
        return;
    };
    let reply = request.reply.clone();
    let me = me.clone();
    let handled = task::spawn_blocking(move || {
        crate::resolver::claims_update::handle(&request, &operator, &me)
    })
    .await;
    match &handled.log {
        Some((true, text)) => crate::error!("{text}"),
        Some((false, text)) => crate::debug!("{text}"),
        None => {}
    }
    if let (Some(reply), Some(answer)) = (reply, &handled.answer) {
        ctx.broker
            .borrow_mut()
            .publish_system(&reply, answer.as_bytes());
        ctx.end_of_work();
    }
    if handled.stored {
        let _ = ctx.shared.claims_changed.send(());
    }
}

/// One read from a plaintext socket into `buffer`: the bytes read (0: EOF).
async fn read_plain(
    conn: &shards::net::Connection,
    buffer: &mut ReadBuffer,
    streaming: bool,
) -> std::io::Result<usize> {
    let attempt = if streaming {
        conn.try_recv(buffer.spare_mut())
    } else {
        Ok(None)
    };
    let n = match attempt {
        Ok(Some(n)) => n,
        Ok(None) => conn.read(buffer.spare_mut()).await?,
        Err(e) => return Err(e),
    };
    buffer.filled_by(n);
    Ok(n)
}

/// One read of a client's or a route's socket into `buffer`, through its
/// TLS record layer when it has one: the plaintext bytes added (0 at the
/// end of the stream), and whether the peer closed its side with this read
/// (TLS close_notify). `log_label` names the connection in the debug line
/// for a TLS read error.
async fn read_input(
    ctx: &ShardContext,
    key: ConnKey,
    conn: &shards::net::Connection,
    tls: Option<&TlsLink>,
    buffer: &mut ReadBuffer,
    streaming: bool,
    log_label: &std::fmt::Arguments<'_>,
) -> (std::io::Result<usize>, bool) {
    let Some(link) = tls else {
        return (read_plain(conn, buffer, streaming).await, false);
    };
    match link.read_into(conn, buffer, streaming).await {
        Ok(TlsRead::Eof) => (Ok(0), false),
        Ok(TlsRead::Data {
            ciphertext,
            peer_closed,
        }) => {
            // Alerts and key updates the read produced.
            if !link.write_now(conn.raw_fd()).unwrap_or(true) {
                link_wants_writer(ctx, key);
            }
            (Ok(ciphertext), peer_closed)
        }
        Ok(TlsRead::Error(e)) => {
            crate::debug!("{log_label} - TLS read error: {e}");
            (Err(std::io::ErrorKind::InvalidData.into()), false)
        }
        Err(e) => (Err(e), false),
    }
}

/// The writer side of one client: writes what a direct send could not, in
/// order, waiting for the socket to drain.
/// Starts the writer task of a client connection in `lane`.
fn spawn_writer(
    ctx: &Rc<ShardContext>,
    key: ConnKey,
    conn: &Rc<shards::net::Connection>,
    wake: &Rc<WaitList>,
    link: Option<&Rc<TlsLink>>,
    lane: Lane,
) -> task::Task<()> {
    match link {
        None => task::spawn_in(
            lane,
            write_client(ctx.clone(), key, conn.clone(), wake.clone()),
        ),
        Some(link) => task::spawn_in(
            lane,
            write_client_tls(ctx.clone(), key, conn.clone(), wake.clone(), link.clone()),
        ),
    }
}

async fn write_client(
    ctx: Rc<ShardContext>,
    key: ConnKey,
    conn: Rc<shards::net::Connection>,
    wake: Rc<WaitList>,
) {
    loop {
        wake.wait_until(|| ctx.broker.borrow().writer_should_run(key))
            .await;
        // Boxed: a writer runs only when a direct send left a backlog, and
        // then for the whole backlog; inline, the write's state (~460
        // bytes) sat in every connection's writer task while it waited
        // (write_client's future: 600 bytes, 136 now). One allocation per
        // backlog, next to at least one system call.
        if !Box::pin(write_backlog_plain(&ctx, key, &conn)).await {
            return;
        }
    }
}

/// Takes the connection's backlog and writes it to a plaintext socket;
/// false when the writer should end.
async fn write_backlog_plain(
    ctx: &ShardContext,
    key: ConnKey,
    conn: &shards::net::Connection,
) -> bool {
    let Some(mut queue) = ctx.broker.borrow_mut().take_for_writer(key, Instant::now()) else {
        return false;
    };
    let mut blocks = BlockPool::default();
    let mut ok = true;
    while !queue.is_empty() {
        let sent = match conn.try_send_vectored(&queue.send_slices()) {
            Ok(0) => {
                // The socket is full: wait for it with glommio, handing it
                // one block at most so progress shows block by block.
                let front = queue.front();
                let piece = &front[..front.len().min(BLOCK_SIZE)];
                conn.write_all(piece).await.map(|()| piece.len())
            }
            other => other,
        };
        let Ok(n) = sent else {
            ok = false;
            break;
        };
        queue.consume(&mut blocks, n);
        ctx.broker
            .borrow_mut()
            .chunk_written(key, n, Instant::now());
    }
    // Empty unless the write failed; either way its blocks are reusable.
    queue.clear(&mut blocks);
    ctx.broker
        .borrow_mut()
        .writer_done(key, blocks, ok, Instant::now());
    ok
}

/// Pings, deadlines and expiries every [`HOUSEKEEPING_PERIOD`], and any
/// admin command the doorbell did not bring in already (there is none
/// without a doorbell).
async fn housekeeping(ctx: Rc<ShardContext>, admin: Rc<Receiver<AdminCommand>>) {
    loop {
        timer::sleep(HOUSEKEEPING_PERIOD).await;
        if ctx.stopping.get() || !carry_out_admin_commands(&ctx, &admin) {
            return;
        }
        ctx.broker.borrow_mut().tick(Instant::now());
        ctx.end_of_work();
    }
}

/// Carries out admin commands as soon as their sender rings.
async fn answer_the_bell(
    ctx: Rc<ShardContext>,
    admin: Rc<Receiver<AdminCommand>>,
    bell: shards::doorbell::Bell,
) {
    let mut bell = bell.into_shard();
    while bell.rung().await {
        if ctx.stopping.get() || !carry_out_admin_commands(&ctx, &admin) {
            return;
        }
    }
}

/// Carries out the queued admin commands; false once the shard is to stop.
fn carry_out_admin_commands(ctx: &Rc<ShardContext>, admin: &Receiver<AdminCommand>) -> bool {
    while let Ok(command) = admin.try_recv() {
        match command {
            AdminCommand::Shutdown => {
                ctx.accept_task.borrow_mut().take();
                ctx.route_accept_task.borrow_mut().take();
                ctx.stopping.set(true);
                ctx.stop.notify_all();
                return false;
            }
            AdminCommand::Snapshot(request, reply) => {
                let mut snapshot = ctx.broker.borrow().snapshot(request, wall_clock());
                for outbox in ctx.outboxes.iter().flatten() {
                    snapshot.ring_stalls += outbox.stalls();
                    snapshot.ring_dropped += outbox.dropped();
                    snapshot.ring_batches_sent += outbox.placed();
                }
                snapshot.ring_batches_received =
                    ctx.inbound.iter().map(|progress| progress.taken()).sum();
                let parking = task::park_stats();
                snapshot.parks = parking.parks;
                snapshot.wakeups = parking.wakeups;
                let _ = reply.send(snapshot);
            }
            AdminCommand::Reload(limits, identity) => {
                let mut broker = ctx.broker.borrow_mut();
                broker.replace_identity(identity);
                broker.replace_limits(limits);
                drop(broker);
                ctx.end_of_work();
            }
            AdminCommand::LameDuck => {
                if !ctx.broker.borrow().in_lame_duck() {
                    // Dropping the accept task closes the listener: new
                    // clients are refused at once.
                    ctx.accept_task.borrow_mut().take();
                    let keys = ctx.broker.borrow_mut().enter_lame_duck();
                    ctx.end_of_work();
                    task::spawn(close_gradually(ctx.clone(), keys)).detach();
                }
            }
        }
    }
    true
}

/// Lame duck: after the grace period, close clients one by one, spread over
/// the rest of the lame-duck duration.
async fn close_gradually(ctx: Rc<ShardContext>, keys: Vec<ConnKey>) {
    let options = &ctx.shared.options;
    timer::sleep(options.lame_duck_grace_period).await;
    let shard = ctx.broker.borrow().shard_id();
    if shard.index() == 0 {
        crate::info!("Closing existing clients");
    }
    // One schedule for the whole server, as nats-server closes clients one
    // at a time: with N shards, this shard's j-th close is slot j*N + shard,
    // and slots are `gap` apart, so shards take turns instead of closing
    // their clients at the same moments.
    let window = options
        .lame_duck_duration
        .saturating_sub(options.lame_duck_grace_period);
    let total = ctx.shared.live_connections.load(Ordering::Relaxed).max(1);
    let gap = (window / total as u32).min(LAME_DUCK_MAX_CLOSE_GAP);
    let shard_count = ctx.shared.shard_count;
    let start = Instant::now();
    for (j, key) in keys.into_iter().enumerate() {
        let due = start + gap * (j * shard_count + shard.index()) as u32;
        timer::sleep(due.saturating_duration_since(Instant::now())).await;
        ctx.broker
            .borrow_mut()
            .begin_close(key, CloseReason::ServerShutdown);
        ctx.end_of_work();
    }
}

/// The settings a shard takes from the server's options.
pub fn shard_limits(
    options: &Options,
    account_connections: &Arc<ActiveConnections>,
    cluster: Option<Arc<ClusterSettings>>,
) -> ShardLimits {
    ShardLimits {
        max_payload: options.max_payload,
        max_control_line: options.max_control_line,
        max_pending: options.max_pending,
        max_subscriptions: options.max_subscriptions,
        max_sub_tokens: options.max_sub_tokens,
        ping_interval: options.ping_interval,
        ping_max: options.ping_max,
        write_deadline: options.write_deadline,
        no_header_support: options.no_header_support,
        auth: Arc::new(options.auth.clone()),
        accounts: Arc::new(options.accounts.clone()),
        active_connections: account_connections.clone(),
        cluster,
        no_sublist_cache: options.no_sublist_cache,
    }
}

/// A shard's generator seed: distinct per shard and per start (queue picks
/// need not be unpredictable, only not the same on every run).
fn shard_seed(id: ShardId) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (0x5eed_0000 + id.index() as u64)
}

fn wall_clock() -> WallClock {
    WallClock {
        now: Instant::now(),
        wall_now: SystemTime::now(),
    }
}

/// The cluster as a shard needs it, once the listeners are bound.
fn cluster_settings(
    options: &Options,
    route_addr: std::net::SocketAddr,
    client_addr: std::net::SocketAddr,
    server_id: &str,
) -> Result<ClusterSettings, String> {
    let cluster = options.cluster.clone().unwrap_or_default();
    // As nats-server: without a configured name the cluster gets a random
    // one (22 characters, like a NUID).
    let name = cluster
        .name
        .clone()
        .unwrap_or_else(|| generate_server_id()[1..23].to_string());
    let (host, port, advertise_ip) = match &cluster.advertise {
        // Read as `client_advertise` is; a bad value stops the start with
        // nats-server's fatal text instead of quietly advertising the
        // listener's port.
        Some(advertise) => {
            let (h, p) = percore_core::go_host_port::parse_host_port(advertise, route_addr.port())
                .map_err(|e| {
                    format!("Error setting route INFO with Cluster.Advertise value of {advertise}, err={e}")
                })?;
            let ip = format!(
                "nats-route://{}/",
                percore_core::go_host_port::join_host_port(&h, p)
            );
            (h, p, Some(ip))
        }
        None => (cluster.host.clone(), route_addr.port(), None),
    };
    // Our client URLs for the peers' clients: the listen address, or for
    // a wildcard one every global unicast address of the host (as
    // nats-server).
    let client_urls = if let Some(advertise) = &options.client_advertise {
        // Checked by `start` before this is built.
        match percore_core::go_host_port::parse_host_port(advertise, client_addr.port()) {
            Ok((host, port)) => vec![percore_core::go_host_port::join_host_port(&host, port)],
            Err(_) => Vec::new(),
        }
    } else if client_addr.ip().is_unspecified() {
        shards::net::interface_addresses()
            .into_iter()
            .filter(|ip| is_global_unicast(*ip))
            .map(|ip| std::net::SocketAddr::new(ip, client_addr.port()).to_string())
            .collect()
    } else {
        vec![client_addr.to_string()]
    };
    let _ = server_id;
    Ok(ClusterSettings {
        dynamic: cluster.name.is_none(),
        name,
        user: cluster.user.clone(),
        pass: cluster.pass.clone(),
        no_advertise: cluster.no_advertise,
        host,
        port,
        advertise_ip,
        client_urls,
        auth_timeout: cluster.auth_timeout,
        connect_retries: cluster.connect_retries,
        permissions: cluster
            .permissions
            .clone()
            .map(percore_core::route_permissions::RoutePermissions::new),
        explicit: cluster.routes.iter().map(|r| r.host_port()).collect(),
        tls_required: cluster.tls.is_some(),
    })
}

/// Go's `IP.IsGlobalUnicast`: not unspecified, loopback, multicast or
/// link-local (nor IPv4 broadcast).
fn is_global_unicast(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast())
        }
        std::net::IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// How long lame duck lasts from the operator's point of view.
pub fn lame_duck_total(options: &Options) -> Duration {
    options
        .lame_duck_duration
        .max(options.lame_duck_grace_period)
}
