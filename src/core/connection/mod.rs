//! One connection as its shard sees it, whatever its kind.
//!
//! Concurrency contract: a [`Connection`] is touched only by its shard —
//! the reader task, the writer task, the ring consumers delivering to it and
//! the housekeeping timer — and never across an `.await` (all of them borrow
//! the shard's state machine for one synchronous step at a time).

mod close_reason;
mod liveness;
mod output;
mod peer_addr;
mod sid;
mod sid_map;
mod table;
mod tls;

pub use close_reason::CloseReason;
pub use liveness::{Liveness, PingCheck};
pub use output::{Flushed, OutputState, STALL_BUDGET, STALL_PROGRESS_WINDOW};
pub use peer_addr::PeerAddr;
pub use sid::Sid;
pub use sid_map::SidMap;
pub use table::ConnTable;
pub use tls::{PeerCert, TlsState};

use std::num::NonZeroU64;
use std::time::Instant;

use crate::auth::{AuthMethod, Identity, PermissionCheck, SlowCheck, UserLimits};
use crate::connect::ClientOptions;
use crate::ids::{AccountId, ClientId, ConnKey};

/// What is at the other end of a connection, which decides how it receives
/// messages. Routes (`RMSG`), leafnodes (`LMSG`) and internal subscribers
/// (callbacks) join as variants here, each with its own delivery encoding
/// in [`crate::shard::delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// A NATS client: receives `MSG` / `HMSG`.
    Client,
    /// A route to another server of the cluster: receives `RMSG` / `HMSG`
    /// with the account, at most once per message whatever number of its
    /// subscriptions match, and never a message that came from a route
    /// (the one-hop rule). Its subscriptions are the peer's `RS+`
    /// interest; its per-route state is in
    /// [`crate::shard::route_handshake`].
    Route,
}

/// Who receives what matches a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubOwner {
    /// A connection of this shard.
    Conn(ConnKey),
    /// Stream import number `import` of account `importer`: messages
    /// published on this shard in the exporter's account are published
    /// again in the importer's. Every shard installs its own, so these are
    /// never replicated and never fire for a message another shard
    /// forwarded (that shard already fired its own).
    StreamImport { importer: AccountId, import: u32 },
    /// Service import number `import` of account `importer` (the
    /// subscription sits in the importer's account, on the import's local
    /// subject): a request is published again in the exporter's account
    /// with a reply subject that comes back here. Local like stream imports.
    ServiceImport { importer: AccountId, import: u32 },
    /// Responses to this shard's service requests (`_R_.<shard prefix>.>`
    /// in an exporter's account). Replicated like a client's subscription,
    /// so a response published on any shard reaches this one.
    Responses,
    /// Requests to the server on the system account (account JWT updates,
    /// `$SYS.REQ.SERVER.PING`, `...VARZ`): collected for the runtime.
    /// Local like imports.
    SystemService,
}

/// One subscription, owned by the shard of its connection. The owner is the
/// only place its delivery count lives, which keeps auto-unsubscribe exact.
///
/// 80 bytes, one per subscription in the shard's slab, plus one heap block
/// for subject and queue name together.
#[derive(Debug)]
pub struct Subscription {
    pub owner: SubOwner,
    /// The account whose index holds it.
    pub account: AccountId,
    /// How many queue members this subscription stands for: 1, except for
    /// a route's queue interest, which carries the peer's member count
    /// (`RS+ <account> <subject> <queue> <weight>`) so that queue picks
    /// stay uniform over the members of the whole cluster.
    pub weight: u32,
    /// Where the subject ends in `names` (the queue name follows, if any).
    subject_len: u32,
    pub sid: Sid,
    /// The subject, then the queue group's name: one boxed slice for both
    /// (two words, one allocation) rather than two boxes or `Bytes`; the
    /// shared form is only needed on the rare interest broadcasts.
    names: Box<[u8]>,
    /// `UNSUB <sid> <max>`: remove after this many deliveries in total
    /// (more than were delivered when it was asked, so never 0).
    pub max: Option<NonZeroU64>,
    pub delivered: u64,
}

impl Subscription {
    /// A subscription of `owner` in `account`, nothing delivered yet. A
    /// queue name is a protocol token, never empty.
    pub fn new(
        owner: SubOwner,
        account: AccountId,
        sid: Sid,
        subject: &[u8],
        queue: Option<&[u8]>,
        weight: u32,
    ) -> Subscription {
        debug_assert!(queue.is_none_or(|q| !q.is_empty()), "an empty queue name");
        let mut names = Vec::with_capacity(subject.len() + queue.map_or(0, <[u8]>::len));
        names.extend_from_slice(subject);
        names.extend_from_slice(queue.unwrap_or_default());
        Subscription {
            owner,
            account,
            weight,
            subject_len: u32::try_from(subject.len()).unwrap_or(u32::MAX),
            sid,
            names: names.into_boxed_slice(),
            max: None,
            delivered: 0,
        }
    }

    #[inline]
    pub fn subject(&self) -> &[u8] {
        &self.names[..self.subject_len as usize]
    }

