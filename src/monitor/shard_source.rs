//! The monitor's data source: asks every shard for its snapshot over the
//! shards' admin channels (`AdminCommand::Snapshot`) and adds the
//! server-wide facts; plus binding and starting the monitor for `server`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::snapshot::{ClusterFacts, MonitorSnapshot, ServerFacts, ShardSnapshot, SnapshotRequest};
use super::{MonitorServer, SnapshotSource, TlsSource};
use crate::admin::{AdminCommand, AdminSender};
use crate::config::Options;
use crate::shared::BrokerShared;

/// Binds the monitoring listener when `http_port` or `https_port` is set
/// (on `http_host`, else the client host).
pub fn bind_monitor(options: &Options) -> Result<Option<std::net::TcpListener>, String> {
    let (port, scheme) = match (options.http_port, options.https_port) {
        (Some(port), _) => (port, "http"),
        (None, Some(port)) => (port, "https"),
        (None, None) => return Ok(None),
    };
    let host = options.http_host.as_deref().unwrap_or(&options.host);
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let listener = shards::net::std_listener(bare_host, port).map_err(|e| {
        format!("Can't start monitoring: can't listen to the monitor port: {host}:{port}, \"{e}\"")
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("Can't start monitoring: {e}"))?;
    crate::info!(
        "Starting {scheme} monitor on {}",
        display_host_port(bare_host, addr.port())
    );
    Ok(Some(listener))
}

/// Serves the monitoring endpoints from their own thread.
pub fn start_monitor(
    listener: std::net::TcpListener,
    shared: &Arc<BrokerShared>,
    admin: &[AdminSender],
) -> Result<MonitorServer, String> {
    let port = listener
        .local_addr()
        .map_err(|e| format!("Can't start monitoring: {e}"))?
        .port();
    let options = &shared.options;
    // HTTPS: each connection takes the current generation's configuration,
    // so a reload's new certificate serves new monitoring connections too.
    let tls: Option<TlsSource> = match (&shared.tls, options.http_port) {
        (Some(_), None) => {
            let shared = shared.clone();
            Some(Arc::new(move || {
                shared.tls.as_ref()?.current().monitoring.clone()
            }))
        }
        _ => None,
    };
    let (http_port, https_port) = if tls.is_some() { (0, port) } else { (port, 0) };
    let source = Arc::new(ShardSnapshots {
        shared: shared.clone(),
        admin: admin.to_vec(),
        http_port,
        https_port,
    });
    MonitorServer::start(listener, &options.http_base_path, source, tls)
        .map_err(|e| format!("Can't start monitoring: {e}"))
}

/// The system account's view of the monitoring endpoints, asking the
/// shards as the HTTP monitor does. The ports are the configured ones.
pub fn system_api(
    shared: &Arc<BrokerShared>,
    admin: &[AdminSender],
) -> Arc<super::system_api::SystemApi> {
    let options = &shared.options;
    let source = Arc::new(ShardSnapshots {
        shared: shared.clone(),
        admin: admin.to_vec(),
        http_port: options.http_port.unwrap_or(0),
        https_port: options.https_port.unwrap_or(0),
    });
    Arc::new(super::system_api::SystemApi::new(source))
}

fn display_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Answers monitoring requests by asking every shard over its admin
/// channel; each shard replies between two units of work, as soon as the
/// channel's doorbell wakes it, so its counters are exact at that moment.
struct ShardSnapshots {
    shared: Arc<BrokerShared>,
    admin: Vec<AdminSender>,
    http_port: u16,
    https_port: u16,
}

/// A shard answers at once (within one housekeeping tick without its
/// doorbell); allow for a loaded host.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

impl SnapshotSource for ShardSnapshots {
    fn snapshot(&self, request: SnapshotRequest) -> Option<MonitorSnapshot> {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(self.admin.len());
        for tx in &self.admin {
            tx.send(AdminCommand::Snapshot(request, reply_tx.clone()))
                .ok()?;
        }
        let deadline = Instant::now() + SNAPSHOT_TIMEOUT;
        let mut shards = Vec::with_capacity(self.admin.len());
        while shards.len() < self.admin.len() {
            shards.push(reply_rx.recv_deadline(deadline).ok()?);
        }
        shards.sort_by_key(|s: &ShardSnapshot| s.shard);
        // The configuration as last loaded (a reload shows in `/varz`).
        let loaded = self.shared.loaded();
        let options = &*loaded.options;
        let identity = &*loaded.identity;
        let server = ServerFacts {
            server_id: identity.server_id.clone(),
            server_name: identity.server_name.clone(),
            // As nats-server: what clients are told (`client_advertise`).
            host: identity.host.clone(),
            port: identity.port,
            http_host: options
                .http_host
                .clone()
                .unwrap_or_else(|| options.host.clone()),
            http_port: self.http_port,
            https_port: self.https_port,
            http_base_path: options.http_base_path.clone(),
            max_connections: options.max_connections as u64,
            max_subscriptions: options.max_subscriptions as u64,
            ping_interval: options.ping_interval,
            ping_max: options.ping_max,
            max_control_line: options.max_control_line as u64,
            max_payload: options.max_payload as u64,
            max_pending: options.max_pending as u64,
            auth_required: options.auth.auth_required(),
            auth_timeout: options.auth.timeout,
            tls_required: identity.tls.required,
            tls_verify: identity.tls.verify,
            tls_timeout: options
                .tls
                .as_ref()
                .map_or(crate::config::tls::DEFAULT_TLS_TIMEOUT, |t| t.timeout()),
            write_deadline: options.write_deadline,
            start: self.shared.started,
            config_load_time: loaded.at,
            tags: options.server_tags.clone(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            shards: self.shared.shard_count as u64,
            total_connections: self.shared.total_connections.load(Ordering::Relaxed),
            mem: 0,
            cpu: 0.0,
            cluster: self.shared.cluster.as_ref().map(|settings| {
                let configured = options.cluster.clone().unwrap_or_default();
                ClusterFacts {
                    name: settings.name.clone(),
                    host: configured.host.clone(),
                    port: self.shared.route_addr.map_or(0, |a| a.port()),
                    auth_timeout: configured.auth_timeout,
                    urls: configured.routes.iter().map(|r| r.host_port()).collect(),
                    tls_timeout: configured
                        .tls
                        .as_ref()
                        .map_or(crate::config::tls::DEFAULT_TLS_TIMEOUT, |t| t.timeout()),
                    tls: configured.tls.is_some(),
                }
            }),
        };
        Some(MonitorSnapshot {
            now: SystemTime::now(),
            server,
            shards,
        })
    }
}
