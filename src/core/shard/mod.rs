//! `ShardBroker`: everything one shard knows and does, as a synchronous state
//! machine. The runtime glue feeds it socket bytes, ring batches and the
//! time, and carries out what it asks for through its [`ShardIo`] (sends,
//! shutdowns, wake-ups) and its return values (ring pushes, waits).
//!
//! Concurrency contract: one `ShardBroker` per shard, reached by that
//! shard's tasks only; every method runs to completion without awaiting, so
//! a borrow never spans an `.await`. Other shards are reached only through
//! ring batches ([`crate::mesh`]).
//!
//! The replica model: the shard's [`SubscriptionIndex`] holds its own
//! subscriptions in full and other shards' interest as counts. A publish is
//! delivered here to local subscribers and forwarded once per interested
//! shard; the shard that owns a subscription makes the final delivery, so
//! UNSUB, auto-unsubscribe counts, echo and slow-consumer accounting stay
//! exact without locks.
//!
//! One concern per file: [`lifecycle`] (connections come and go),
//! [`client_ops`] (what a client's protocol ops do), [`subject_mapping`]
//! (the account's `mappings` applied to a client's publish), [`publish`] and
//! [`delivery`] (kind-neutral routing of a message, and how each kind of
//! connection receives it), [`interest`] (subscriptions and their
//! replication), [`peers`] (batches, acks and the PING barrier),
//! [`flow_control`] (output, writers, stalls, slow consumers), [`timers`]
//! (pings, deadlines, lame duck), [`monitoring`] (snapshots), [`reload`]
//! (new settings for the shard and its connections); cluster routes in
//! [`route_handshake`] (the handshake, the route table, gossip, redials),
//! [`route_ops`] (what a registered route's ops do),
//! [`route_interest`] (server-wide interest → `RS+`/`RS-`) and
//! [`route_delivery`] (one `RMSG` per route per message).

pub mod accounts;
pub mod client_ops;
pub mod delivery;
pub mod flow_control;
pub mod imports;
pub mod interest;
pub mod lifecycle;
pub mod monitoring;
pub mod peers;
pub mod publish;
pub mod reload;
pub mod route_delivery;
pub mod route_handshake;
pub mod route_interest;
pub mod route_ops;
pub mod route_permissions;
pub mod subject_mapping;
pub mod system_events;
pub mod system_requests;
pub mod timers;
pub mod tls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::connection::{ConnTable, Connection, Subscription};
use crate::delivery_latency::LatencyHistogram;
use crate::ids::SubKey;
use crate::ids::{ConnKey, ShardId};
use crate::info::{ClientClusterInfo, ServerIdentity};
use crate::io::ShardIo;
use crate::limits::ShardLimits;
use crate::mesh::{BatchBuilder, SpareBuffers};
use crate::outbound_queue::BlockPool;
use crate::rng::FastRng;
use crate::snapshot::ConnectionSnapshot;

use accounts::AccountIndexes;
use imports::ResponseRoutes;

pub use client_ops::{InputOutcome, Next};
pub use interest::SubscribeError;
pub use lifecycle::Accepted;
pub use monitoring::WallClock;
pub use peers::BarrierTarget;
pub use publish::{Origin, Reach};
pub use system_events::{SystemEvent, SystemEventKind};
pub use system_requests::SystemRequest;

/// Flow control: a subscriber whose backlog passes this (or half of
/// max_pending, if smaller) holds back the task that fed it until it drains.
const STALL_THRESHOLD: usize = 8 * 1024 * 1024;

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
    /// Ingress to socket write, one sample per unit of work that delivered
    /// (see [`crate::delivery_latency`]).
    pub delivery_latency: LatencyHistogram,
}

/// What a shard is built from.
pub struct ShardSetup<I> {
    pub id: ShardId,
    pub shard_count: usize,
    pub identity: Arc<ServerIdentity>,
    pub limits: ShardLimits,
    /// Seed of the shard's generator (queue picks, ping jitter): the
    /// simulation replays a run from it.
    pub seed: u64,
    pub io: I,
}

