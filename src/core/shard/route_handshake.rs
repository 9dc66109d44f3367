//! Cluster routes on the cluster shard: the handshake (INFO and CONNECT in
//! nats-server's order, cluster name and authorization checks), the route
//! table (one route per remote server, duplicates and routes to self
//! closed), gossip of new peers, when to dial again, and the cluster as
//! clients see it (name and `connect_urls`, lame duck). What a registered
//! route's ops do is in [`super::route_ops`].
//!
//! Concurrency contract: only the cluster shard (shard 0) has a
//! [`ClusterState`] and route connections; its tasks reach it through the
//! state machine like everything else, one synchronous step at a time. The
//! runtime dials what [`ShardBroker::take_route_dials`] and
//! [`ShardBroker::route_reconnect`] ask for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::AuthMethod;
use crate::connect::ClientOptions;
use crate::connection::{
    AuthState, CloseReason, ConnKind, Connection, Liveness, OutputState, SidMap, Traffic,
};
use crate::ids::{AccountId, ConnKey};
use crate::info::{ClientClusterInfo, ServerIdentity};
use crate::io::ShardIo;
use crate::limits::ShardLimits;
use crate::mesh::MeshItem;
use crate::route::{
    route_connect_line, route_info_line, ClusterSettings, PeerConnect, PeerInfo, RouteUrl,
};
use crate::route_permissions::{ImportCheck, RoutePermissions, SubjectPermissionWire};

use super::lifecycle::Accepted;
use super::route_interest::ServerInterest;
use super::{Next, ShardBroker};

/// nats-server's `DEFAULT_ROUTE_RECONNECT`: an explicit route is dialled
/// again this long after it closed (plus up to [`RECONNECT_JITTER_MS`]).
pub const ROUTE_RECONNECT: Duration = Duration::from_secs(1);
/// Random extra delay before a reconnect, so that two servers that dialled
/// each other at once do not collide again.
pub const RECONNECT_JITTER_MS: u64 = 100;
/// The first PING on a registered route.
const ROUTE_FIRST_PING: Duration = Duration::from_secs(1);

/// One route's state beside its [`Connection`].
#[derive(Debug, Default)]
pub struct RouteLink {
    /// The URL we dialled (None: the peer dialled us).
    pub solicited: Option<RouteUrl>,
    /// Dialled because it is configured (retried forever), not gossiped.
    pub explicit: bool,
    /// The peer's server id, from its CONNECT or INFO.
    pub remote_id: Option<String>,
    pub remote_name: String,
    /// The peer's cluster address, from its INFO (for `/routez`, gossip).
    pub remote_host: String,
    pub remote_port: u16,
    /// Its INFO arrived and the route is in the table.
    pub registered: bool,
    /// The route led back to this server: never dialled again.
    pub to_self: bool,
    /// A duplicate of this route was closed: if this one closes too, dial
    /// the peer again (two servers that dialled each other at once may each
    /// have kept the connection the other closed).
    pub retry: bool,
    /// The peer's client URLs.
    pub connect_urls: Vec<String>,
    /// The peer's route `export` as its last INFO said.
    pub remote_export: Option<SubjectPermissionWire>,
}

/// Where a route should be dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDial {
    pub url: RouteUrl,
    /// Configured: retried forever. Gossiped: `connect_retries` attempts.
    pub explicit: bool,
    /// Wait this long first.
    pub delay: Duration,
    /// Dialled again after a route to it was lost: failures are logged as
    /// `reconnect_error_reports` says, not `connect_error_reports`.
    pub reconnect: bool,
}

/// How often failed route dials are logged as errors (the rest at debug
/// level): `connect_error_reports` for a server never reached yet,
/// `reconnect_error_reports` after a route to it was lost. nats-server's
/// rule: the first failure, then every Nth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialErrorReports {
    pub connect: i64,
    pub reconnect: i64,
}

impl DialErrorReports {
    /// Whether failed attempt `attempt` (from 1) of `dial` is an error.
    pub fn is_error(&self, dial: &RouteDial, attempt: u64) -> bool {
        let every = if dial.reconnect {
            self.reconnect
        } else {
            self.connect
        };
        // As Go's `%`: a negative N counts as its magnitude; 0 never comes
        // (the options turn it into the default), but must not divide.
        attempt == 1 || (every != 0 && (attempt as i64) % every == 0)
    }
}

