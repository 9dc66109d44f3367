//! What the monitoring endpoints learn from this shard: a snapshot of its
//! counters and connections, taken between two units of work, and the
//! recently closed connections it keeps for `/connz?state=closed`.

use std::num::NonZeroU64;

use std::time::{Instant, SystemTime};

use crate::connection::{CloseReason, ConnKind, Connection, SubOwner, Traffic};
use crate::ids::{ConnKey, SubKey};
use crate::io::ShardIo;
use crate::snapshot::{
    AccountStats, ConnectionSnapshot, IndexStats, RouteSnapshot, ShardSnapshot, SnapshotRequest,
    SubscriptionSnapshot,
};

use super::ShardBroker;

/// Closed connections `/connz?state=closed` can list, server-wide (as
/// nats-server's `MAX_CLOSED_CLIENTS`).
const CLOSED_CONNECTIONS_KEPT: usize = 10_000;

/// The shard's time and the wall-clock time at the same moment, to turn
/// the shard's `Instant`s into the times monitoring prints.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub now: Instant,
    pub wall_now: SystemTime,
}

impl WallClock {
    fn wall(&self, at: Instant) -> SystemTime {
        self.wall_now - self.now.saturating_duration_since(at)
    }
}

impl<I: ShardIo> ShardBroker<I> {
    /// This shard's part of a monitoring request (`/varz`, `/connz`, ...).
    /// Ring, park and wake-up counters live with the runtime and are added
    /// by the caller.
    pub fn snapshot(&self, request: SnapshotRequest, clock: WallClock) -> ShardSnapshot {
        let routes = if request.with_routes {
            self.route_snapshots(request.with_route_subs, &clock)
        } else {
            Vec::new()
        };
        let counters = self.accounts.counters();
        // Routes are not clients: `/routez` shows them.
        let open = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.closing.is_none() && conn.kind == ConnKind::Client);
        let open_connections = open.clone().count() as u64;
        let connections = if request.with_connections || request.with_subscriptions {
            open.map(|(_, conn)| self.connection_snapshot(conn, request.with_subscriptions, &clock))
                .collect()
        } else {
            Vec::new()
        };
        ShardSnapshot {
            routes,
            shard: self.id.index(),
            in_msgs: self.stats.in_msgs,
            in_bytes: self.stats.in_bytes,
            out_msgs: self.stats.out_msgs,
            out_bytes: self.stats.out_bytes,
            slow_consumers: self.stats.slow_consumers,
            ring_stalls: 0,
            ring_dropped: 0,
            ring_batches_sent: 0,
            ring_batches_received: 0,
            parks: 0,
            wakeups: 0,
            delivery_latency: self.stats.delivery_latency,
            index: IndexStats {
                num_subscriptions: self.subscription_count(),
                num_cache: self.accounts.cached_subjects() as u64,
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
            connect_urls: self
                .client_cluster
                .as_ref()
                .map(|c| c.connect_urls.clone())
                .unwrap_or_default(),
            accounts: self.limits.accounts.clone(),
            account_stats: self.account_stats(),
        }
    }

    /// Client subscriptions, plus the import subscriptions on shard 0 only
    /// (each shard has a copy); response subscriptions are bookkeeping.
    fn subscription_count(&self) -> u64 {
        let own = self.import_subs.len() + self.responses.installed_count();
        let imports = if self.id.index() == 0 {
            self.counted_import_subs().count()
        } else {
            0
        };
        (self.subs.len() - own + imports) as u64
    }

