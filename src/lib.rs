//! percore: a NATS-protocol broker. This crate holds the NATS semantics
//! (parsing, subjects, subscription replica, routing, per-connection state);
//! it never touches an async runtime directly. The per-core runtime lives in
//! the `shards` crate.

pub mod config;
