//! What an import subscription does when a message matches it (the
//! subscriptions themselves are installed in [`super::accounts`]):
//!
//! - a stream import publishes the message again in the importing account,
//!   renamed by its `prefix` or `to`;
//! - a service import publishes a request again in the exporting account
//!   (on the subject the exporter's `mappings` give it, if any),
//!   with a reply subject of this shard's (`_R_.<prefix>.<token>`) and a
//!   route that remembers the requester's account and reply subject;
//! - this shard's response subscription (`_R_.<prefix>.>` in an exporting
//!   account, replicated to the other shards like a client's, so responses
//!   published anywhere come here) publishes a response to the requester's
//!   reply subject, in the requester's account. A `singleton` route closes
//!   after one response; every route closes when its export's threshold
//!   passes ([`ShardBroker::expire_response_routes`]).
//!
//! Each hop re-enters [`ShardBroker::publish_local`], so imports chain
//! (A's stream imported by B, B's by C); a chain longer than
//! [`MAX_IMPORT_HOPS`] is a cycle and stops there.

use std::time::{Instant, SystemTime};

use rustc_hash::FxHashMap;

use crate::account::request_info::{set_request_info, ClientDetails, RequestInfo, ServerNames};
use crate::account::{Mapped, ResponseType, ServiceImport};
use crate::auth::reported_user::raw_auth_user;
use crate::auth::AuthMethod;
use crate::calendar::rfc3339_nano;
use crate::connection::{Sid, SubOwner, Subscription};
use crate::ids::{AccountId, SubKey};
use crate::io::ShardIo;
use crate::protocol::Publish;

use super::publish::Reach;
use super::ShardBroker;

/// A message crosses at most this many imports.
pub const MAX_IMPORT_HOPS: u8 = 8;

/// Where a response to one service request goes.
#[derive(Debug)]
struct ResponseRoute {
    importer: AccountId,
    reply: Box<[u8]>,
    response: ResponseType,
    expires: Instant,
}

/// The service requests this shard sent into exporting accounts.
#[derive(Debug)]
pub struct ResponseRoutes {
    /// `_R_.<shard tag>.`: unique per shard, so each shard's response
    /// subscription catches its own requests' responses only.
    prefix: Box<[u8]>,
    /// By the token that ends the reply subject.
    routes: FxHashMap<u64, ResponseRoute>,
    /// Exporting accounts where the response subscription is installed.
    installed: Vec<AccountId>,
    /// An import cycle was reported (see [`MAX_IMPORT_HOPS`]).
    cycle_logged: bool,
}

impl ResponseRoutes {
    /// `tag` tells this shard's replies from every other shard's (the
    /// shard id, and randomness so a restarted server does not reuse them).
    pub fn new(shard: u16, random: u64) -> ResponseRoutes {
        let mut prefix = b"_R_.".to_vec();
        push_base36(&mut prefix, u64::from(shard));
        push_base36(&mut prefix, random % 36u64.pow(6));
        prefix.push(b'.');
        ResponseRoutes {
            prefix: prefix.into(),
            routes: FxHashMap::default(),
            installed: Vec::new(),
            cycle_logged: false,
        }
    }

    /// Open routes (for tests and monitoring).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Response subscriptions this shard holds.
    pub fn installed_count(&self) -> usize {
        self.installed.len()
    }

    fn token_of(&self, subject: &[u8]) -> Option<u64> {
        let token = subject.strip_prefix(&self.prefix[..])?;
        let text = std::str::from_utf8(token).ok()?;
        u64::from_str_radix(text, 36).ok()
    }
}

fn push_base36(out: &mut Vec<u8>, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let start = out.len();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out[start..].reverse();
}

impl<I: ShardIo> ShardBroker<I> {
    /// The import subscriptions a publish matched (collected by
    /// [`ShardBroker::deliver_local`]) do their work. A message another
    /// shard forwarded fires response routes only: that shard fired the
    /// imports already.
    pub(super) fn fire_imports(
        &mut self,
        fired: &[SubKey],
        message: &Publish<'_>,
        hops: u8,
        from_shard: bool,
    ) -> Reach {
        let mut reach = Reach::None;
        if hops >= MAX_IMPORT_HOPS {
            // Once per shard: a cycle would otherwise log every message.
            if !std::mem::replace(&mut self.responses.cycle_logged, true) {
                crate::warn!(
                    "imports form a cycle: {:?} crossed {} imports and was dropped (logged once)",
                    String::from_utf8_lossy(message.subject),
                    hops
                );
            }
            return reach;
        }
        for &sk in fired {
            let Some(owner) = self.subs.get(sk.index()).map(|s| s.owner) else {
                continue;
            };
            let reached = match owner {
                SubOwner::StreamImport { importer, import } if !from_shard => {
                    self.fire_stream_import(importer, import, message, hops)
                }
                SubOwner::ServiceImport { importer, import }
                    if !from_shard && !self.route_publish =>
                {
                    self.fire_service_import(importer, import, message, hops)
                }
                SubOwner::Responses => self.fire_response(message, hops),
                // A request a route brought fires too: the other
                // servers' clients ask this server, as they ask
                // nats-server's internal subscriptions. Once per server:
                // the cluster shard fires it, the other shards get it
                // `from_shard`.
                SubOwner::SystemService if !from_shard => {
                    self.system_request(message);
                    Reach::Some
                }
                _ => Reach::None,
            };
            if !reached.is_none() {
                reach = Reach::Some;
            }
        }
        reach
    }

