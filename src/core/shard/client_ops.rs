//! What a client's protocol operations do: CONNECT, PING/PONG, PUB/HPUB,
//! SUB, UNSUB and the rest, with nats-server's checks and `-ERR` texts.
//! (Authorization and permission checks belong here, between parsing an op
//! and handing it to the kind-neutral core in [`super::publish`] and
//! [`super::interest`].)

use std::time::{Duration, Instant};

use crate::account::Mapped;
use crate::auth::{Decision, Identity, PermissionCheck, SlowCheck, SlowOutcome};
use crate::connect::{parse_connect_onto, redacted_connect, ConnectError, ConnectRequest};
use crate::connection::{AuthState, CloseReason, ConnKind, Verification};
use crate::go_quote::go_quote;
use crate::ids::ConnKey;
use crate::io::ShardIo;
use crate::outbound::{OK, PONG};
use crate::payload_trace::traced_payload;
use crate::protocol::{ClientOp, ParseError, Parser, Publish};
use crate::subject::is_valid_publish_subject;

use super::interest::SubscribeError;
use super::publish::Origin;
use super::{ShardBroker, FIRST_PING_DELAY, FIRST_PING_JITTER_PERMILLE};

/// The queue group nats-server keeps for its internal subscriptions.
const SYSTEM_QUEUE_GROUP: &[u8] = b"_sys_";

/// Reply prefixes nats-server reserves for its own routing.
const RESERVED_REPLY_PREFIXES: [&[u8]; 3] = [b"_R_.", b"$JS.ACK.", b"_GR_."];

/// What the caller must do after [`ShardBroker::process_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Everything parseable was handled; read more bytes.
    NeedMore,
    /// CONNECT's credentials need a slow check: take it with
    /// [`ShardBroker::take_slow_check`], run it off the shard, report with
    /// [`ShardBroker::verification_done`], then continue with the rest of
    /// the input.
    Verify,
    /// A PING must wait until every peer has applied what this shard sent it:
    /// flush, wait for [`ShardBroker::barrier_reached`] on the
    /// [`ShardBroker::barrier_target`] taken after the flush, then call
    /// [`ShardBroker::send_pong`] and continue with the rest of the input.
    Barrier,
    /// The connection is closing; stop reading.
    Close,
}

#[derive(Debug, Clone, Copy)]
pub struct InputOutcome {
    pub consumed: usize,
    pub next: Next,
}