/// The cluster shard's routes and the interest it announces to them.
#[derive(Debug)]
pub struct ClusterState {
    pub settings: Arc<ClusterSettings>,
    pub links: HashMap<ConnKey, RouteLink>,
    /// Remote server id → its one registered route.
    pub by_id: HashMap<String, ConnKey>,
    pub interest: ServerInterest,
    /// `cluster.permissions.import`: which of [`ClusterState::interest`]
    /// the routes hear of (`None`: all of it).
    pub import: Option<ImportCheck>,
    /// Gossiped servers to dial (taken by the runtime).
    pub dials: Vec<RouteDial>,
    /// A registered peer has told us its client URLs. Until then client
    /// INFO carries no `connect_urls` at all: nats-server 2.9 adds its own
    /// URL to the list only when a peer's URLs first arrive, and keeps it
    /// once the peers are gone.
    pub peer_urls_heard: bool,
}

impl ClusterState {
    pub fn new(settings: Arc<ClusterSettings>) -> ClusterState {
        ClusterState {
            import: settings
                .permissions
                .as_ref()
                .map(RoutePermissions::import_check),
            settings,
            links: HashMap::new(),
            by_id: HashMap::new(),
            interest: ServerInterest::default(),
            dials: Vec::new(),
            peer_urls_heard: false,
        }
    }

    /// Routes whose handshake is done.
    pub fn registered_routes(&self) -> impl Iterator<Item = ConnKey> + '_ {
        self.links
            .iter()
            .filter(|(_, l)| l.registered)
            .map(|(&k, _)| k)
    }

    /// Every client URL of the cluster: ours first, then the peers'; none
    /// before any peer has sent its own (see [`ClusterState::peer_urls_heard`]).
    pub fn connect_urls(&self) -> Vec<String> {
        if !self.peer_urls_heard {
            return Vec::new();
        }
        let mut urls = self.settings.client_urls.clone();
        for link in self.links.values().filter(|l| l.registered) {
            for url in &link.connect_urls {
                if !urls.contains(url) {
                    urls.push(url.clone());
                }
            }
        }
        urls
    }
}

