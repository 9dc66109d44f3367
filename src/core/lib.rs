//! percore-core: the NATS semantics of percore, free of any runtime.
//!
//! This crate depends on neither glommio nor `shards` nor libc, so the
//! compiler keeps it pure: it makes no syscall, reads no clock and spawns
//! nothing. The binary runs it on glommio shards; the simulation in
//! `tests/` runs several shards of it in one thread with fake sockets and
//! fake time, through the same [`io::ShardIo`] seam.
//!
//! - [`protocol`]: the zero-copy client protocol parser; [`connect`] and
//!   [`info`]: the handshake; [`outbound`]: what the server writes;
//! - [`subject`], [`sublist`]: subjects, wildcards and the per-shard
//!   subscription index with its match cache;
//! - [`connection`]: one connection's state (output queue and its rules,
//!   liveness, subscriptions), [`outbound_queue`], [`read_buffer`];
//! - [`shard`]: the per-shard state machine, one concern per file;
//! - [`mesh`]: what shards send each other over their rings;
//! - [`io`]: the seam to the runtime; [`limits`]: a shard's own settings;
//! - [`ids`]: typed ids; [`rng`]: the seeded per-shard generator;
//!   [`log`]: the log facade, [`payload_trace`]: traced payloads;
//!   [`snapshot`]: what monitoring reads;
//!   [`delivery_latency`]: the per-shard ingress-to-write histogram;
//! - [`route`]: cluster settings and the route handshake lines; [`go_json`],
//!   [`go_quote`], [`go_duration`], [`go_host_port`]: Go's formats where
//!   nats-server's output or input shows them.

pub mod account;
pub mod auth;
pub mod calendar;
pub mod connect;
pub mod connection;
pub mod delivery_latency;
pub mod go_dial_error;
pub mod go_duration;
pub mod go_host_port;
pub mod go_json;
pub mod go_quote;
pub mod ids;
pub mod info;
pub mod io;
pub mod jwt;
pub mod limits;
pub mod log;
pub mod mesh;
pub mod outbound;
pub mod outbound_queue;
pub mod payload_trace;
pub mod protocol;
pub mod read_buffer;
pub mod rng;
pub mod route;
pub mod route_permissions;
pub mod shard;
pub mod snapshot;
pub mod subject;
pub mod sublist;
