//! `shards`: the thread-per-core substrate of percore, and the only crate that
//! imports glommio.
//!
//! It knows nothing about NATS. It offers:
//! - [`pool`]: one pinned (or unbound) glommio executor per shard, started with
//!   a clear error instead of a panic when the host lacks io_uring or memlock;
//! - [`mesh`]: the full mesh of SPSC rings, one per ordered pair of shards,
//!   carrying batches, with a FIFO staging queue per destination ([`RingOutbox`]);
//! - [`net`]: the listener (no `SO_REUSEPORT`, so a second broker on the same
//!   port fails) and the socket driver (`Connection`);
//! - [`host_check`]: the host checks behind `percore --check-host`;
//! - [`rlimit`]: raising a soft resource limit within the hard one;
//! - [`sync`]: a shard-local wait list to park tasks until a condition holds;
//! - [`doorbell`]: a bell another thread rings to wake one shard task at once;
//! - [`task`] and [`timer`]: spawning, cooperative yielding, sleeping.
//!
//! Everything returned by this crate is shard-local (`!Send`) unless it says
//! otherwise; the types that cross threads are [`mesh::MeshPorts`] (before
//! connection), [`net::HandOff`], and [`doorbell::Ringer`] /
//! [`doorbell::Bell`] (the latter until it reaches its shard).

#![deny(clippy::await_holding_refcell_ref)]

pub mod doorbell;
pub mod host_check;
pub mod mesh;
pub mod net;
pub mod pool;
pub mod preflight;
pub mod rlimit;
pub mod sync;
pub mod task;
pub mod timer;

pub use mesh::{ConnectedMesh, MeshPorts, RingMesh, RingOutbox};
pub use pool::{PoolConfig, ShardPool, ShardStartError};

// Shards are numbered `0..shard_count` here (plain `usize` indexes into
// per-shard tables); the broker's typed `ShardId` is defined once, in
// percore-core, which this crate knows nothing about. Not a CPU number and
// not glommio's executor id (1-based, in thread start order).
