//! percore: a NATS-protocol broker, thread-per-core on io_uring.
//!
//! This crate is the glue. The NATS semantics live in `percore-core`
//! (`src/core/`, re-exported here under their module names), which the
//! compiler keeps free of any runtime; the per-core runtime lives in
//! `shards` (`shards/`), the only crate that touches glommio or makes
//! syscalls on the message path. Here:
//! - [`server`]: starts the shards and runs, on each, the tasks that feed
//!   its state machine; [`shard_io`]: the state machine's I/O seam on
//!   glommio sockets and wait lists;
//! - [`config`]: command line and config file, as nats-server's;
//!   [`signal_command`]: `--signal`, for a server already running;
//! - [`monitor`]: the HTTP monitoring endpoints (`-m`);
//! - [`logging`]: nats-server's log line format, the sink of the core's
//!   log facade; [`calendar`]: UTC dates for it and for the monitor;
//! - [`server_id`]: the random server id; [`admin`]: the commands the main
//!   and monitor threads send a shard; [`auth_checks`]: the slow half of
//!   authentication (bcrypt, Ed25519, the nonce), run off the shards;
//!   [`tls`]: client TLS with rustls (the record layer between socket and
//!   parser, the handshake, certificates); [`ports_file`]: the listeners'
//!   URLs for launchers (`ports_file_dir`);
//! - [`system_account`]: the server's services and events on its system
//!   account; [`resolver`]: the operator-mode account resolvers that need
//!   the runtime (the `full` directory's requests, the URL resolver).

#![deny(clippy::await_holding_refcell_ref)]

pub use percore_core::{
    account, auth, connect, connection, debug, error, fatal, go_dial_error, go_duration, go_json,
    go_quote, ids, info, io, limits, mesh, outbound, outbound_queue, protocol, read_buffer, rng,
    route, shard, subject, sublist, trace, warn,
};

pub mod admin;
pub mod auth_checks;
pub use percore_core::calendar;
pub mod config;
pub mod host_report;
pub mod logging;
pub mod monitor;
pub mod ports_file;
pub mod resolver;
pub mod server;
pub mod server_id;
pub mod shard_io;
pub mod shared;
pub mod signal_command;
pub mod system_account;
pub mod tls;
