//! The seam between a shard's state machine and the runtime that runs it.
//!
//! The state machine ([`crate::shard::ShardBroker`]) never makes a syscall,
//! never reads a clock and never parks: it asks its [`ShardIo`] to send,
//! shut a socket down or wake a waiting task, and it is handed the time
//! (`now`) by whoever calls it. On glommio the binary implements this trait
//! over non-blocking socket calls and shard-local wait lists; the
//! deterministic simulation (`tests/simulation`) implements it over fake
//! sockets. The broker is generic over it (no `dyn`), so the glommio path
//! compiles to the direct calls it made before the seam existed.

use std::io::{self, IoSlice};

/// What a task of the shard may be waiting for; the state machine signals
/// it when it may have happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A peer acknowledged batches: PINGs waiting on the cross-shard
    /// barrier may answer.
    Barrier,
    /// A connection's backlog shrank: publishers stalled for a slow reader
    /// may go on.
    Drained,
}

pub trait ShardIo {
    /// One connection's socket as the runtime knows it.
    type Endpoint;
    /// An accepted socket on its way to the shard that will own it; rides
    /// the ring mesh, so it must be `Send`.
    type Handoff: Send;

    /// A non-blocking send: how many bytes the socket took (0 if full).
    fn send(&self, endpoint: &Self::Endpoint, bytes: &[u8]) -> io::Result<usize>;
    /// A non-blocking vectored send, in order, as far as the socket takes it.
    fn send_vectored(&self, endpoint: &Self::Endpoint, slices: &[IoSlice<'_>])
        -> io::Result<usize>;
    /// Shuts both directions down, so the connection's reader sees EOF.
    fn shutdown(&self, endpoint: &Self::Endpoint);
    /// The connection's writer task has work (or must end).
    fn wake_writer(&self, endpoint: &Self::Endpoint);
    /// Wakes the shard's tasks waiting for `event`.
    fn wake(&self, event: Wake);
}
