//! The settings one shard works with, taken from the server's options.
//!
//! Each shard owns its own copy: nothing on the per-message path reads
//! shared memory. A reload hands every shard a new copy between two units
//! of work ([`crate::shard::ShardBroker::replace_limits`]); connections
//! then see the new values from their next operation on.

use std::sync::Arc;
use std::time::Duration;

use crate::account::{AccountTable, ActiveConnections};
use crate::auth::AuthPolicy;
use crate::route::ClusterSettings;

#[derive(Debug, Clone, PartialEq)]
pub struct ShardLimits {
    pub max_payload: usize,
    pub max_control_line: usize,
    /// Unsent bytes per connection before it is cut off as a slow consumer.
    pub max_pending: usize,
    /// Subscriptions per connection; 0 = unlimited.
    pub max_subscriptions: usize,
    /// Most tokens in a client's subscription subject (0: no limit).
    pub max_sub_tokens: u8,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    /// `no_header_support`: HPUB is refused even from clients that ask.
    pub no_header_support: bool,
    /// Who may connect and what they may do.
    pub auth: Arc<AuthPolicy>,
    /// The accounts, their exports and imports.
    pub accounts: Arc<AccountTable>,
    /// Connections per account, server-wide: the same one for every shard
    /// and across reloads.
    pub active_connections: Arc<ActiveConnections>,
    /// `cluster`: set when this server joins a cluster (routes).
    pub cluster: Option<Arc<ClusterSettings>>,
    /// `disable_sublist_cache`: no match results are cached (taken at
    /// start only; a reload cannot change it).
    pub no_sublist_cache: bool,
}

impl Default for ShardLimits {
    /// nats-server 2.9's defaults (`const.go`).
    fn default() -> Self {
        ShardLimits {
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_pending: 64 * 1024 * 1024,
            max_subscriptions: 0,
            max_sub_tokens: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            no_header_support: false,
            auth: Arc::new(AuthPolicy::default()),
            accounts: Arc::new(AccountTable::default()),
            active_connections: Arc::new(ActiveConnections::default()),
            cluster: None,
            no_sublist_cache: false,
        }
    }
}
