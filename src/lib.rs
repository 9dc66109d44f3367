//! percore: a NATS-protocol broker, thread-per-core on io_uring.
//!
//! This crate holds the NATS semantics and never imports an async runtime:
//! - [`protocol`]: the zero-copy client protocol parser;
//! - [`subject`], [`sublist`]: subjects, wildcards and the per-shard
//!   subscription index with its match cache;
//! - [`connect`], [`info`], [`outbound`]: the handshake and what the server writes,
//!   [`outbound_queue`]: how it waits for the socket;
//! - [`client`], [`shard_broker`]: per-connection state and the per-shard
//!   state machine (routing, interest replication, slow consumers, pings);
//! - [`shard_batch`]: what shards send each other over their rings;
//! - [`server`]: the glue that runs all of it on the `shards` runtime;
//! - [`config`]: command line and config file, as nats-server's;
//!   [`signal_command`]: `--signal`, for a server already running;
//! - [`monitor`]: the HTTP monitoring endpoints (`-m`);
//! - [`logging`]: nats-server's log line format; [`calendar`]: UTC dates
//!   for it and for the monitor.

#![deny(clippy::await_holding_refcell_ref)]

pub mod calendar;
pub mod client;
pub mod config;
pub mod connect;
pub mod info;
pub mod logging;
pub mod monitor;
pub mod outbound;
pub mod outbound_queue;
pub mod protocol;
pub mod read_buffer;
pub mod rng;
pub mod server;
pub mod shard_batch;
pub mod shard_broker;
pub mod shared;
pub mod signal_command;
pub mod subject;
pub mod sublist;