    fn fire_stream_import(
        &mut self,
        importer: AccountId,
        import: u32,
        message: &Publish<'_>,
        hops: u8,
    ) -> Reach {
        if self
            .accounts
            .get(importer)
            .is_none_or(|index| index.is_empty())
        {
            return Reach::None;
        }
        // The renamed subject goes into the shard's scratch buffer (taken,
        // so an import fired by this one gets its own): no allocation per
        // message in the steady state.
        let mut renamed = std::mem::take(&mut self.renamed_subject);
        let Some(import) = self
            .limits
            .accounts
            .get(importer)
            .and_then(|a| a.stream_imports.get(import as usize))
        else {
            self.renamed_subject = renamed;
            return Reach::None;
        };
        let subject = match &import.transform {
            Some(transform) => {
                transform.apply(message.subject, &mut renamed);
                &renamed[..]
            }
            None => message.subject,
        };
        // Each server of a cluster imports what reaches it in the exporter's
        // account (it announces the import's subject to its routes), so the
        // imported copy stays on this server: routes never get it.
        let one_hop = std::mem::replace(&mut self.one_hop, true);
        let reach = self.publish_local(
            importer,
            None,
            &Publish {
                subject,
                ..*message
            },
            hops + 1,
        );
        self.one_hop = one_hop;
        self.renamed_subject = renamed;
        reach
    }

    fn fire_service_import(
        &mut self,
        importer: AccountId,
        import: u32,
        message: &Publish<'_>,
        hops: u8,
    ) -> Reach {
        let accounts = self.limits.accounts.clone();
        let Some(import) = accounts
            .get(importer)
            .and_then(|a| a.service_imports.get(import as usize))
        else {
            return Reach::None;
        };
        let mut subject = Vec::new();
        let subject = match &import.transform {
            Some(transform) => {
                transform.apply(message.subject, &mut subject);
                &subject[..]
            }
            None => message.subject,
        };
        // The exporter's mappings apply to the request, as nats-server maps
        // a service import's subject in the exporting account.
        let mut mapped = Vec::new();
        let exporter_mappings = accounts
            .get(import.exporter)
            .map(|a| &a.mappings)
            .filter(|m| !m.is_empty());
        let subject = match exporter_mappings {
            Some(mappings) => {
                let cluster = self.limits.cluster.as_deref().map(|c| c.name.as_str());
                let rng = &mut self.rng;
                match mappings.select(subject, cluster, || rng.below(100) as u8, &mut mapped) {
                    Mapped::Unchanged => subject,
                    Mapped::Renamed => &mapped[..],
                    Mapped::Dropped => return Reach::None,
                }
            }
            None => subject,
        };
        let mut reply = Vec::new();
        let reply = match message.reply {
            Some(requester_reply) => {
                self.install_response_subscription(import.exporter);
                let token = self.rng.next_u64() >> 1;
                reply.extend_from_slice(&self.responses.prefix);
                push_base36(&mut reply, token);
                self.responses.routes.insert(
                    token,
                    ResponseRoute {
                        importer,
                        reply: requester_reply.into(),
                        response: import.response,
                        expires: self.now + import.threshold,
                    },
                );
                Some(&reply[..])
            }
            None => None,
        };
        // The responder learns who asked (nats-server sets this header on
        // every request crossing a service import, replies or not).
        let mut with_info = Vec::new();
        let (header_len, payload) = match self.request_info(importer, import) {
            Some(value) => {
                let header_len =
                    set_request_info(message.header_len, message.payload, &value, &mut with_info);
                (Some(header_len), &with_info[..])
            }
            None => (message.header_len, message.payload),
        };
        let request = Publish {
            subject,
            reply,
            header_len,
            payload,
        };
        let chained = std::mem::replace(&mut self.in_service_import, true);
        let shared = std::mem::replace(&mut self.last_import_shared, import.share);
        let reach = self.publish_local(import.exporter, None, &request, hops + 1);
        self.in_service_import = chained;
        self.last_import_shared = shared;
        reach
    }