    /// The queue group's name, for a queue subscription.
    #[inline]
    pub fn queue(&self) -> Option<&[u8]> {
        let rest = &self.names[self.subject_len as usize..];
        (!rest.is_empty()).then_some(rest)
    }
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

/// Where a connection stands with authentication.
#[derive(Debug)]
pub enum AuthState {
    /// No authentication configured.
    Open,
    /// Must authenticate (CONNECT with valid credentials) by `deadline`.
    Pending { deadline: Instant },
    /// A slow check runs off the shard; the connection's input waits.
    /// Boxed: inline, every connection's state carried the pending check's
    /// space (`AuthState` was 160 bytes of an 872-byte `Connection`).
    Verifying(Box<Verification>),
    /// Authenticated.
    Done,
}

/// A login whose credentials are being checked off the shard.
#[derive(Debug)]
pub struct Verification {
    /// The check, until the runtime takes it.
    pub check: Option<SlowCheck>,
    pub identity: Identity,
    pub log: String,
    /// The authorization timeout; `None` for a later CONNECT of a client
    /// that is already in.
    pub deadline: Option<Instant>,
    /// What the CONNECT is refused for once the check passes (nats-server
    /// authenticates first).
    pub refusal_after_auth: Option<crate::connect::ConnectError>,
}

impl AuthState {
    /// The connection should have authenticated by now.
    pub fn deadline_passed(&self, now: Instant) -> bool {
        match self {
            AuthState::Pending { deadline } => now >= *deadline,
            AuthState::Verifying(verification) => verification.deadline.is_some_and(|d| now >= d),
            AuthState::Open | AuthState::Done => false,
        }
    }
}

/// `E` is the runtime's socket handle ([`crate::io::ShardIo::Endpoint`]).
pub struct Connection<E> {
    pub kind: ConnKind,
    pub client_id: ClientId,
    pub account: AccountId,
    /// Counted in its account's server-wide connections (given back when
    /// it goes).
    pub counted_in_account: bool,
    /// Its account's `max_payload`, when the account has one.
    pub account_max_payload: Option<u64>,
    /// A JWT user's own limits (`nats.subs`, `nats.payload`), on top of
    /// its account's.
    pub user_limits: UserLimits,
    /// A JWT user must go at this moment (its `exp` or the end of its time
    /// window): `-ERR 'User Authentication Expired'`.
    pub auth_expires: Option<Instant>,
    /// A JWT user's `iat`: an account update revoking keys issued at or
    /// before it cuts the connection.
    pub jwt_issued_at: i64,
    /// A JWT user's token and names, for `/connz?auth=1`.
    pub jwt_info: Option<std::sync::Arc<crate::auth::JwtInfo>>,
    /// Its account's JWT expires at this moment (`-ERR 'Account
    /// Authentication Expired'`).
    pub account_expires: Option<Instant>,
    pub endpoint: E,
    pub ip: String,
    pub port: u16,
    pub options: ClientOptions,
    pub auth: AuthState,
    /// The NKey challenge sent in INFO, if any.
    pub nonce: Option<String>,
    /// What its CONNECTs claimed (each decoded over the one before): checked
    /// again by a later CONNECT, and shown by `/connz?auth=1`. `None` when
    /// they named nobody.
    pub credentials: Option<Box<crate::auth::Credentials>>,
    /// How it authenticated (a reload re-checks that), and as whom
    /// (`/connz` `authorized_user`).
    pub auth_method: AuthMethod,
    /// The user's permissions, if it has any. Boxed: 176 bytes inline in
    /// every connection, users without permissions included.
    pub permissions: Option<Box<PermissionCheck>>,
    /// A PONG has been sent: from now on a proto-1 client may receive an
    /// asynchronous INFO (lame duck) without breaking its handshake.
    pub first_pong_sent: bool,
    /// Which of the shard's cluster announcements
    /// ([`crate::shard::ShardBroker`]'s `cluster_generation`) the INFO sent
    /// at accept showed: an older one gets a fresh INFO before its first
    /// PONG, as nats-server sends one to a client created before its last
    /// `connect_urls` change.
    pub info_cluster_generation: u32,
    pub output: OutputState,
    /// sid → subscription key.
    pub subs: SidMap,
    pub liveness: Liveness,
    /// Since its last PONG the connection sent something to other shards
    /// (an interest change or a message for remote subscribers): its next
    /// PONG waits until every shard has applied what this shard sent so
    /// far, so that PING/PONG keeps meaning "everything before it took
    /// effect".
    pub forwarded: bool,
    pub closing: Option<CloseReason>,
    /// For `/connz`: when it connected and last sent something, and traffic.
    pub started: Instant,
    pub last_activity: Instant,
    pub traffic: Traffic,
    /// Set once its TLS handshake is done; `None` for plaintext.
    pub tls: Option<Box<TlsState>>,
}

impl<E> Connection<E> {
    /// The remote address as log lines show it (`ip:port`).
    pub fn peer(&self) -> PeerAddr<'_> {
        PeerAddr {
            ip: &self.ip,
            port: self.port,
        }
    }

    pub fn is_open(&self) -> bool {
        self.closing.is_none()
    }
}
