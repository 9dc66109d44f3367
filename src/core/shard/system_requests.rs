//! Requests to the server on the system account, answered by the runtime:
//! the server's monitoring services (`$SYS.REQ.SERVER.PING`,
//! `$SYS.REQ.SERVER.PING.<VARZ|CONNZ|...>`, `$SYS.REQ.SERVER.<id>.<...>`,
//! `$SYS.REQ.ACCOUNT.<account>.<CONNZ|CONNS>`) whenever a system
//! account exists, and in operator mode with a `full` resolver, account JWT
//! updates
//! (`$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE`), as
//! `nsc push` sends them, and the lookups, list and deletes `nsc pull` and
//! `nsc delete` use.
//!
//! Like import subscriptions, every shard installs its own and fires them
//! only for messages published on it: a request is handled once per server,
//! by the shard its requester is on, or for a request from another server
//! of the cluster, by the cluster shard its route delivered it to (the
//! other shards get such a message with the one-hop rule and fire nothing).
//!
//! In a cluster they are this server's interest like a client's, as
//! nats-server's internal subscriptions are: the cluster shard announces
//! each subject once (`RS+ <system account> <subject>`; the other shards'
//! copies are not counted, the services being the same on every shard), so
//! `$SYS.REQ.SERVER.PING` from a client anywhere in the cluster reaches
//! every server once and each answers once, over the route to the
//! requester's reply subject.
//!
//! The shard only collects the request
//! ([`ShardBroker::take_system_requests`]); decoding, checking and storing
//! the JWT happen off the shard, and the answer comes back through
//! [`ShardBroker::publish_system`].

use crate::connection::{Sid, SubOwner, Subscription};
use crate::ids::SubKey;
use crate::io::ShardIo;
use crate::protocol::Publish;

use super::ShardBroker;

/// The subjects of the `full` resolver's requests: updates, lookups,
/// the list and deletes of account JWTs.
pub const CLAIMS_UPDATE_SUBJECTS: [&str; 5] = [
    "$SYS.REQ.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
    "$SYS.REQ.CLAIMS.LIST",
    "$SYS.REQ.CLAIMS.DELETE",
];

/// The subjects of account JWT update notices, which nats-server's
/// resolvers without a store of their own (URL) follow.
pub const UPDATE_NOTICE_SUBJECTS: [&str; 2] = [
    "$SYS.ACCOUNT.*.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
];

/// The monitoring services every server answers (`$SYS.REQ.SERVER.PING.<name>`
/// and `$SYS.REQ.SERVER.<id>.<name>`). nats-server also has `JSZ`; percore
/// has no JetStream, so nobody answers it.
pub const SERVER_SERVICES: [&str; 9] = [
    "STATSZ", "VARZ", "SUBSZ", "CONNZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "ACCOUNTZ", "HEALTHZ",
];

/// The per-account services (`$SYS.REQ.ACCOUNT.<account>.<name>`).
pub const ACCOUNT_SERVICES: [&str; 2] = ["CONNZ", "CONNS"];

/// The legacy statsz ping every server answers.
pub const SERVER_PING: &str = "$SYS.REQ.SERVER.PING";

/// Whether `subject` is one of the `full` resolver's requests.
pub fn is_claims_request(subject: &str) -> bool {
    subject.starts_with("$SYS.REQ.CLAIMS.")
        || subject.ends_with(".CLAIMS.UPDATE")
        || subject.ends_with(".CLAIMS.LOOKUP")
}

/// One request published on the system account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRequest {
    pub subject: String,
    pub reply: Option<String>,
    pub payload: Vec<u8>,
}

impl<I: ShardIo> ShardBroker<I> {
    /// Installs the system services the policy asks for (called with the
    /// import subscriptions, which it shares the bookkeeping of).
    pub(super) fn install_system_services(&mut self) {
        let Some(system) = self.limits.accounts.system() else {
            return;
        };
        let mut subjects: Vec<String> = vec![SERVER_PING.to_string()];
        for name in SERVER_SERVICES {
            subjects.push(format!("{SERVER_PING}.{name}"));
            subjects.push(format!(
                "$SYS.REQ.SERVER.{}.{name}",
                self.identity.server_id
            ));
        }
        for name in ACCOUNT_SERVICES {
            subjects.push(format!("$SYS.REQ.ACCOUNT.*.{name}"));
        }
        // A `full` resolver answers its requests; a URL resolver follows
        // update notices.
        let claims: &[&str] = match self.limits.auth.operator.as_deref() {
            Some(mode) if mode.accepts_updates => &CLAIMS_UPDATE_SUBJECTS,
            Some(mode) if mode.update_notices => &UPDATE_NOTICE_SUBJECTS,
            _ => &[],
        };
        subjects.extend(claims.iter().map(|s| s.to_string()));
        for subject in subjects {
            let sk = SubKey::new(self.subs.insert(Subscription::new(
                SubOwner::SystemService,
                system,
                Sid::new(b""),
                subject.as_bytes(),
                None,
                1,
            )));
            self.accounts
                .get_mut(system)
                .insert_local(subject.as_bytes(), None, sk);
            self.import_subs.push(sk);
            // Other servers of the cluster send us their clients' requests
            // (a no-op except on the cluster shard: one interest per server).
            self.cluster_interest_changed(system, subject.as_bytes(), None, 1);
        }
    }

    /// A system service subscription fired for `message`.
    pub(super) fn system_request(&mut self, message: &Publish<'_>) {
        self.system_requests.push(SystemRequest {
            subject: String::from_utf8_lossy(message.subject).into_owned(),
            reply: message
                .reply
                .map(|r| String::from_utf8_lossy(r).into_owned()),
            payload: message.payload[message.header_len.unwrap_or(0)..].to_vec(),
        });
    }

    /// The requests collected since the last call, for the runtime.
    pub fn take_system_requests(&mut self) -> Vec<SystemRequest> {
        std::mem::take(&mut self.system_requests)
    }

    /// The server's answer to a system request: `payload` published on
    /// `subject` in the system account, from this shard.
    pub fn publish_system(&mut self, subject: &str, payload: &[u8]) {
        let Some(system) = self.limits.accounts.system() else {
            return;
        };
        if crate::log::trace_system_enabled() {
            // nats-server's system client traces its publishes with `-VV`
            // (`trace_verbose`) only; the reply field is empty (hence the
            // two spaces), as in its internal PUB.
            crate::trace!("SYSTEM - <<- [PUB {subject}  {}]", payload.len());
            crate::trace!(
                "SYSTEM - <<- MSG_PAYLOAD: {}",
                crate::payload_trace::traced_payload(payload, crate::log::max_traced_msg_len())
            );
        }
        let message = Publish {
            subject: subject.as_bytes(),
            reply: None,
            header_len: None,
            payload,
        };
        self.publish_local(system, None, &message, 0);
    }
}
