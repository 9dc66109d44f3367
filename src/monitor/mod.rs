//! HTTP monitoring (`-m <port>`): nats-server's `/varz`, `/connz`, `/subsz`,
//! `/routez` and `/healthz` (plus the empty `/gatewayz`, `/leafz`,
//! `/accountz` and the `/` index), served from plain threads off the shards.
//!
//! Layout:
//! - [`snapshot`]: the data the shards hand over (filled elsewhere);
//! - `server`: listener, accept thread, one thread per connection;
//! - `http`: request parsing with limits, query decoding, response writing;
//! - `routes`: base path, endpoint table, `http_req_stats`, JSONP;
//! - `varz`, `connz`, `subsz`, `unclustered`: one module per body;
//! - `params`: query parameters with nats-server's 400 texts;
//! - `format`: Go's time, duration and float forms;
//! - `process`: RSS and CPU of this process from `/proc`.

mod format;
mod http;
mod params;
mod process;
pub mod snapshot;


/// Pretty JSON with two-space indentation, as nats-server's
/// `json.MarshalIndent(v, "", "  ")`.
#[allow(dead_code)]
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string())
}