impl<I: ShardIo> ShardBroker<I> {
    /// Registers a route connection (accepted, or dialled to `solicited`)
    /// and queues what nats-server sends first: the soliciting side
    /// `CONNECT` then its `INFO`, the accepting side its `INFO`.
    pub fn register_route(
        &mut self,
        accepted: Accepted<I::Endpoint>,
        solicited: Option<(RouteUrl, bool)>,
        now: Instant,
    ) -> Option<ConnKey> {
        self.set_now(now);
        let settings = self.cluster.as_ref()?.settings.clone();
        let Accepted {
            client_id,
            endpoint,
            ip,
            port,
            nonce,
        } = accepted;
        let mut output = OutputState::default();
        let headers = !self.limits.no_header_support;
        if let Some((url, _)) = &solicited {
            let connect = route_connect_line(
                &self.identity.server_id,
                &settings.name,
                settings.dynamic,
                headers,
                url.user.as_deref(),
                url.pass.as_deref(),
                settings.tls_required,
            );
            output.extend(&mut self.pool, &connect);
        }
        let info = our_route_info(
            &self.identity,
            &self.limits,
            &settings,
            nonce.as_deref(),
            false,
        );
        output.extend(&mut self.pool, &info);
        let auth = if solicited.is_none() && settings.user.is_some() {
            AuthState::Pending {
                deadline: now + settings.auth_timeout,
            }
        } else {
            AuthState::Open
        };
        let key = self.conns.insert(Connection {
            kind: ConnKind::Route,
            client_id,
            account: AccountId::GLOBAL,
            counted_in_account: false,
            account_max_payload: None,
            user_limits: Default::default(),
            auth_expires: None,
            jwt_issued_at: 0,
            jwt_info: None,
            account_expires: None,
            tls: None,
            endpoint,
            ip,
            port,
            options: ClientOptions::default(),
            auth,
            nonce: None,
            credentials: None,
            auth_method: AuthMethod::Open,
            permissions: None,
            first_pong_sent: false,
            info_cluster_generation: 0,
            output,
            subs: SidMap::default(),
            liveness: Liveness::new(now, self.limits.ping_interval),
            forwarded: false,
            closing: None,
            started: now,
            last_activity: now,
            traffic: Traffic::default(),
        });
        let (url, explicit) = match solicited {
            Some((url, explicit)) => (Some(url), explicit),
            None => (None, false),
        };
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.links.insert(
                key,
                RouteLink {
                    solicited: url,
                    explicit,
                    ..RouteLink::default()
                },
            );
        }
        self.mark_dirty(key);
        let conn = &self.conns[key];
        crate::info!(
            "{}:{} - rid:{} - Route connection created",
            conn.ip,
            conn.port,
            client_id
        );
        Some(key)
    }

    pub(super) fn route_connect(&mut self, key: ConnKey, json: &[u8]) -> Next {
        let Ok(connect) = serde_json::from_slice::<PeerConnect>(json) else {
            return self.close_with_error(key, None, CloseReason::ParseError);
        };
        let Some(settings) = self.cluster.as_ref().map(|c| c.settings.clone()) else {
            return self.close_with_error(key, None, CloseReason::ProtocolViolation);
        };
        if !connect.lang.is_empty() {
            return self.close_with_error(
                key,
                Some("attempted to connect to route port"),
                CloseReason::WrongPort,
            );
        }
        if !connect.gateway.is_empty() {
            let text = format!(
                "Rejecting connection from gateway \"{}\" on the Route port",
                connect.gateway
            );
            crate::error!("{}", text);
            return self.close_with_error(key, Some(&text), CloseReason::WrongGateway);
        }
        if connect.cluster != settings.name
            && !self.adopt_cluster_name(key, &connect.cluster, connect.cluster_dynamic)
        {
            let text = format!(
                "Rejecting connection, cluster name \"{}\" does not match \"{}\"",
                connect.cluster, settings.name
            );
            crate::error!("{}", text);
            return self.close_with_error(key, Some(&text), CloseReason::ClusterNameConflict);
        }
        if let Some(user) = &settings.user {
            let ok = connect.user.as_deref() == Some(user.as_str())
                && connect.pass.as_deref() == settings.pass.as_deref();
            if !ok {
                let conn = &self.conns[key];
                crate::error!(
                    "{}:{} - rid:{} - authentication error",
                    conn.ip,
                    conn.port,
                    conn.client_id
                );
                return self.close_with_error(
                    key,
                    Some("Authorization Violation"),
                    CloseReason::AuthenticationFailure,
                );
            }
        }
        let headers = connect.headers && !self.limits.no_header_support;
        let conn = &mut self.conns[key];
        conn.auth = AuthState::Done;
        conn.options.headers = headers;
        if let Some(link) = self.cluster.as_mut().and_then(|c| c.links.get_mut(&key)) {
            link.remote_id = Some(connect.name);
        }
        Next::NeedMore
    }

    pub(super) fn route_info(&mut self, key: ConnKey, json: &[u8]) -> Next {
        let Ok(info) = serde_json::from_slice::<PeerInfo>(json) else {
            return self.close_with_error(key, None, CloseReason::ParseError);
        };
        let own_id = self.identity.server_id.clone();
        let own_name = self.identity.server_name.clone();
        let Some(cluster) = self.cluster.as_mut() else {
            return Next::Close;
        };
        let Some(link) = cluster.links.get_mut(&key) else {
            return Next::Close;
        };
        if info.server_id == own_id {
            // Our own INFO came back: a route to self. Not dialled again.
            link.to_self = true;
            link.remote_id = Some(own_id);
            crate::debug!("Detected route to self, ignoring");
            self.begin_close(key, CloseReason::DuplicateRoute);
            return Next::Close;
        }
        if !info.cluster.is_empty() && info.cluster != cluster.settings.name {
            if self.adopt_cluster_name(key, &info.cluster, info.cluster_dynamic) {
                return self.route_info(key, json);
            }
            let cluster = self.cluster.as_ref().map(|c| c.settings.name.clone());
            crate::error!(
                "Rejecting route from cluster \"{}\": ours is \"{}\"",
                info.cluster,
                cluster.unwrap_or_default()
            );
            self.begin_close(key, CloseReason::ClusterNameConflict);
            return Next::Close;
        }
        if link.registered {
            return self.route_info_update(key, info);
        }
        if link.solicited.is_none() && info.server_name == own_name {
            crate::error!(
                "Remote server has a duplicate name: \"{}\"",
                info.server_name
            );
            self.begin_close(key, CloseReason::DuplicateServerName);
            return Next::Close;
        }
        link.remote_id = Some(info.server_id.clone());
        link.remote_name = info.server_name.clone();
        link.remote_host = info.host.clone();
        link.remote_port = info.port;
        if let Some(&existing) = cluster.by_id.get(&info.server_id) {
            let (url, explicit) = (link.solicited.clone(), link.explicit);
            if let Some(kept) = cluster.links.get_mut(&existing) {
                kept.retry = true;
                if kept.solicited.is_none() && url.is_some() {
                    kept.solicited = url;
                    kept.explicit = explicit;
                }
            }
            crate::debug!("Detected duplicate remote route \"{}\"", info.server_id);
            self.begin_close(key, CloseReason::DuplicateRoute);
            return Next::Close;
        }
        link.registered = true;
        link.remote_export = info.export.clone();
        if !cluster.settings.no_advertise {
            link.connect_urls = info.connect_urls.clone();
            cluster.peer_urls_heard |= !info.connect_urls.is_empty();
        }
        cluster.by_id.insert(info.server_id.clone(), key);
        let others: Vec<ConnKey> = cluster.registered_routes().filter(|&k| k != key).collect();
        let headers = info.headers && !self.limits.no_header_support;
        let now = self.now;
        let conn = &mut self.conns[key];
        conn.options.headers = headers;
        conn.liveness.connected(
            now,
            conn.started,
            ROUTE_FIRST_PING.min(self.limits.ping_interval),
        );
        crate::debug!(
            "{}:{} - rid:{} - Registering remote route \"{}\"",
            conn.ip,
            conn.port,
            conn.client_id,
            info.server_id
        );
        let peer_ip = conn.ip.clone();
        self.send_all_interest(key);
        if !others.is_empty() {
            self.gossip(json, &info, &peer_ip, &others);
        }
        self.announce_connect_urls();
        Next::NeedMore
    }

    /// The cluster shard: if the cluster's client URLs changed, every
    /// shard's clients hear of it (unless `no_advertise`).
    fn announce_connect_urls(&mut self) {
        self.announce_cluster_info(false);
    }

    /// The cluster shard: tells every shard's clients the cluster's name
    /// and client URLs, if they changed (URLs: unless `no_advertise`).
    ///
    /// Not while the server is stopping: its routes close along with its
    /// clients, and a client on another shard could still take an INFO
    /// without the peers' URLs. nats-server sends no INFO once shutting
    /// down; a client that applied that one (nats.c drops the discovered
    /// URLs it no longer lists) would have only this stopped server left
    /// to reconnect to.
    fn announce_cluster_info(&mut self, renamed: bool) {
        if self.shutting_down {
            return;
        }
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        if cluster.settings.no_advertise && !renamed {
            return;
        }
        let mut urls = if cluster.settings.no_advertise {
            Vec::new()
        } else {
            cluster.connect_urls()
        };
        if self.lame_duck {
            // nats-server drops its own URLs at lame duck for good: a peer
            // joining or leaving afterwards does not bring them back.
            urls.retain(|url| !cluster.settings.client_urls.contains(url));
        }
        if self
            .client_cluster
            .as_ref()
            .is_some_and(|c| c.connect_urls == urls && c.name == cluster.settings.name)
        {
            return;
        }
        let info = Arc::new(ClientClusterInfo {
            name: cluster.settings.name.clone(),
            connect_urls: urls,
        });
        for dst in self.peers().collect::<Vec<_>>() {
            self.outgoing[dst.index()].push(MeshItem::ConnectUrls(info.clone()));
        }
        self.cluster_urls_changed(info);
    }

    /// New cluster URLs: kept for the INFO of new clients, and sent now to
    /// the clients that take an asynchronous INFO (protocol 1, past their
    /// first PONG), as nats-server does.
    pub(super) fn cluster_urls_changed(&mut self, info: Arc<ClientClusterInfo>) {
        self.client_cluster = Some(info.clone());
        self.cluster_generation = self.cluster_generation.wrapping_add(1);
        let keys: Vec<ConnKey> = self.conns.keys();
        for key in keys {
            let conn = &self.conns[key];
            if conn.kind != ConnKind::Client
                || conn.options.protocol < 1
                || !conn.first_pong_sent
                || conn.closing.is_some()
            {
                continue;
            }
            let line = self.identity.info_line_in_cluster(
                conn.client_id.0,
                &conn.ip,
                self.lame_duck,
                None,
                Some(&info),
            );
            self.queue_bytes(key, &line);
        }
    }

    /// A peer names another cluster. As nats-server: if our name was
    /// generated, we take theirs when theirs was configured or sorts
    /// higher, and drop our other routes (they belong to the old name).
    /// Returns whether we took it.
    fn adopt_cluster_name(&mut self, key: ConnKey, theirs: &str, theirs_dynamic: bool) -> bool {
        let Some(cluster) = self.cluster.as_mut() else {
            return false;
        };
        let ours = &cluster.settings;
        if !ours.dynamic || (theirs_dynamic && ours.name.as_str() >= theirs) {
            return false;
        }
        crate::info!("Cluster name updated to {theirs}");
        let mut settings = (*cluster.settings).clone();
        settings.name = theirs.to_string();
        settings.dynamic = theirs_dynamic;
        cluster.settings = Arc::new(settings);
        let others: Vec<ConnKey> = cluster
            .links
            .keys()
            .copied()
            .filter(|&k| k != key)
            .collect();
        for other in others {
            self.begin_close(other, CloseReason::ClusterNameConflict);
        }
        self.announce_cluster_info(true);
        true
    }

    /// Tells the other routes about a new peer (its INFO, with the `ip`
    /// they should dial), so the full mesh forms from one seed.
    fn gossip(&mut self, json: &[u8], info: &PeerInfo, peer_ip: &str, others: &[ConnKey]) {
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(json) else {
            return;
        };
        fields.remove("nonce");
        if info.ip.is_empty() {
            let host = if peer_ip.contains(':') {
                format!("[{peer_ip}]")
            } else {
                peer_ip.to_string()
            };
            fields.insert(
                "ip".into(),
                serde_json::Value::String(format!("nats-route://{host}:{}/", info.port)),
            );
        }
        let mut line = b"INFO ".to_vec();
        let _ = serde_json::to_writer(&mut line, &serde_json::Value::Object(fields));
        line.extend_from_slice(b"\r\n");
        for &route in others {
            if !self.is_closing(route) {
                self.queue_bytes(route, &line);
            }
        }
    }

    /// An INFO on a registered route: news of another server (gossip: dial
    /// it unless we know it), or the peer's own update (lame duck).
    fn route_info_update(&mut self, key: ConnKey, info: PeerInfo) -> Next {
        let own_id = self.identity.server_id.clone();
        let Some(cluster) = self.cluster.as_mut() else {
            return Next::NeedMore;
        };
        let remote = cluster.links.get(&key).and_then(|l| l.remote_id.clone());
        if remote.as_deref() != Some(info.server_id.as_str()) {
            if info.server_id == own_id || cluster.by_id.contains_key(&info.server_id) {
                return Next::NeedMore;
            }
            let configured = format!("{}:{}", info.host, info.port).to_ascii_lowercase();
            if cluster.settings.explicit.contains(&configured) {
                return Next::NeedMore;
            }
            let Some(mut url) = RouteUrl::parse(&info.ip) else {
                crate::error!("Error parsing URL from INFO: \"{}\"", info.ip);
                return Next::NeedMore;
            };
            if info.auth_required {
                url.user = cluster.settings.user.clone();
                url.pass = cluster.settings.pass.clone();
            }
            if !cluster.dials.iter().any(|d| d.url == url) {
                cluster.dials.push(RouteDial {
                    url,
                    explicit: false,
                    delay: Duration::ZERO,
                    reconnect: false,
                });
            }
            return Next::NeedMore;
        }
        if info.ldm {
            if let Some(link) = cluster.links.get_mut(&key) {
                link.connect_urls.clear();
            }
            self.announce_connect_urls();
        } else {
            // A config reload on the peer, maybe of its permissions.
            self.peer_export_changed(key, info.export);
        }
        Next::NeedMore
    }

    /// Lame duck: the peers hear it in an INFO with `ldm`, and stop
    /// offering our client URL to their clients.
    pub(super) fn tell_routes_lame_duck(&mut self) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let info = our_route_info(&self.identity, &self.limits, &cluster.settings, None, true);
        let routes: Vec<ConnKey> = cluster.registered_routes().collect();
        for route in routes {
            if !self.is_closing(route) {
                self.queue_bytes(route, &info);
            }
        }
    }

    /// Gossiped servers to dial now.
    pub fn take_route_dials(&mut self) -> Vec<RouteDial> {
        self.cluster
            .as_mut()
            .map(|c| std::mem::take(&mut c.dials))
            .unwrap_or_default()
    }

    /// A route ended (before [`ShardBroker::remove_connection`]): whether
    /// and when to dial it again, as nats-server decides. Not if we did not
    /// dial it, if it led back to us, or if another route to the same
    /// server is up; an explicit route after [`ROUTE_RECONNECT`], a
    /// gossiped one at once (the runtime then tries `connect_retries`
    /// times).
    pub fn route_reconnect(&mut self, key: ConnKey) -> Option<RouteDial> {
        let jitter = Duration::from_millis(self.rng.below(RECONNECT_JITTER_MS));
        let cluster = self.cluster.as_ref()?;
        let link = cluster.links.get(&key)?;
        if link.to_self {
            return None;
        }
        // A route we did not dial is dialled again only after a duplicate
        // of it was closed, at the address its INFO gave.
        let url = match (&link.solicited, link.retry) {
            (Some(url), _) => url.clone(),
            (None, true) if link.remote_port != 0 => RouteUrl {
                host: link.remote_host.clone(),
                port: link.remote_port,
                user: cluster.settings.user.clone(),
                pass: cluster.settings.pass.clone(),
            },
            _ => return None,
        };
        if let Some(id) = &link.remote_id {
            if cluster.by_id.get(id).is_some_and(|&other| other != key) {
                crate::debug!(
                    "Not attempting reconnect for solicited route, already connected to \"{id}\""
                );
                return None;
            }
        }
        let delay = if link.explicit {
            ROUTE_RECONNECT + jitter
        } else {
            jitter
        };
        crate::debug!(
            "Attempting reconnect for solicited route \"{}\"",
            url.redacted()
        );
        Some(RouteDial {
            url,
            explicit: link.explicit,
            delay,
            reconnect: true,
        })
    }

    /// The route part of [`ShardBroker::remove_connection`].
    pub(super) fn forget_route(&mut self, key: ConnKey) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if let Some(link) = cluster.links.remove(&key) {
            if let Some(id) = link.remote_id {
                if cluster.by_id.get(&id) == Some(&key) {
                    cluster.by_id.remove(&id);
                }
            }
            if link.registered {
                self.announce_connect_urls();
            }
        }
    }

    /// The client URLs of the whole cluster (ours first), for client INFO.
    pub fn cluster_connect_urls(&self) -> Vec<String> {
        self.cluster
            .as_ref()
            .map(|c| c.connect_urls())
            .unwrap_or_default()
    }
}

/// Our route INFO: this server's identity, header support and cluster
/// settings (a free function, so that callers holding the cluster state
/// mutably can still lend the identity and limits).
pub(super) fn our_route_info(
    identity: &ServerIdentity,
    limits: &ShardLimits,
    settings: &ClusterSettings,
    nonce: Option<&str>,
    lame_duck: bool,
) -> Vec<u8> {
    route_info_line(
        settings,
        &identity.server_id,
        &identity.server_name,
        !limits.no_header_support,
        identity.max_payload,
        nonce,
        lame_duck,
    )
}
