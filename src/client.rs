//! Per-connection state of one client, owned by the shard the client lives on.
//!
//! Concurrency contract: a `ClientConnection` is touched only by its shard —
//! the reader task, the writer task, the ring consumers delivering to it and
//! the housekeeping timer — and never across an `.await` (all of them borrow
//! the shard's broker state for one synchronous step at a time).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use shards::sync::WaitList;

use crate::connect::ClientOptions;
use crate::outbound_queue::OutboundQueue;
use crate::sublist::SubKey;

/// Why a connection was closed; the texts are nats-server's `/connz` reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ParseError,
    StaleConnection,
    ProtocolViolation,
    BadClientProtocolVersion,
    MaxConnectionsExceeded,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    NoRespondersRequiresHeaders,
    AuthenticationFailure,
    ServerShutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::AuthenticationFailure => "Authentication Failure",
            CloseReason::ServerShutdown => "Server Shutdown",
        }
    }

    /// Slow-consumer closes drop what is queued; every other close first
    /// tries to hand the queued bytes (an `-ERR`, say) to the socket.
    pub fn discards_pending(self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
        )
    }
}

/// Longest sid kept inline in a [`Sid`].
const SID_INLINE: usize = 22;

/// A subscription id as the client chose it: an opaque token, nearly always
/// a few digits. It is stored twice per subscription (in the subscription,
/// for every MSG line, and as the key of its connection's sid map), so short
/// ones live inline instead of in two heap allocations.
#[derive(Clone)]
pub enum Sid {
    Inline { len: u8, bytes: [u8; SID_INLINE] },
    Boxed(Box<[u8]>),
}

impl Sid {
    pub fn new(sid: &[u8]) -> Sid {
        if sid.len() <= SID_INLINE {
            let mut bytes = [0u8; SID_INLINE];
            bytes[..sid.len()].copy_from_slice(sid);
            Sid::Inline {
                len: sid.len() as u8,
                bytes,
            }
        } else {
            Sid::Boxed(sid.into())
        }
    }
}

impl std::ops::Deref for Sid {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Sid::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Sid::Boxed(bytes) => bytes,
        }
    }
}

// Hash and equality are the byte string's, so the sid map can be searched
// with a plain `&[u8]` (`Borrow`).
impl std::borrow::Borrow<[u8]> for Sid {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Sid {
    fn eq(&self, other: &Sid) -> bool {
        **self == **other
    }
}

impl Eq for Sid {}

impl std::hash::Hash for Sid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sid({})", self.escape_ascii())
    }
}

/// One subscription, owned by the shard of its connection. The owner is the
/// only place its delivery count lives, which keeps auto-unsubscribe exact.
#[derive(Debug)]
pub struct Subscription {
    /// Key of the owning connection in the shard's connection table.
    pub conn: usize,
    pub sid: Sid,
    /// Boxed slices rather than `Bytes` (two words each instead of four):
    /// this struct is per subscription, and the shared form is only needed
    /// on the rare interest broadcasts.
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    /// `UNSUB <sid> <max>`: remove after this many deliveries in total.
    pub max: Option<u64>,
    pub delivered: u64,
}

pub struct ClientConnection {
    pub client_id: u64,
    pub fd: RawFd,
    pub client_ip: String,
    pub client_port: u16,
    pub options: ClientOptions,
    /// A PONG has been sent: from now on a proto-1 client may receive an
    /// asynchronous INFO (lame duck) without breaking its handshake.
    pub first_pong_sent: bool,

    /// Bytes queued for the socket and not yet handed to the writer.
    pub outbound: OutboundQueue,
    /// Bytes the writer task is writing right now.
    pub in_flight: usize,
    /// The writer task owns flushing (the socket did not take everything);
    /// direct sends from the flush path must wait behind it.
    pub writer_busy: bool,
    /// When the writer last started waiting for the socket (write deadline).
    pub write_started: Option<Instant>,
    /// Already in the shard's dirty list.
    pub dirty: bool,
    pub writer_wake: Rc<WaitList>,

    /// sid → subscription key.
    pub subs: HashMap<Sid, SubKey>,

    /// Server PINGs not yet answered.
    pub pings_out: u32,
    pub next_ping: Instant,
    pub first_ping_done: bool,
    /// The client published, (un)subscribed or pinged since the last ping check.
    pub active: bool,
    /// Since its last PONG the client sent something to other shards (an
    /// interest change or a message for remote subscribers): its next PONG
    /// waits until every shard has applied what this shard sent so far, so
    /// that PING/PONG keeps meaning "everything before it took effect".
    pub forwarded: bool,

    pub closing: Option<CloseReason>,

    /// For `/connz`: when the client connected and last sent something,
    /// the round trip of the latest answered server PING, and traffic.
    pub started: Instant,
    pub last_activity: Instant,
    pub ping_sent_at: Option<Instant>,
    pub rtt: Option<std::time::Duration>,
    pub traffic: Traffic,

    /// How long publishers have been held back for this connection since its
    /// backlog last drained (see `ShardBroker::take_stall`).
    pub stall_spent: std::time::Duration,
    /// When the writer began handing its current chunk to the socket: how
    /// long that takes tells a reading client from a stopped one (see
    /// `ShardBroker::draining`).
    pub chunk_started: Instant,
}

/// Messages and payload bytes (headers included) a client published and was
/// sent, as nats-server counts them for `/connz`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl ClientConnection {
    pub fn pending_bytes(&self) -> usize {
        self.outbound.len() + self.in_flight
    }

    /// The writer task (re)starts on what is queued: the write deadline and
    /// the draining window both count from `now`.
    pub fn start_write(&mut self, now: Instant) {
        self.write_started = Some(now);
        self.chunk_started = now;
    }
}

#[cfg(test)]
mod tests {
    use super::Sid;
    use std::collections::HashMap;

    #[test]
    fn sid_inline_and_boxed_look_up_by_bytes() {
        let long = b"a-very-long-subscription-id-0123456789";
        let mut map = HashMap::new();
        map.insert(Sid::new(b"17"), 1);
        map.insert(Sid::new(long), 2);
        map.insert(Sid::new(b""), 3);
        assert!(matches!(Sid::new(b"17"), Sid::Inline { .. }));
        assert!(matches!(Sid::new(long), Sid::Boxed(_)));
        assert_eq!(map.get(&b"17"[..]), Some(&1));
        assert_eq!(map.get(&long[..]), Some(&2));
        assert_eq!(map.get(&b""[..]), Some(&3));
        assert_eq!(map.get(&b"1"[..]), None);
        assert_eq!(&*Sid::new(b"abc-XYZ_1"), b"abc-XYZ_1");
        assert_eq!(&*Sid::new(&[b'x'; 22]), &[b'x'; 22][..]);
        assert_eq!(&*Sid::new(&[b'y'; 23]), &[b'y'; 23][..]);
    }
}
