//! State shared by all shards: the options and server identity (read-only
//! after start) and the few counters that must be global. Only the accept
//! and close paths touch the atomics, never the per-message path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use crate::account::ActiveConnections;
use crate::config::Options;
use crate::info::ServerIdentity;
use crate::route::ClusterSettings;
use crate::tls::{RouteTls, TlsAcceptor};

pub struct BrokerShared {
    pub options: Options,
    pub identity: Arc<ServerIdentity>,
    pub shard_count: usize,
    /// Open client connections, for `max_connections`.
    pub live_connections: AtomicUsize,
    /// Connections per account, for accounts' `max_connections`.
    pub account_connections: Arc<ActiveConnections>,
    /// Connections accepted since start (`/varz` `total_connections`).
    pub total_connections: AtomicU64,
    /// When the server started (`/varz` `start`).
    pub started: SystemTime,
    /// The configuration as last loaded, at start or by a reload: what
    /// `/varz` reports (nats-server shows reloaded limits and the reload's
    /// `config_load_time`).
    pub loaded: RwLock<LoadedConfig>,
    /// The client port's TLS, if configured (reload swaps its settings).
    pub tls: Option<TlsAcceptor>,
    /// `cluster { tls {} }`, if configured.
    pub route_tls: Option<RouteTls>,
    /// The cluster as started (None: not clustered).
    pub cluster: Option<Arc<ClusterSettings>>,
    /// Where the route listener is bound.
    pub route_addr: Option<SocketAddr>,
    /// A shard stored an account JWT (operator mode, `full` resolver): the
    /// main thread rebuilds the accounts and reloads every shard.
    pub claims_changed: crossbeam_channel::Sender<()>,
}

/// One load of the configuration (see [`BrokerShared::loaded`]).
#[derive(Clone)]
pub struct LoadedConfig {
    pub options: Arc<Options>,
    /// INFO's identity as this load advertises it (`tls_required`, ...).
    pub identity: Arc<ServerIdentity>,
    /// `/varz` `config_load_time`.
    pub at: SystemTime,
}

impl BrokerShared {
    /// The configuration as last loaded.
    pub fn loaded(&self) -> LoadedConfig {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A reload took effect: `/varz` shows it from now on.
    pub fn set_loaded(&self, options: &Options, identity: Arc<ServerIdentity>) {
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = LoadedConfig {
            options: Arc::new(options.clone()),
            identity,
            at: SystemTime::now(),
        };
    }
}
