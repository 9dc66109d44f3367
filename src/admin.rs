//! What the main thread (signals) and the monitor thread ask of a shard,
//! over its crossbeam admin channel; the shard carries the commands out
//! between two units of work (`server.rs`): its admin task as soon as the
//! channel's doorbell rings, its housekeeping task at each tick otherwise.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use shards::doorbell::{doorbell, Bell, Ringer};

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

/// The sending side of one shard's admin channel: the command, then a ring
/// of the shard's doorbell so that its admin task takes the command at once
/// (a `SIGTERM`, a reload, a `/connz`) rather than at the next housekeeping
/// tick, up to 100 ms later. nats-server acts on them at once: a client it
/// drops on shutdown finds the process gone, where percore's lived on for
/// 50 ms on average (nats.py's nats-core cluster test saw the difference).
///
/// Concurrency contract: `Send + Sync + Clone`; any thread may send. The
/// command is queued before the ring, so a woken shard always finds it.
#[derive(Debug, Clone)]
pub struct AdminSender {
    commands: Sender<AdminCommand>,
    /// `None` if the socket pair could not be made: the shard then takes
    /// commands at its housekeeping tick only.
    bell: Option<Arc<Ringer>>,
}

/// The shard's side: the commands, and the bell its admin task waits on.
#[derive(Debug)]
pub struct AdminInbox {
    pub commands: Receiver<AdminCommand>,
    pub bell: Option<Bell>,
}

/// The shard is gone (its channel closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardGone;

impl AdminSender {
    pub fn send(&self, command: AdminCommand) -> Result<(), ShardGone> {
        self.commands.send(command).map_err(|_| ShardGone)?;
        if let Some(bell) = &self.bell {
            bell.ring();
        }
        Ok(())
    }
}

/// One shard's admin channel.
pub fn admin_channel() -> (AdminSender, AdminInbox) {
    let (commands_tx, commands_rx) = crossbeam_channel::unbounded();
    let (ringer, bell) = match doorbell() {
        Ok((ringer, bell)) => (Some(Arc::new(ringer)), Some(bell)),
        Err(e) => {
            crate::warn!("Admin commands wait for the housekeeping tick: no doorbell ({e})");
            (None, None)
        }
    };
    (
        AdminSender {
            commands: commands_tx,
            bell: ringer,
        },
        AdminInbox {
            commands: commands_rx,
            bell,
        },
    )
}
