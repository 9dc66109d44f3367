//! HTTP monitoring (`-m <port>`): nats-server's `/varz`, `/connz`, `/subsz`,
//! `/routez` and `/healthz`, served from a plain thread off the shards.

pub mod snapshot;