pub struct ShardBroker<I: ShardIo> {
    id: ShardId,
    shard_count: usize,
    identity: Arc<ServerIdentity>,
    limits: ShardLimits,
    /// [`STALL_THRESHOLD`], or half of max_pending if that is smaller.
    stall_threshold: usize,
    /// `limits.auth.enabled()`, kept at hand: without authentication the
    /// per-op gate costs one branch and no connection lookup.
    auth_enabled: bool,
    /// `limits.accounts.has_mappings()`, kept at hand: without mappings a
    /// client's publish costs one branch for them.
    mappings_configured: bool,
    io: I,
    /// The time of the current unit of work, handed in by the caller.
    now: Instant,
    conns: ConnTable<Connection<I::Endpoint>>,
    subs: Slab<Subscription>,
    /// One subscription index per account.
    accounts: AccountIndexes,
    /// This shard's import subscriptions (see [`accounts`]) and system
    /// services ([`system_requests`]).
    import_subs: Vec<SubKey>,
    /// System requests fired since the runtime last took them.
    system_requests: Vec<system_requests::SystemRequest>,
    /// Account connection events waiting for the runtime ([`system_events`]).
    system_events: Vec<system_events::PendingEvent>,
    /// Import subscriptions the current publish matched, fired once its
    /// deliveries are done ([`imports`]).
    fired: Vec<SubKey>,
    /// Routes back for service requests this shard made ([`imports`]).
    responses: ResponseRoutes,
    /// The client whose publish is being routed, imports included.
    originator: Option<ConnKey>,
    /// The message being routed is a request that crossed a service
    /// import: a further one keeps its `Nats-Request-Info` requester.
    in_service_import: bool,
    /// The last service import such a request crossed shares its
    /// requester's details (`share: true`).
    last_import_shared: bool,
    /// Scratch for a subject renamed by a stream import.
    renamed_subject: Vec<u8>,
    /// Scratch for a published subject renamed by the account's mappings.
    mapped_subject: Vec<u8>,
    /// The message being routed came from a cluster route: routes may not
    /// receive it (the one-hop rule).
    one_hop: bool,
    /// The message being routed came from a route to this shard: stream
    /// imports and the system services fire for it (this server has not
    /// seen it yet), service imports do not (the sending server mapped the
    /// request already).
    route_publish: bool,
    /// Per route, what the message being routed owes it (see
    /// [`route_delivery`]).
    route_targets: Vec<route_delivery::RouteTarget>,
    /// Cluster state of the cluster shard (shard 0 when clustered): its
    /// routes and the server-wide interest it announces to them.
    cluster: Option<Box<route_handshake::ClusterState>>,
    /// The cluster as this shard's clients see it in INFO (every shard has
    /// its copy; the cluster shard sends changes over the rings).
    client_cluster: Option<Arc<ClientClusterInfo>>,
    /// Bumped each time `client_cluster` changes (wrapping; compared for
    /// equality only): see `Connection::info_cluster_generation`.
    cluster_generation: u32,
    /// Per destination shard: what this unit of work sends it.
    outgoing: Vec<BatchBuilder<I::Handoff>>,
    /// Connections with queued output, flushed at the end of the unit of work.
    dirty: Vec<ConnKey>,
    /// The earliest ingress instant of what this unit of work handles (a
    /// socket read's, or a ring batch's); cleared by the flush that ends
    /// it. See [`crate::delivery_latency`].
    unit_ingress: Option<Instant>,
    /// `stats.out_msgs` at the last flush: whether a unit delivered
    /// anything is one comparison at its end, nothing per message.
    out_msgs_flushed: u64,
    /// Set by a flush that wrote a unit's deliveries: its ingress instant,
    /// until the runtime says when the writes ended
    /// ([`ShardBroker::delivery_written`]).
    latency_due: Option<Instant>,
    /// Number of the latest batch this shard sent that needs an ack.
    batch_seq: u64,
    /// Per peer: number of the latest batch sent to it that needs an ack.
    sent: Vec<u64>,
    /// Per peer: the highest of our batches it has applied.
    acked: Vec<u64>,
    /// Per peer: its highest batch we applied and must ack (0: none).
    ack_due: Vec<u64>,
    /// Per peer: batches applied since our last ack to it.
    unacked_batches: Vec<u32>,
    /// Per peer: it waits on a barrier and asked for our ack now.
    ack_wanted: Vec<bool>,
    /// A PING on this shard waits on a barrier: the next batches ask the
    /// peers that still owe us acks for them.
    acks_requested: bool,
    /// Scratch per destination shard for one publish.
    targets: Vec<publish::RemoteTarget>,
    /// Connections this unit of work pushed over the stall threshold.
    stalled: Vec<ConnKey>,
    rng: FastRng,
    lame_duck: bool,
    /// Set once the server is stopping (`close_all` for a shutdown): the
    /// routes it closes then must not tell clients the cluster shrank.
    shutting_down: bool,
    /// Emptied outbound blocks, shared by this shard's connections.
    pool: BlockPool,
    /// Ring batch buffers the peers sent back, for the next batches.
    spare_batches: SpareBuffers<I::Handoff>,
    /// Recently closed connections, oldest first.
    closed: VecDeque<ConnectionSnapshot>,
    pub stats: ShardStats,
}