impl<I: ShardIo> ShardBroker<I> {
    /// Parses and handles as many complete ops from `buf` as possible.
    pub fn process_input(
        &mut self,
        key: ConnKey,
        parser: &mut Parser,
        buf: &[u8],
        now: Instant,
    ) -> InputOutcome {
        self.set_now(now);
        self.note_ingress(now);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.last_activity = now;
        }
        // One store per read: a reloaded max_payload reaches open clients.
        parser.set_max_payload(self.limits.max_payload);
        let mut consumed = 0;
        loop {
            if self.is_closing(key) {
                return InputOutcome {
                    consumed,
                    next: Next::Close,
                };
            }
            if self.auth_enabled && parser.at_op_start() {
                if let Err(next) = self.may_start_op(key, buf.get(consumed).copied()) {
                    return InputOutcome { consumed, next };
                }
            }
            match parser.next(&buf[consumed..]) {
                Ok(None) => {
                    return InputOutcome {
                        consumed,
                        next: Next::NeedMore,
                    }
                }
                Ok(Some((op, used))) => {
                    consumed += used;
                    let connect = matches!(op, ClientOp::Connect(_));
                    let next = self.handle_op(key, op);
                    if connect {
                        // Whether HPUB is allowed is decided by the parser,
                        // at the end of the HPUB line (see `ParseError::
                        // HeadersNotNegotiated`).
                        parser.set_headers(self.headers_negotiated(key));
                    }
                    match next {
                        Next::NeedMore => {}
                        next => return InputOutcome { consumed, next },
                    }
                }
                Err(error) => {
                    // nats-server closes every client parse error as a
                    // protocol violation, except the two limits it checks
                    // inline.
                    let reason = match error {
                        ParseError::UnknownOperation
                        | ParseError::Malformed
                        | ParseError::HeadersNotNegotiated => CloseReason::ProtocolViolation,
                        ParseError::MaxControlLineExceeded => CloseReason::MaxControlLineExceeded,
                        ParseError::MaxPayloadExceeded => CloseReason::MaxPayloadExceeded,
                    };
                    if error == ParseError::HeadersNotNegotiated {
                        self.log_client_error(key, "message headers not supported");
                    }
                    let next = self.close_with_error(key, error.err_text(), reason);
                    return InputOutcome { consumed, next };
                }
            }
        }
    }

    /// Whether the connection may send HPUB: its CONNECT asked for headers
    /// and this server supports them.
    fn headers_negotiated(&self, key: ConnKey) -> bool {
        self.conns
            .get(key)
            .is_some_and(|conn| conn.options.headers && !self.limits.no_header_support)
    }

    /// nats-server's ERR log line for a client error that closes the
    /// connection.
    #[cold]
    fn log_client_error(&self, key: ConnKey, text: &str) {
        if let Some(conn) = self.conns.get(key) {
            crate::error!("{} - cid:{} - {}", conn.peer(), conn.client_id, text);
        }
    }

    // Not inlined into `process_input`: inlined, the op was copied out of
    // the parser's result with 16-byte loads right after the parser's
    // 8-byte stores (a store-forwarding stall on every op): PUB-only
    // ingest cost 47 ns/msg instead of 43 (41 before the split; harness in
    // BENCHMARKS.md, "Core restructure").
    #[inline(never)]
    fn handle_op(&mut self, key: ConnKey, op: ClientOp<'_>) -> Next {
        if crate::log::trace_enabled() {
            self.trace_op(key, &op);
        }
        match op {
            ClientOp::Connect(json) => self.handle_connect(key, json),
            ClientOp::Ping => {
                let conn = &mut self.conns[key];
                conn.liveness.heard_from();
                if conn.forwarded {
                    // The peers fold their acks; ask for them with the
                    // batches this unit of work sends.
                    self.acks_requested = true;
                    return Next::Barrier;
                }
                self.send_pong(key);
                Next::NeedMore
            }
            ClientOp::Pong => {
                let now = self.now;
                self.conns[key].liveness.pong(now);
                Next::NeedMore
            }
            ClientOp::Pub(publish) => self.handle_pub(key, publish),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => {
                self.handle_sub(key, subject, queue, sid);
                Next::NeedMore
            }
            ClientOp::Unsub { sid, max } => {
                self.handle_unsub(key, sid, max);
                Next::NeedMore
            }
            ClientOp::Info(json) => {
                // Ignored, but like nats-server we close a client that sends
                // an INFO it cannot even spell.
                if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
                    self.begin_close(key, CloseReason::ProtocolViolation);
                    return Next::Close;
                }
                Next::NeedMore
            }
            ClientOp::Ok => Next::NeedMore,
            ClientOp::Err(text) => {
                // nats-server logs the client's error and closes with
                // "Parse Error" (client.go, processErr).
                let line = format!("Client Error {}", String::from_utf8_lossy(text));
                self.log_client_error(key, &line);
                self.begin_close(key, CloseReason::ParseError);
                Next::Close
            }
        }
    }

    #[cold]
    fn trace_op(&self, key: ConnKey, op: &ClientOp<'_>) {
        let conn = &self.conns[key];
        let text = match op {
            ClientOp::Connect(json) => format!("CONNECT {}", redacted_connect(json)),
            ClientOp::Ping => "PING".into(),
            ClientOp::Pong => "PONG".into(),
            ClientOp::Pub(p) => format!(
                "{} {}{}{} {}",
                if p.header_len.is_some() {
                    "HPUB"
                } else {
                    "PUB"
                },
                String::from_utf8_lossy(p.subject),
                p.reply
                    .map(|r| format!(" {}", String::from_utf8_lossy(r)))
                    .unwrap_or_default(),
                p.header_len.map(|h| format!(" {h}")).unwrap_or_default(),
                p.payload.len()
            ),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => format!(
                "SUB {}{} {}",
                String::from_utf8_lossy(subject),
                queue
                    .map(|q| format!(" {}", String::from_utf8_lossy(q)))
                    .unwrap_or_default(),
                String::from_utf8_lossy(sid)
            ),
            ClientOp::Unsub { sid, max } => format!(
                "UNSUB {}{}",
                String::from_utf8_lossy(sid),
                max.map(|m| format!(" {m}")).unwrap_or_default()
            ),
            ClientOp::Info(_) => "INFO".into(),
            ClientOp::Ok => "+OK".into(),
            ClientOp::Err(text) => format!("-ERR {}", String::from_utf8_lossy(text)),
        };
        crate::trace!("{} - cid:{} - <<- [{}]", conn.peer(), conn.client_id, text);
        if let ClientOp::Pub(p) = op {
            // HPUB: the header block and the body, as nats-server shows it.
            crate::trace!(
                "{} - cid:{} - <<- MSG_PAYLOAD: {}",
                conn.peer(),
                conn.client_id,
                traced_payload(p.payload, crate::log::max_traced_msg_len())
            );
        }
    }

    /// Before its first CONNECT, a connection that must authenticate may
    /// only send CONNECT: nats-server judges the op by its first byte
    /// (`first`), so anything else, even a partial or unknown op, is an
    /// Authorization Violation — unless a `no_auth_user` is configured,
    /// which logs the client in as that user. `Err` carries what the op
    /// comes to instead (the connection closes).
    fn may_start_op(&mut self, key: ConnKey, first: Option<u8>) -> Result<(), Next> {
        let Some(first) = first else {
            return Ok(());
        };
        let conn = &self.conns[key];
        if first | 0x20 == b'c' || !matches!(conn.auth, AuthState::Pending { .. }) {
            return Ok(());
        }
        match self.limits.auth.no_auth_identity() {
            Some(identity) => match self.authenticated(key, identity) {
                Next::Close => Err(Next::Close),
                _ => Ok(()),
            },
            None => Err(self.close_with_error(
                key,
                Some("Authorization Violation"),
                CloseReason::AuthenticationFailure,
            )),
        }
    }

    fn handle_connect(&mut self, key: ConnKey, json: &[u8]) -> Next {
        // A later CONNECT changes only the keys it has (nats-server decodes
        // it over the options it already holds).
        let previous = &self.conns[key].options;
        match parse_connect_onto(json, previous) {
            Ok(ConnectRequest {
                options,
                credentials,
                refusal_after_auth,
            }) => {
                let verbose = options.verbose;
                let first_ping = self.first_ping_delay();
                let now = self.now;
                let conn = &mut self.conns[key];
                conn.options = options;
                let accepted = conn.started;
                conn.liveness.connected(now, accepted, first_ping);
                // Credentials too are decoded over the earlier ones, and
                // kept: `/connz` shows the user a client named, and every
                // CONNECT is checked again, as by nats-server (a later one
                // with bad credentials closes the connection).
                let mut credentials = match conn.credentials.take() {
                    Some(earlier) => credentials.over(&earlier),
                    None => credentials,
                };
                let deadline = match conn.auth {
                    AuthState::Pending { deadline } => Some(Some(deadline)),
                    AuthState::Done if self.auth_enabled => Some(None),
                    _ => None,
                };
                if deadline.is_some() {
                    credentials.certificate = conn.tls.as_ref().and_then(|t| t.certificate.clone());
                    credentials.ip = conn.ip.parse().ok();
                }
                conn.credentials = (!credentials.is_blank()).then(|| Box::new(credentials.clone()));
                if let Some(deadline) = deadline {
                    let policy = self.limits.auth.clone();
                    match policy.decide(&credentials, conn.nonce.as_deref()) {
                        Decision::Accept(identity) => {
                            if policy.tls_map {
                                warn_user_from_cert(credentials.user.as_deref());
                            }
                            if self.authenticated(key, identity) == Next::Close {
                                return Next::Close;
                            }
                        }
                        Decision::Reject { log } => return self.reject_auth(key, &log),
                        Decision::Verify {
                            check,
                            identity,
                            log,
                        } => {
                            conn.auth = AuthState::Verifying(Box::new(Verification {
                                check: Some(check),
                                identity,
                                log,
                                deadline,
                                refusal_after_auth,
                            }));
                            return Next::Verify;
                        }
                    }
                }
                if let Some(refusal) = refusal_after_auth {
                    return self.refuse_connect(key, refusal);
                }
                if verbose {
                    self.queue_bytes(key, OK);
                }
                Next::NeedMore
            }
            Err(error) => self.refuse_connect(key, error),
        }
    }

    /// Closes a connection whose CONNECT was refused, with nats-server's
    /// `-ERR` (if any) and closed reason.
    fn refuse_connect(&mut self, key: ConnKey, error: ConnectError) -> Next {
        let reason = match error {
            ConnectError::Malformed => CloseReason::ProtocolViolation,
            ConnectError::InvalidProtocol => CloseReason::BadClientProtocolVersion,
            ConnectError::NoRespondersWithoutHeaders => CloseReason::NoRespondersRequiresHeaders,
            ConnectError::AuthorizationViolation => CloseReason::AuthenticationFailure,
        };
        self.close_with_error(key, error.err_text(), reason)
    }

    /// The slow check a [`Next::Verify`] asked for.
    pub fn take_slow_check(&mut self, key: ConnKey) -> Option<SlowCheck> {
        match &mut self.conns.get_mut(key)?.auth {
            AuthState::Verifying(verification) => verification.check.take(),
            _ => None,
        }
    }

    /// A slow check finished with `outcome`: [`ShardBroker::verification_done`]
    /// for bcrypt and Ed25519; a JWT login brings its own identity, limits
    /// and expiry.
    pub fn check_done(&mut self, key: ConnKey, outcome: SlowOutcome, now: Instant) -> Next {
        let login = match outcome {
            SlowOutcome::Checked(passed) => return self.verification_done(key, passed, now),
            SlowOutcome::Jwt(login) => login,
        };
        self.set_now(now);
        let Some(conn) = self.conns.get_mut(key) else {
            return Next::Close;
        };
        if conn.closing.is_some() {
            return Next::Close;
        }
        let state = std::mem::replace(&mut conn.auth, AuthState::Done);
        let AuthState::Verifying(verification) = state else {
            conn.auth = state;
            return Next::NeedMore;
        };
        let Verification {
            log,
            refusal_after_auth,
            ..
        } = *verification;
        let login = match login {
            Ok(login) => login,
            Err(refusal) => {
                if refusal.error_level {
                    crate::error!(
                        "{} - cid:{} - {}",
                        conn.peer(),
                        conn.client_id,
                        refusal.text
                    );
                } else {
                    crate::debug!(
                        "{} - cid:{} - {}",
                        conn.peer(),
                        conn.client_id,
                        refusal.text
                    );
                }
                return self.reject_auth(key, &log);
            }
        };
        let verbose = conn.options.verbose;
        conn.user_limits = login.limits;
        conn.auth_expires = login.valid_for.map(|d| now + d);
        conn.jwt_issued_at = login.issued_at;
        conn.jwt_info = Some(login.info);
        conn.account_expires = login.account_valid_for.map(|d| now + d);
        if self.authenticated(key, login.identity) == Next::Close {
            return Next::Close;
        }
        if let Some(refusal) = refusal_after_auth {
            return self.refuse_connect(key, refusal);
        }
        if verbose {
            self.queue_bytes(key, OK);
        }
        Next::NeedMore
    }

    /// The slow check of a CONNECT finished: accept or reject it. Returns
    /// what the caller does next (continue with the input, or stop).
    pub fn verification_done(&mut self, key: ConnKey, passed: bool, now: Instant) -> Next {
        self.set_now(now);
        let Some(conn) = self.conns.get_mut(key) else {
            return Next::Close;
        };
        if conn.closing.is_some() {
            return Next::Close;
        }
        let state = std::mem::replace(&mut conn.auth, AuthState::Done);
        let AuthState::Verifying(verification) = state else {
            conn.auth = state;
            return Next::NeedMore;
        };
        let Verification {
            identity,
            log,
            refusal_after_auth,
            ..
        } = *verification;
        if !passed {
            return self.reject_auth(key, &log);
        }
        let verbose = conn.options.verbose;
        if self.authenticated(key, identity) == Next::Close {
            return Next::Close;
        }
        if let Some(refusal) = refusal_after_auth {
            return self.refuse_connect(key, refusal);
        }
        if verbose {
            self.queue_bytes(key, OK);
        }
        Next::NeedMore
    }

    /// The connection is `identity` from now on: its account (counted
    /// there, unless that passes the account's `max_connections`: then it
    /// is refused as nats-server refuses it, and this returns
    /// [`Next::Close`]), its permissions and its account's limits.
    pub(super) fn authenticated(&mut self, key: ConnKey, identity: Identity) -> Next {
        let limits = self
            .limits
            .accounts
            .get(identity.account)
            .map(|account| account.limits.clone())
            .unwrap_or_default();
        let conn = &mut self.conns[key];
        if conn.counted_in_account && conn.account != identity.account {
            // A later CONNECT as a user of another account: nats-server
            // would move the connection, leaving its subscriptions behind
            // in the first account; percore refuses it instead.
            let log = "authentication error - a later CONNECT may not change the account";
            return self.reject_auth(key, log);
        }
        // A reload or a later CONNECT re-authenticates connections that are
        // already counted: only a first login is a connect event.
        let first_login = !conn.counted_in_account;
        if !conn.counted_in_account {
            if !self
                .limits
                .active_connections
                .try_join(identity.account, limits.max_connections)
            {
                crate::error!(
                    "{} - cid:{} - maximum account active connections exceeded",
                    conn.peer(),
                    conn.client_id
                );
                return self.close_with_error(
                    key,
                    Some("maximum account active connections exceeded"),
                    CloseReason::MaxAccountConnectionsExceeded,
                );
            }
            conn.counted_in_account = true;
        }
        conn.auth = AuthState::Done;
        conn.auth_method = identity.method;
        conn.permissions = identity
            .permissions
            .map(|permissions| Box::new(PermissionCheck::new(permissions)));
        conn.account = identity.account;
        conn.account_max_payload =
            crate::account::limits::min_limit(limits.max_payload, conn.user_limits.max_payload);
        if first_login {
            self.note_connect(key);
        }
        Next::NeedMore
    }

    /// nats-server's answer to bad credentials: an ERR log line, `-ERR
    /// 'Authorization Violation'` (flushed) and the close.
    fn reject_auth(&mut self, key: ConnKey, log: &str) -> Next {
        let conn = &self.conns[key];
        crate::error!("{} - cid:{} - {}", conn.peer(), conn.client_id, log);
        self.close_with_error(
            key,
            Some("Authorization Violation"),
            CloseReason::AuthenticationFailure,
        )
    }

    /// The first server PING (nats-server's RTT ping) goes out this long
    /// after CONNECT, jittered so clients that connect together are not
    /// pinged in one burst.
    fn first_ping_delay(&mut self) -> Duration {
        let first_ping = FIRST_PING_DELAY.min(self.limits.ping_interval);
        let jitter_permille = self.rng.below(FIRST_PING_JITTER_PERMILLE + 1);
        first_ping + first_ping * jitter_permille as u32 / 1000
    }

    fn handle_pub(&mut self, key: ConnKey, publish: Publish<'_>) -> Next {
        let conn = &mut self.conns[key];
        conn.liveness.heard_from();
        // An HPUB without negotiated headers never gets here: the parser
        // refuses it at the end of its line.
        let (verbose, pedantic) = (conn.options.verbose, conn.options.pedantic);
        self.stats.in_msgs += 1;
        self.stats.in_bytes += publish.payload.len() as u64;
        conn.traffic.in_msgs += 1;
        conn.traffic.in_bytes += publish.payload.len() as u64;
        // nats-server's order: the payload limit (checked on the PUB line),
        // pedantic's subject check, the gateway prefix, the publish
        // permissions, then the reserved reply prefixes.
        if let Some(max) = conn.account_max_payload {
            if publish.payload.len() as u64 > max {
                crate::error!(
                    "{} - cid:{} - Maximum Payload Violation: {} vs {}",
                    conn.peer(),
                    conn.client_id,
                    publish.payload.len(),
                    max
                );
                return self.close_with_error(
                    key,
                    Some("Maximum Payload Violation"),
                    CloseReason::MaxPayloadExceeded,
                );
            }
        }
        if pedantic && !is_valid_publish_subject(publish.subject) {
            // Quirk kept from nats-server: the error is sent, yet the message
            // is still delivered.
            self.queue_err(key, "Invalid Publish Subject");
        }
        // The account's mappings rename the subject before the publish
        // permissions are checked (they apply to the new subject, as in
        // nats-server). Without mappings this costs one cached flag; the
        // renaming is a cold call of its own. (pub16 throughput against a
        // build without the check, `benches/compare.sh`, 6-8 rounds: 0.88
        // with the renaming written inline here, a local buffer and its
        // drop on every path; 0.92-0.94 this way, as with the whole path
        // duplicated for servers without mappings. What is left is layout,
        // not work: one predictable branch.)
        if self.mappings_configured {
            return self.handle_mapped_pub(key, publish, verbose);
        }
        self.deliver_pub(key, publish, verbose)
    }

    /// [`ShardBroker::handle_pub`] where some account has mappings: the
    /// publish under the subject `key`'s account maps it to, in the shard's
    /// buffer for it.
    #[cold]
    #[inline(never)]
    fn handle_mapped_pub(&mut self, key: ConnKey, publish: Publish<'_>, verbose: bool) -> Next {
        let mut renamed = std::mem::take(&mut self.mapped_subject);
        let next = match self.map_published(key, publish.subject, &mut renamed) {
            Mapped::Unchanged => self.deliver_pub(key, publish, verbose),
            Mapped::Renamed => {
                let publish = Publish {
                    subject: &renamed,
                    ..publish
                };
                self.deliver_pub(key, publish, verbose)
            }
            Mapped::Dropped => Next::NeedMore,
        };
        self.mapped_subject = renamed;
        next
    }

    /// The rest of a client's publish, once its subject is final: publish
    /// permissions, reserved reply prefixes, +OK, routing, no responders.
    #[inline(always)]
    fn deliver_pub(&mut self, key: ConnKey, publish: Publish<'_>, verbose: bool) -> Next {
        let now = self.now;
        let conn = &mut self.conns[key];
        let denied = publish.subject.starts_with(b"_GR_.")
            || conn.permissions.as_mut().is_some_and(|check| {
                !check.can_publish(publish.subject) && !check.may_respond(publish.subject, now)
            });
        if denied {
            let subject = go_quote(publish.subject);
            crate::error!(
                "{} - cid:{} - Publish Violation - {}, Subject {}",
                conn.peer(),
                conn.client_id,
                who(&conn.auth_method),
                subject
            );
            let text = format!("Permissions Violation for Publish to {subject}");
            self.queue_err(key, &text);
            return Next::NeedMore;
        }
        if let Some(reply) = publish.reply {
            if RESERVED_REPLY_PREFIXES.iter().any(|p| reply.starts_with(p)) {
                let reply = go_quote(reply);
                crate::error!(
                    "{} - cid:{} - Publish Violation - {}, Reply {}",
                    conn.peer(),
                    conn.client_id,
                    who(&conn.auth_method),
                    reply
                );
                let text = format!("Permissions Violation for Publish with Reply of {reply}");
                self.queue_err(key, &text);
                return Next::NeedMore;
            }
        }
        if verbose {
            self.queue_bytes(key, OK);
        }
        let account = self.conns[key].account;
        let reach = self.publish(account, Origin::Client(key), &publish);
        if reach.is_none() {
            if let Some(reply) = publish.reply {
                self.send_no_responders(key, reply);
            }
        }
        Next::NeedMore
    }

    fn handle_sub(&mut self, key: ConnKey, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        let conn = &mut self.conns[key];
        conn.liveness.heard_from();
        let verbose = conn.options.verbose;
        // Queue group `_sys_` is nats-server's own: no client may join it,
        // whatever its permissions.
        let allowed = queue != Some(SYSTEM_QUEUE_GROUP)
            && match conn.permissions.as_mut() {
                Some(check) => {
                    let allowed = check.can_subscribe(subject, queue);
                    if allowed {
                        check.subscribed(subject);
                    }
                    allowed
                }
                None => true,
            };
        if !allowed {
            let subject = go_quote(subject);
            let queue = queue.map(go_quote);
            crate::error!(
                "{} - cid:{} - Subscription Violation - {}, Subject {}{}, SID {}",
                conn.peer(),
                conn.client_id,
                who(&conn.auth_method),
                subject,
                queue
                    .as_ref()
                    .map(|q| format!(", Queue: {q}"))
                    .unwrap_or_default(),
                String::from_utf8_lossy(sid)
            );
            let text = match queue {
                Some(queue) => format!(
                    "Permissions Violation for Subscription to {subject} using queue {queue}"
                ),
                None => format!("Permissions Violation for Subscription to {subject}"),
            };
            self.queue_err(key, &text);
            return;
        }
        let max_tokens = usize::from(self.limits.max_sub_tokens);
        if max_tokens > 0 && subject.split(|&b| b == b'.').count() > max_tokens {
            let subject = go_quote(subject);
            crate::error!(
                "{} - cid:{} - Subscription Violation Too Many Tokens - {}, Subject {}, SID {}",
                conn.peer(),
                conn.client_id,
                who(&conn.auth_method),
                subject,
                String::from_utf8_lossy(sid)
            );
            let text =
                format!("Permissions Violation for Subscription to {subject}, too many tokens");
            self.queue_err(key, &text);
            return;
        }
        match self.subscribe(key, subject, queue, sid) {
            Ok(_) | Err(SubscribeError::DuplicateSid) => {
                // A reused sid is ignored, as by nats-server: the first
                // subscription stays.
                if verbose {
                    self.queue_bytes(key, OK);
                }
            }
            Err(SubscribeError::InvalidSubject) => self.queue_err(key, "Invalid Subject"),
            Err(SubscribeError::TooMany) => self.queue_err(key, "maximum subscriptions exceeded"),
        }
    }

    fn handle_unsub(&mut self, key: ConnKey, sid: &[u8], max: Option<u64>) {
        let conn = &mut self.conns[key];
        conn.liveness.heard_from();
        let verbose = conn.options.verbose;
        if let Some(sk) = conn.subs.get(sid, &self.subs) {
            self.unsubscribe(sk, max);
        }
        if verbose {
            self.queue_bytes(key, OK);
        }
    }

    /// Answers a PING (after its barrier, if it had one).
    pub fn send_pong(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.forwarded = false;
        // As nats-server: a PING before CONNECT is answered but does not
        // count as the first PONG.
        let first = !conn.first_pong_sent && conn.liveness.connect_received();
        if first {
            conn.first_pong_sent = true;
        }
        self.queue_bytes(key, PONG);
        if first {
            self.refresh_info_after_first_pong(key);
        }
    }

    /// nats-server's first PONG to a client that takes asynchronous INFO:
    /// if the cluster's URLs changed after its INFO was made, or its
    /// `max_payload` is not the server's (a user's or an account's lower
    /// limit), a fresh INFO follows the PONG, with the connection's own
    /// limit (PONG first, as nats-server 2.9.10 writes them).
    fn refresh_info_after_first_pong(&mut self, key: ConnKey) {
        let conn = &self.conns[key];
        if conn.kind != ConnKind::Client || conn.options.protocol < 1 {
            return;
        }
        let server_max = self.identity.max_payload;
        let own_max = conn
            .account_max_payload
            .map_or(server_max, |max| server_max.min(max as usize));
        if conn.info_cluster_generation == self.cluster_generation && own_max == server_max {
            return;
        }
        let info = self.identity.info_line_with_payload(
            conn.client_id.0,
            &conn.ip,
            false,
            None,
            self.client_cluster.as_deref(),
            own_max,
        );
        self.queue_bytes(key, &info);
    }
}

/// `<who>` in nats-server's violation logs.
fn who(method: &crate::auth::AuthMethod) -> String {
    match method {
        crate::auth::AuthMethod::Jwt(key) => format!("JWT User {}", go_quote(key)),
        crate::auth::AuthMethod::Nkey(key) => format!("Nkey {}", go_quote(key)),
        other => format!("User {}", go_quote(other.user().unwrap_or("N/A"))),
    }
}

/// nats-server's warning when `verify_and_map` took the user from the
/// certificate although CONNECT named one.
fn warn_user_from_cert(connect_user: Option<&str>) {
    if let Some(user) = connect_user.filter(|u| !u.is_empty()) {
        crate::warn!(
            "User {} found in connect proto, but user required from cert",
            go_quote(user)
        );
    }
}
