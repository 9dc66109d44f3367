//! The JSON of the account connection events the shards collect
//! (`percore_core::shard::system_events`): nats-server 2.9's
//! `ConnectEventMsg` and `DisconnectEventMsg`, fields in its order.

use std::time::SystemTime;

use percore_core::shard::{SystemEvent, SystemEventKind};
use percore_core::snapshot::ConnectionSnapshot;
use serde::Serialize;

use crate::monitor::format::{duration_nanos, rfc3339_nano};
use crate::monitor::statsz::DataStats;
use crate::system_account::envelope::{event_id, server_info, Responder};

const CONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_connect";
const DISCONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_disconnect";

/// nats-server's `ClientInfo`, the fields percore knows.
#[derive(Serialize)]
struct ClientInfo<'a> {
    start: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    host: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    id: u64,
    acc: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    lang: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    ver: &'a str,
    /// Nanoseconds (Go's `time.Duration`), omitted when unknown.
    #[serde(skip_serializing_if = "is_zero")]
    rtt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    kind: &'static str,
    client_type: &'static str,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<'a> ClientInfo<'a> {
    fn of(conn: &'a ConnectionSnapshot, with_stop: bool) -> ClientInfo<'a> {
        ClientInfo {
            start: rfc3339_nano(conn.start),
            host: &conn.ip,
            id: conn.cid,
            acc: &conn.account,
            user: conn.authorized_user.as_deref().filter(|u| !u.is_empty()),
            name: &conn.name,
            lang: &conn.lang,
            ver: &conn.version,
            rtt: if with_stop {
                conn.rtt.map_or(0, duration_nanos)
            } else {
                0
            },
            stop: if with_stop {
                conn.stop.map(rfc3339_nano)
            } else {
                None
            },
            kind: "Client",
            client_type: "nats",
        }
    }
}

/// The event's payload, sent at `now`.
pub fn render(event: &SystemEvent, me: &Responder, now: SystemTime) -> String {
    let conn = &event.connection;
    let (kind, with_stop) = match event.kind {
        SystemEventKind::Connect => (CONNECT_TYPE, false),
        SystemEventKind::Disconnect => (DISCONNECT_TYPE, true),
    };
    let client = serde_json::to_string(&ClientInfo::of(conn, with_stop)).unwrap_or_default();
    let mut out = format!(
        "{{\"type\":\"{kind}\",\"id\":\"{}\",\"timestamp\":\"{}\",\"server\":{},\"client\":{client}",
        event_id(),
        rfc3339_nano(now),
        server_info(me, now),
    );
    if event.kind == SystemEventKind::Disconnect {
        // `sent` is what the client sent (the server's in), as nats-server.
        let sent = DataStats {
            msgs: conn.in_msgs,
            bytes: conn.in_bytes,
        };
        let received = DataStats {
            msgs: conn.out_msgs,
            bytes: conn.out_bytes,
        };
        let reason = conn.reason.as_deref().unwrap_or("");
        out.push_str(&format!(
            ",\"sent\":{},\"received\":{},\"reason\":{}",
            serde_json::to_string(&sent).unwrap_or_default(),
            serde_json::to_string(&received).unwrap_or_default(),
            serde_json::to_string(reason).unwrap_or_default(),
        ));
    }
    out.push('}');
    // As Go's encoding/json writes it (`<`, `>`, `&` escaped, ...).
    crate::go_json::go_json_string(out)
}