    /// The import subscriptions the statistics count (once, on shard 0):
    /// not the system services, which are the server's own (percore counts
    /// none of them, whether a system account exists or not).
    fn counted_import_subs(&self) -> impl Iterator<Item = SubKey> + '_ {
        self.import_subs.iter().copied().filter(|sk| {
            self.subs
                .get(sk.index())
                .is_some_and(|sub| sub.owner != SubOwner::SystemService)
        })
    }

    fn account_stats(&self) -> Vec<AccountStats> {
        let mut stats: Vec<AccountStats> = self
            .accounts
            .iter()
            .map(|index| {
                let counters = index.counters();
                AccountStats {
                    connections: 0,
                    subscriptions: 0,
                    index: IndexStats {
                        num_subscriptions: 0,
                        num_cache: index.cached_subjects() as u64,
                        num_inserts: counters.inserts,
                        num_removes: counters.removes,
                        num_matches: counters.matches,
                        cache_hits: counters.cache_hits,
                    },
                }
            })
            .collect();
        for (_, conn) in self
            .conns
            .iter()
            .filter(|(_, c)| c.kind == ConnKind::Client)
        {
            if let Some(entry) = stats.get_mut(conn.account.0 as usize) {
                if conn.closing.is_none() {
                    entry.connections += 1;
                }
                entry.subscriptions += conn.subs.len() as u64;
            }
        }
        if self.id.index() == 0 {
            for sk in self.counted_import_subs() {
                if let Some(sub) = self.subs.get(sk.index()) {
                    if let Some(entry) = stats.get_mut(sub.account.0 as usize) {
                        entry.subscriptions += 1;
                    }
                }
            }
        }
        for entry in &mut stats {
            entry.index.num_subscriptions = entry.subscriptions;
        }
        stats
    }

    /// The subscriptions of one connection (client or route) as `/connz`
    /// and `/routez` list them.
    fn subscription_snapshots(&self, conn: &Connection<I::Endpoint>) -> Vec<SubscriptionSnapshot> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        conn.subs
            .keys()
            .filter_map(|sk| self.subs.get(sk.index()))
            .map(|sub| SubscriptionSnapshot {
                subject: text(sub.subject()),
                queue: sub.queue().map(text),
                sid: text(&sub.sid),
                msgs: sub.delivered,
                max: sub.max.map(NonZeroU64::get),
                cid: conn.client_id.0,
            })
            .collect()
    }

    pub(super) fn connection_snapshot(
        &self,
        conn: &Connection<I::Endpoint>,
        with_subscriptions: bool,
        clock: &WallClock,
    ) -> ConnectionSnapshot {
        let subscription_list = if with_subscriptions {
            self.subscription_snapshots(conn)
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
            cid: conn.client_id.0,
            ip: conn.ip.clone(),
            port: conn.port,
            start: clock.wall(conn.started),
            last_activity: clock.wall(conn.last_activity),
            rtt: conn.liveness.rtt(),
            pending_bytes: conn.output.pending_bytes() as u64,
            in_msgs,
            in_bytes,
            out_msgs,
            out_bytes,
            subscriptions: conn.subs.len() as u64,
            name: conn.options.name.clone(),
            lang: conn.options.lang.clone(),
            version: conn.options.version.clone(),
            authorized_user: crate::auth::reported_user::raw_auth_user(
                &conn.auth_method,
                conn.credentials.as_deref(),
            )
            .map(str::to_string),
            account: self.limits.accounts.name(conn.account).to_string(),
            jwt: conn.jwt_info.clone(),
            tls_version: conn.tls.as_ref().map(|t| t.version),
            tls_cipher_suite: conn.tls.as_ref().map(|t| t.cipher_suite),
            tls_peer_certs: conn
                .tls
                .as_ref()
                .map(|t| t.peer_certs.clone())
                .unwrap_or_default(),
            subscription_list,
            stop: None,
            reason: None,
        }
    }

    /// Keeps a closed connection for `/connz?state=closed`, as nats-server
    /// keeps its last 10,000 (each shard its share), subscriptions included.
    /// The registered routes of the cluster shard, for `/routez`.
    fn route_snapshots(&self, with_subs: bool, clock: &WallClock) -> Vec<RouteSnapshot> {
        let Some(cluster) = self.cluster.as_ref() else {
            return Vec::new();
        };
        let mut routes: Vec<RouteSnapshot> = cluster
            .links
            .iter()
            .filter(|(_, link)| link.registered)
            .filter_map(|(&key, link)| {
                let conn = self.conns.get(key)?;
                let subs = if with_subs {
                    self.subscription_snapshots(conn)
                } else {
                    Vec::new()
                };
                Some(RouteSnapshot {
                    rid: conn.client_id.0,
                    remote_id: link.remote_id.clone().unwrap_or_default(),
                    did_solicit: link.solicited.is_some(),
                    is_configured: link.explicit,
                    ip: conn.ip.clone(),
                    port: conn.port,
                    start: clock.wall(conn.started),
                    last_activity: clock.wall(conn.last_activity),
                    rtt: conn.liveness.rtt(),
                    pending_bytes: conn.output.pending_bytes() as u64,
                    in_msgs: conn.traffic.in_msgs,
                    out_msgs: conn.traffic.out_msgs,
                    in_bytes: conn.traffic.in_bytes,
                    out_bytes: conn.traffic.out_bytes,
                    num_subs: conn.subs.len() as u64,
                    subs,
                })
            })
            .collect();
        routes.sort_by_key(|r| r.rid);
        routes
    }

    pub(super) fn remember_closed(&mut self, key: ConnKey, clock: &WallClock) {
        let Some(conn) = self.conns.get(key).filter(|c| c.kind == ConnKind::Client) else {
            return;
        };
        let mut closed = self.connection_snapshot(conn, true, clock);
        closed.stop = Some(clock.wall_now);
        closed.jwt = None;
        // nats-server keeps only the user name of a closed connection.
        closed.authorized_user =
            crate::auth::reported_user::user_name(&conn.auth_method, conn.credentials.as_deref())
                .map(str::to_string);
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
}
