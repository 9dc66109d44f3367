//! What the monitoring endpoints report, as plain data: one
//! [`ShardSnapshot`] per shard, taken by the shard itself between two units
//! of work (so its counters are exact at that moment), plus the server-wide
//! facts the monitor thread adds. Rendering lives in the endpoint modules
//! (`monitor::varz`, `monitor::connz`, `monitor::subsz`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::account::AccountTable;

/// What a request needs from the shards: subscription lists are only
/// gathered when an endpoint will print them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// List the open connections (`/connz`); every other endpoint needs
    /// only their number, and listing them copies each one's strings.
    pub with_connections: bool,
    /// Include each listed connection's subscriptions (implies the list).
    pub with_subscriptions: bool,
    /// Include the recently closed connections (`/connz?state=closed|any`).
    pub with_closed: bool,
    /// List the cluster routes (`/routez`, `/varz`), and with
    /// `with_route_subs` the interest each peer sent (`/routez?subs=1`).
    pub with_routes: bool,
    pub with_route_subs: bool,
}

/// One cluster route, as `/routez` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSnapshot {
    pub rid: u64,
    pub remote_id: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub ip: String,
    pub port: u16,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    pub rtt: Option<Duration>,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub num_subs: u64,
    /// The peer's interest (with `with_route_subs`): subject, queue, and
    /// the `<account> <subject> [<queue>]` key nats-server uses as sid.
    pub subs: Vec<SubscriptionSnapshot>,
}

/// The `cluster` section of `/varz`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterFacts {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub auth_timeout: Duration,
    /// The configured routes, `host:port`.
    pub urls: Vec<String>,
    /// `cluster { tls { timeout } }`, 2 s by default: nats-server prints
    /// it for every cluster, with TLS or without.
    pub tls_timeout: Duration,
    /// Route TLS is on (`tls_required` and `tls_verify` in `/varz`).
    pub tls: bool,
}

/// One subscription, as `/connz?subs=detail` and `/subsz?subs=1` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub subject: String,
    pub queue: Option<String>,
    pub sid: String,
    /// Messages delivered so far.
    pub msgs: u64,
    /// Auto-unsubscribe limit (`UNSUB <sid> <max>`).
    pub max: Option<u64>,
    pub cid: u64,
}

/// One open client connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSnapshot {
    pub cid: u64,
    pub ip: String,
    pub port: u16,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    /// Round trip of the server's first PING, once answered.
    pub rtt: Option<Duration>,
    /// Bytes queued for the socket and not yet written.
    pub pending_bytes: u64,
    /// Messages and payload bytes (headers included) the client published.
    pub in_msgs: u64,
    pub in_bytes: u64,
    /// Messages and payload bytes delivered to the client.
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
    /// From CONNECT; empty when the client sent none.
    pub name: String,
    pub lang: String,
    pub version: String,
    /// The user name or nkey it authenticated as.
    pub authorized_user: Option<String>,
    /// The name of its account (`$G` unless its user is in another).
    pub account: String,
    /// A JWT user's token and names (open connections only, as nats-server
    /// shows them).
    pub jwt: Option<std::sync::Arc<crate::auth::JwtInfo>>,
    /// `/connz` `tls_version` and `tls_cipher_suite`, for TLS connections.
    pub tls_version: Option<&'static str>,
    pub tls_cipher_suite: Option<&'static str>,
    /// The client's certificate chain (`tls_peer_certs`, with `auth=1`).
    pub tls_peer_certs: Vec<crate::connection::PeerCert>,
    /// Filled only when [`SnapshotRequest::with_subscriptions`] is set (a
    /// closed connection keeps the list it had when it closed).
    pub subscription_list: Vec<SubscriptionSnapshot>,
    /// Closed connections only: when and why (nats-server's reason text).
    pub stop: Option<SystemTime>,
    pub reason: Option<String>,
}

/// Counters of one shard's subscription index (`/subsz`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hits: u64,
}

/// Everything one shard reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    /// Times a ring to a peer shard was full and a batch had to wait in
    /// this shard's staging queue (readers pause while it is long).
    pub ring_stalls: u64,
    /// Batches that could not be delivered because the peer was gone
    /// (only while shutting down).
    pub ring_dropped: u64,
    /// Batches this shard placed into its rings to peer shards, and
    /// batches it took from the peers' rings to it.
    pub ring_batches_sent: u64,
    pub ring_batches_received: u64,
    /// Times the shard's executor went to sleep, and times another thread
    /// woke it (a peer shard's ring batch, the blocking thread).
    pub parks: u64,
    pub wakeups: u64,
    /// Ingress to socket write, per unit of work that delivered
    /// ([`crate::delivery_latency`]).
    pub delivery_latency: crate::delivery_latency::LatencyHistogram,
    pub index: IndexStats,
    /// Open client connections on this shard.
    pub open_connections: u64,
    /// Filled only when [`SnapshotRequest::with_connections`] or
    /// [`SnapshotRequest::with_subscriptions`] is set.
    pub connections: Vec<ConnectionSnapshot>,
    /// The shard's most recently closed connections, oldest first; filled
    /// only when [`SnapshotRequest::with_closed`] is set.
    pub closed: Vec<ConnectionSnapshot>,
    /// The cluster routes on this shard (the cluster shard's), when asked
    /// for.
    pub routes: Vec<RouteSnapshot>,
    /// The client URLs this shard's clients are told in INFO
    /// (`connect_urls`; `/varz` shows the same list).
    pub connect_urls: Vec<String>,
    /// The accounts this shard works with (`/accountz`).
    pub accounts: Arc<AccountTable>,
    /// Per account, by id: this shard's share of its connections and
    /// subscriptions, and its index counters.
    pub account_stats: Vec<AccountStats>,
}

/// One account on one shard. Import subscriptions are counted by shard 0
/// only (every shard holds its own copy of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountStats {
    pub connections: u64,
    pub subscriptions: u64,
    pub index: IndexStats,
}

/// Server-wide facts known without asking the shards.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFacts {
    pub server_id: String,
    pub server_name: String,
    pub host: String,
    pub port: u16,
    pub http_host: String,
    pub http_port: u16,
    pub https_port: u16,
    pub http_base_path: String,
    pub max_connections: u64,
    /// 0: unlimited (then `/varz` leaves `max_subscriptions` out).
    pub max_subscriptions: u64,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub max_control_line: u64,
    pub max_payload: u64,
    pub max_pending: u64,
    pub write_deadline: Duration,
    /// INFO's `auth_required`, and the authentication timeout.
    pub auth_required: bool,
    pub auth_timeout: Duration,
    /// `tls_required` and `tls_verify` as INFO has them; the handshake
    /// timeout (nats-server prints its 2 s default without TLS too).
    pub tls_required: bool,
    pub tls_verify: bool,
    pub tls_timeout: Duration,
    pub start: SystemTime,
    pub config_load_time: SystemTime,
    /// `server_tags`, as `/varz` `tags` lists them.
    pub tags: Vec<String>,
    pub cores: u64,
    pub shards: u64,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Resident set size, bytes.
    pub mem: u64,
    /// CPU use since the previous `/varz`, percent of one core.
    pub cpu: f64,
    /// Set when clustered.
    pub cluster: Option<ClusterFacts>,
}

/// One consistent view for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSnapshot {
    pub now: SystemTime,
    pub server: ServerFacts,
    pub shards: Vec<ShardSnapshot>,
}