    /// The `Nats-Request-Info` value for a request of the client being
    /// routed ([`ShardBroker`]'s `originator`), arriving at `import` of
    /// `importer`. `None` when no client is known (nothing else publishes
    /// into a service import). A request that already crossed a service
    /// import keeps its requester's account and names the account it is in
    /// now as `svc`, as nats-server does on a chain; there the details
    /// follow the import crossed before (nats-server re-reads the header
    /// that import wrote), and server and cluster are added where this one
    /// shares or comes from the system account.
    fn request_info(&self, importer: AccountId, import: &ServiceImport) -> Option<Vec<u8>> {
        let conn = self.conns.get(self.originator?)?;
        let requester = self.limits.accounts.get(conn.account)?;
        let service = match self.in_service_import {
            true => Some(self.limits.accounts.get(importer)?.name.as_str()),
            false => None,
        };
        let from_system = self.limits.accounts.system() == Some(import.exporter);
        let (detailed, with_server) = match self.in_service_import {
            true => (
                self.last_import_shared,
                self.last_import_shared || import.share || from_system,
            ),
            false => (import.share, import.share || from_system),
        };
        // Wall-clock time is read only here, for a shared import's `start`.
        let start = detailed.then(|| {
            let age = self.now.saturating_duration_since(conn.started);
            rfc3339_nano(SystemTime::now() - age)
        });
        let jwt = conn.jwt_info.as_deref();
        let issuer_key = match (&conn.auth_method, jwt) {
            (_, Some(jwt)) => jwt.issuer_key.as_str(),
            // nats-server: a configured nkey user's issuer is its account.
            (AuthMethod::Nkey(_), None) => requester.name.as_str(),
            _ => "",
        };
        let details = start.as_deref().map(|start| ClientDetails {
            start,
            host: &conn.ip,
            id: conn.client_id.0,
            user: raw_auth_user(&conn.auth_method, conn.credentials.as_deref()).unwrap_or(""),
            name: &conn.options.name,
            lang: &conn.options.lang,
            version: &conn.options.version,
            jwt: jwt.map_or("", |j| j.jwt.as_str()),
            issuer_key,
            name_tag: jwt.map_or("", |j| j.name_tag.as_str()),
            tags: jwt.map_or(&[][..], |j| &j.tags[..]),
        });
        let server = with_server.then(|| ServerNames {
            server: &self.identity.server_name,
            cluster: self
                .cluster
                .as_ref()
                .map_or("", |c| c.settings.name.as_str()),
        });
        Some(
            RequestInfo {
                account: &requester.name,
                service,
                rtt: conn.liveness.rtt(),
                details,
                server,
            }
            .to_json(),
        )
    }

    fn fire_response(&mut self, message: &Publish<'_>, hops: u8) -> Reach {
        let Some(token) = self.responses.token_of(message.subject) else {
            return Reach::None;
        };
        let Some(route) = self.responses.routes.get(&token) else {
            return Reach::None;
        };
        if route.expires <= self.now {
            self.responses.routes.remove(&token);
            return Reach::None;
        }
        let importer = route.importer;
        let reply = match route.response {
            ResponseType::Singleton => match self.responses.routes.remove(&token) {
                Some(route) => route.reply,
                None => return Reach::None,
            },
            ResponseType::Stream | ResponseType::Chunked => route.reply.clone(),
        };
        let response = Publish {
            subject: &reply,
            reply: None,
            ..*message
        };
        self.publish_local(importer, None, &response, hops + 1)
    }

    /// This shard's `_R_.<prefix>.>` subscription in `exporter`, made the
    /// first time a request goes there and replicated like a client's.
    fn install_response_subscription(&mut self, exporter: AccountId) {
        if self.responses.installed.contains(&exporter) {
            return;
        }
        let mut subject = self.responses.prefix.to_vec();
        subject.push(b'>');
        let sk = SubKey::new(self.subs.insert(Subscription::new(
            SubOwner::Responses,
            exporter,
            Sid::new(b""),
            &subject,
            None,
            1,
        )));
        self.accounts
            .get_mut(exporter)
            .insert_local(&subject, None, sk);
        self.broadcast_interest(self.originator, exporter, &subject, None, 1);
        self.responses.installed.push(exporter);
    }

    /// Housekeeping: routes whose threshold passed close.
    pub(super) fn expire_response_routes(&mut self) {
        if self.responses.routes.is_empty() {
            return;
        }
        let now = self.now;
        self.responses.routes.retain(|_, route| route.expires > now);
    }

    /// Open service response routes on this shard.
    pub fn open_response_routes(&self) -> usize {
        self.responses.len()
    }
}
