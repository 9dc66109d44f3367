//! The server on its system account, as nats-server 2.9 is: the envelope
//! every message it sends there carries (`envelope`), the services it
//! answers (`services`: `$SYS.REQ.SERVER.*`, `$SYS.REQ.ACCOUNT.*`), and the
//! connection events it publishes (`events`). The shards only collect
//! requests and events (`percore_core::shard::system_requests`,
//! `system_events`); answering and rendering happen here, off the shards.

pub mod envelope;
pub mod events;
pub mod services;
