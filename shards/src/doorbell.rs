//! A doorbell another thread rings to wake one task of a shard at once,
//! instead of at that task's next timer.
//!
//! The main thread (signals) and the monitor thread hand a shard commands
//! over a channel the shard drains from a periodic task; without a wake-up
//! a `SIGTERM` or a `/connz` waited for that task's next period. The bell
//! is one end of a Unix socket pair: ringing writes a byte, the shard's
//! task awaits the other end through glommio's io_uring like any socket.
//!
//! Concurrency contract: [`Ringer`] is `Send + Sync`; any thread may ring
//! it any number of times, and rings coalesce (a waiter learns "rung at
//! least once since the last wait", never how often). It never blocks: a
//! full socket buffer means the bell is already ringing. [`Bell`] is
//! `Send` until it reaches its shard ([`Bell::into_shard`], called on that
//! shard); the [`ShardBell`] is then shard-local and one task awaits it.
//! A ring that races with the waiter's wake-up is never lost: the byte
//! stays in the socket until read.

use std::io::{self, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;

use futures_lite::AsyncReadExt;

/// Builds a connected ringer and bell.
pub fn doorbell() -> io::Result<(Ringer, Bell)> {
    let (ring_end, bell_end) = UnixStream::pair()?;
    ring_end.set_nonblocking(true)?;
    Ok((Ringer(ring_end), Bell(bell_end)))
}

/// The side that rings (any thread).
#[derive(Debug)]
pub struct Ringer(UnixStream);

impl Ringer {
    /// Wakes the bell's waiter. Errors are ignored: `WouldBlock` means
    /// unread rings are already queued, anything else that the shard is
    /// gone.
    pub fn ring(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

/// The waiting side, before it reaches its shard.
#[derive(Debug)]
pub struct Bell(UnixStream);

impl Bell {
    /// Registers the bell with the current shard's reactor; call it from a
    /// task of the shard that will wait (glommio panics outside one).
    pub fn into_shard(self) -> ShardBell {
        // SAFETY: the descriptor comes from `into_raw_fd`, so glommio's
        // stream is its only owner from here on.
        let stream = unsafe { glommio::net::UnixStream::from_raw_fd(self.0.into_raw_fd()) };
        ShardBell(stream)
    }
}

/// The waiting side on its shard.
#[derive(Debug)]
pub struct ShardBell(glommio::net::UnixStream);

impl ShardBell {
    /// Waits until the bell rings (or has rung since the last call); false
    /// once the ringer is gone, after which the bell never rings again.
    pub async fn rung(&mut self) -> bool {
        // Several rings queued since the last wait are taken in one read.
        let mut rings = [0u8; 64];
        matches!(self.0.read(&mut rings).await, Ok(n) if n > 0)
    }
}
