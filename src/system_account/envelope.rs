//! What every message the server sends on the system account carries:
//! nats-server's `ServerInfo` (`{"name","host","id","ver","seq",
//! "jetstream","time"}`), numbered by one sequence for the whole server,
//! and the event ids of typed events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use percore_core::info::ADVERTISED_VERSION;

/// Who sends: the server's identity as `ServerInfo` names it.
#[derive(Debug, Clone)]
pub struct Responder {
    pub name: String,
    pub host: String,
    pub id: String,
}

/// nats-server's `ServerInfo`, fields in its order.
#[derive(serde::Serialize)]
struct ServerInfo<'a> {
    name: &'a str,
    host: &'a str,
    id: &'a str,
    ver: &'a str,
    seq: u64,
    jetstream: bool,
    time: String,
}

/// nats-server numbers every message it sends on the system account.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The `"server"` object of the next message, sent at `now`.
pub fn server_info(me: &Responder, now: SystemTime) -> String {
    let info = ServerInfo {
        name: &me.name,
        host: &me.host,
        id: &me.id,
        ver: ADVERTISED_VERSION,
        seq: SEQUENCE.fetch_add(1, Ordering::Relaxed) + 1,
        jetstream: false,
        time: crate::monitor::format::rfc3339_nano(now),
    };
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_string(&info).unwrap_or_default()
}

static EVENT_COUNTER: AtomicU64 = AtomicU64::new(0);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A 22-character base62 id, unique within this process and unlikely to
/// repeat across servers, like the NUIDs nats-server gives events.
pub fn event_id() -> String {
    let count = EVENT_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Process id and start time in the high part, the counter in the low:
    // distinct per event here, and per process elsewhere.
    let mut value: u128 =
        (u128::from(std::process::id()) << 96) ^ (nanos << 32) ^ u128::from(count);
    let mut id = [b'0'; 22];
    for slot in id.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&id).into_owned()
}
