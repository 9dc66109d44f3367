//! What the main thread (signals) and the monitor thread ask of a shard,
//! over its crossbeam admin channel; the shard's housekeeping task carries
//! the commands out between two units of work (`server.rs`).

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::info::ServerIdentity;
use crate::limits::ShardLimits;
use percore_core::snapshot::{ShardSnapshot, SnapshotRequest};

/// Commands from the main thread (or the monitor thread) to a shard.
#[derive(Debug, Clone)]
pub enum AdminCommand {
    LameDuck,
    Shutdown,
    /// Send this shard's monitoring snapshot back on the channel.
    Snapshot(SnapshotRequest, Sender<ShardSnapshot>),
    /// New settings (a config reload): the shard swaps its own copy between
    /// two units of work and re-checks its connections' authentication.
    /// Parsers of open connections keep the control-line and payload limits
    /// they started with.
    Reload(ShardLimits, Arc<ServerIdentity>),
}
