//! Account connection events on the system account, as nats-server 2.9
//! sends them: `$SYS.ACCOUNT.<account>.CONNECT` once a client is
//! authenticated into an account, `$SYS.ACCOUNT.<account>.DISCONNECT` when it
//! is removed. Clients of the global account (`$G`) send none, as in
//! nats-server.
//!
//! Cost: nothing on the message path; per connect and disconnect, one
//! subject formatted and one (cached) match in the system account's index,
//! which holds every shard's interest. Only when someone listens is the
//! connection's snapshot taken; the JSON is the runtime's to build
//! (wall-clock time, the server's identity), from
//! [`ShardBroker::take_system_events`], and it publishes it with
//! [`ShardBroker::publish_system`].

use crate::connection::{AuthState, ConnKind};
use crate::ids::{AccountId, ConnKey};
use crate::io::ShardIo;
use crate::snapshot::ConnectionSnapshot;

use super::{ShardBroker, WallClock};

/// Which event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemEventKind {
    Connect,
    Disconnect,
}

/// One event for the runtime to render and publish.
#[derive(Debug, Clone)]
pub struct SystemEvent {
    pub kind: SystemEventKind,
    /// `$SYS.ACCOUNT.<account>.CONNECT` or `.DISCONNECT`.
    pub subject: String,
    /// The client as the monitor sees it (its `reason` set for a
    /// disconnect).
    pub connection: ConnectionSnapshot,
}

/// Events waiting for the runtime. A connect waits as the connection's key:
/// its snapshot is taken when the runtime takes it (the same unit of work,
/// with the runtime's clock).
#[derive(Debug)]
pub(super) enum PendingEvent {
    Connect { key: ConnKey, subject: String },
    Ready(Box<SystemEvent>),
}

fn event_subject(account: &str, kind: SystemEventKind) -> String {
    let suffix = match kind {
        SystemEventKind::Connect => "CONNECT",
        SystemEventKind::Disconnect => "DISCONNECT",
    };
    format!("$SYS.ACCOUNT.{account}.{suffix}")
}

impl<I: ShardIo> ShardBroker<I> {
    /// The subject of `kind` for a client of `account`, when a system
    /// account exists, the client is not in `$G` and someone on any shard
    /// listens to it.
    fn listened_event_subject(
        &mut self,
        account: AccountId,
        kind: SystemEventKind,
    ) -> Option<String> {
        let system = self.limits.accounts.system()?;
        if account == AccountId::GLOBAL {
            return None;
        }
        let subject = event_subject(self.limits.accounts.name(account), kind);
        let listened = !self
            .accounts
            .get_mut(system)
            .matches(subject.as_bytes())
            .is_empty();
        listened.then_some(subject)
    }

    /// Client `key` was just authenticated into its account.
    pub(super) fn note_connect(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.kind != ConnKind::Client {
            return;
        }
        let account = conn.account;
        if let Some(subject) = self.listened_event_subject(account, SystemEventKind::Connect) {
            self.system_events
                .push(PendingEvent::Connect { key, subject });
        }
    }

    /// Client `key` is being removed (its close reason is set).
    pub(super) fn note_disconnect(&mut self, key: ConnKey, clock: &WallClock) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        // A connect not taken yet (the client closed in the unit it logged
        // in) is snapshotted now, while the connection is still there, so
        // it is not lost and its key never names another connection.
        let pending_connect = self
            .system_events
            .iter()
            .position(|e| matches!(e, PendingEvent::Connect { key: k, .. } if *k == key));
        if let Some(at) = pending_connect {
            if let PendingEvent::Connect { subject, .. } = &self.system_events[at] {
                let event = SystemEvent {
                    kind: SystemEventKind::Connect,
                    subject: subject.clone(),
                    connection: self.connection_snapshot(conn, false, clock),
                };
                self.system_events[at] = PendingEvent::Ready(Box::new(event));
            }
        }
        if conn.kind != ConnKind::Client || !matches!(conn.auth, AuthState::Done | AuthState::Open)
        {
            return;
        }
        let account = conn.account;
        let Some(subject) = self.listened_event_subject(account, SystemEventKind::Disconnect)
        else {
            return;
        };
        let conn = &self.conns[key];
        let mut connection = self.connection_snapshot(conn, false, clock);
        connection.stop = Some(clock.wall_now);
        connection.reason = Some(
            conn.closing
                .unwrap_or(crate::connection::CloseReason::ClientClosed)
                .as_str()
                .to_string(),
        );
        self.system_events
            .push(PendingEvent::Ready(Box::new(SystemEvent {
                kind: SystemEventKind::Disconnect,
                subject,
                connection,
            })));
    }

    /// The events since the last call, for the runtime to publish.
    pub fn take_system_events(&mut self, clock: &WallClock) -> Vec<SystemEvent> {
        if self.system_events.is_empty() {
            return Vec::new();
        }
        let pending = std::mem::take(&mut self.system_events);
        pending
            .into_iter()
            .filter_map(|event| match event {
                PendingEvent::Ready(event) => Some(*event),
                PendingEvent::Connect { key, subject } => {
                    let conn = self.conns.get(key)?;
                    Some(SystemEvent {
                        kind: SystemEventKind::Connect,
                        subject,
                        connection: self.connection_snapshot(conn, false, clock),
                    })
                }
            })
            .collect()
    }

    /// Whether events wait for [`ShardBroker::take_system_events`].
    pub fn has_system_events(&self) -> bool {
        !self.system_events.is_empty()
    }
}