impl<I: ShardIo> ShardBroker<I> {
    pub fn new(setup: ShardSetup<I>, now: Instant) -> ShardBroker<I> {
        let ShardSetup {
            id,
            shard_count,
            identity,
            limits,
            seed,
            io,
        } = setup;
        let no_sublist_cache = limits.no_sublist_cache;
        let mut broker = ShardBroker {
            id,
            shard_count,
            identity,
            stall_threshold: stall_threshold(&limits),
            auth_enabled: limits.auth.enabled(),
            mappings_configured: limits.accounts.has_mappings(),
            limits,
            io,
            now,
            conns: ConnTable::default(),
            subs: Slab::new(),
            accounts: AccountIndexes::new(no_sublist_cache),
            import_subs: Vec::new(),
            system_requests: Vec::new(),
            system_events: Vec::new(),
            fired: Vec::new(),
            originator: None,
            in_service_import: false,
            last_import_shared: false,
            renamed_subject: Vec::new(),
            mapped_subject: Vec::new(),
            one_hop: false,
            route_publish: false,
            route_targets: Vec::new(),
            cluster: None,
            client_cluster: None,
            cluster_generation: 0,
            responses: ResponseRoutes::new(
                id.index() as u16,
                seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
            ),
            outgoing: (0..shard_count).map(|_| BatchBuilder::default()).collect(),
            dirty: Vec::new(),
            unit_ingress: None,
            out_msgs_flushed: 0,
            latency_due: None,
            batch_seq: 0,
            sent: vec![0; shard_count],
            acked: vec![0; shard_count],
            ack_due: vec![0; shard_count],
            unacked_batches: vec![0; shard_count],
            ack_wanted: vec![false; shard_count],
            acks_requested: false,
            targets: (0..shard_count)
                .map(|_| publish::RemoteTarget::default())
                .collect(),
            stalled: Vec::new(),
            rng: FastRng::seeded(seed),
            lame_duck: false,
            shutting_down: false,
            pool: BlockPool::default(),
            spare_batches: SpareBuffers::default(),
            closed: VecDeque::new(),
            stats: ShardStats::default(),
        };
        if let Some(settings) = broker.limits.cluster.clone() {
            // No `connect_urls` until a peer sends its own (as nats-server).
            broker.client_cluster = Some(Arc::new(ClientClusterInfo {
                name: settings.name.clone(),
                connect_urls: Vec::new(),
            }));
            if id.index() == 0 {
                broker.cluster = Some(Box::new(route_handshake::ClusterState::new(settings)));
            }
        }
        // After the cluster state: the cluster shard announces imports.
        let accounts = broker.limits.accounts.clone();
        broker.install_imports(&accounts);
        broker
    }

    pub fn shard_id(&self) -> ShardId {
        self.id
    }

    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    pub fn io(&self) -> &I {
        &self.io
    }

    pub fn limits(&self) -> &ShardLimits {
        &self.limits
    }

    /// Open connections on this shard.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Every shard except this one.
    fn peers(&self) -> impl Iterator<Item = ShardId> {
        let me = self.id;
        ShardId::all(self.shard_count).filter(move |&s| s != me)
    }

    /// Every entry point starts here: the time of this unit of work.
    fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// What this unit of work handles entered the server at `ingress` (a
    /// socket read, or the read a ring batch's messages came from).
    fn note_ingress(&mut self, ingress: Instant) {
        self.unit_ingress = Some(match self.unit_ingress {
            Some(earlier) => earlier.min(ingress),
            None => ingress,
        });
    }

    /// A flush just wrote deliveries of a unit of work: the runtime should
    /// read its clock and call [`ShardBroker::delivery_written`].
    pub fn delivery_latency_due(&self) -> bool {
        self.latency_due.is_some()
    }

    /// The writes of the last flush ended at `written`: one delivery
    /// latency sample (see [`crate::delivery_latency`]).
    pub fn delivery_written(&mut self, written: Instant) {
        if let Some(ingress) = self.latency_due.take() {
            self.stats
                .delivery_latency
                .record(written.saturating_duration_since(ingress));
        }
    }
}

fn stall_threshold(limits: &ShardLimits) -> usize {
    STALL_THRESHOLD.min(limits.max_pending / 2)
}

/// The first server PING (nats-server's RTT ping) goes out this soon after
/// CONNECT, or after `ping_interval` if that is shorter, plus up to
/// [`FIRST_PING_JITTER_PERMILLE`] of it at random, as nats-server does: a
/// thousand clients that connect together are not pinged in one burst
/// (which, in one housekeeping tick, tripled p99 for the other clients).
const FIRST_PING_DELAY: Duration = Duration::from_secs(2);
const FIRST_PING_JITTER_PERMILLE: u64 = 200;

/// The state machine driven as `server.rs` drives it, over a fake `ShardIo`.
#[cfg(test)]
mod tests;

/// Authentication and permissions, over the same fake runtime.
#[cfg(test)]
mod auth_tests;

/// Accounts: isolation, stream and service imports across two shards.
#[cfg(test)]
mod account_tests;

/// Cluster routes: RS+/RS-, RMSG once per route, one hop, queue weights.
#[cfg(test)]
mod route_tests;
