//! The reading side of one client connection, once it is registered (and,
//! on a TLS port, past its handshake): read, parse, route, flush; repeat.
//!
//! A connection starts in the shard's newcomers' lane and moves to the
//! established lane once its CONNECT is accepted (`shards::task::Lane`): the
//! reader's state is this struct, so the task that carries it can end and a
//! task in the other lane pick it up where it stopped.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use shards::sync::WaitList;
use shards::task::{Lane, Task};

use super::account_lookup;
use super::{
    publish_system_events, read_input, spawn_system_answers, spawn_writer, wall_clock,
    ShardContext, STREAMING_READ_LEN,
};
use crate::auth::SlowOutcome;
use crate::connection::CloseReason;
use crate::ids::{ClientId, ConnKey};
use crate::protocol::Parser;
use crate::read_buffer::ReadBuffer;
use crate::shard::Next;
use crate::tls::session::TlsLink;

/// Why [`ClientReader::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadEnd {
    /// The connection is closing: call [`ClientReader::close`].
    Closed,
    /// Served in the newcomers' lane, the connection has been accepted
    /// (CONNECT, and its credentials if any): go on in the established lane.
    Established,
}

/// One client's reader state. Owned by the task that serves it (one at a
/// time: the newcomer's task hands it to the established one by value).
pub(super) struct ClientReader {
    pub key: ConnKey,
    pub client_id: ClientId,
    /// The client as log lines name it, `ip:port` (`connection::PeerAddr`).
    pub log_peer: String,
    pub conn: Rc<shards::net::Connection>,
    /// The record layer to read through, once TLS is up.
    pub tls: Option<Rc<TlsLink>>,
    /// The connection's TLS session (also while an allow_non_tls client
    /// speaks plaintext), for its writer.
    pub link: Option<Rc<TlsLink>>,
    pub writer_wake: Rc<WaitList>,
    pub parser: Parser,
    pub buffer: ReadBuffer,
    pub close_reason: CloseReason,
    /// The buffer holds bytes to parse before the next read.
    pub carried_over: bool,
    /// The last read was long: the next one tries the socket directly.
    pub streaming: bool,
    pub units_this_turn: u32,
    /// The connection's writer task, awaited when it closes.
    pub writer: Task<()>,
}

impl ClientReader {
    /// Serves the connection's input until it closes, or, in the
    /// newcomers' lane, until it is established.
    pub async fn serve(&mut self, ctx: &Rc<ShardContext>, lane: Lane) -> ReadEnd {
        let key = self.key;
        'reading: loop {
            if self.close_reason != CloseReason::ClientClosed {
                break;
            }
            ctx.wait_for_ring_space().await;
            if ctx.broker.borrow().is_closing(key) {
                break;
            }
            let mut last_read = false;
            if !self.carried_over {
                let (n, peer_closed) = read_input(
                    ctx,
                    key,
                    &self.conn,
                    self.tls.as_deref(),
                    &mut self.buffer,
                    self.streaming,
                    &format_args!("{} - cid:{}", self.log_peer, self.client_id),
                )
                .await;
                last_read = peer_closed;
                let n = match n {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => {
                        self.close_reason = CloseReason::ReadError;
                        break;
                    }
                };
                self.streaming = n >= STREAMING_READ_LEN;
            }
            self.carried_over = false;
            ctx.catch_up_with_rings().await;
            loop {
                let outcome = ctx.broker.borrow_mut().process_input(
                    key,
                    &mut self.parser,
                    self.buffer.data(),
                    Instant::now(),
                );
                self.buffer.consume(outcome.consumed);
                match outcome.next {
                    Next::NeedMore => {
                        if let Some(needed) = self.parser.bytes_needed() {
                            self.buffer.reserve_toward(needed);
                        }
                        break;
                    }
                    Next::Barrier => {
                        // Send what this client caused out to the other
                        // shards, then answer its PING only once they have
                        // applied it.
                        ctx.end_of_work();
                        let target = ctx.broker.borrow().barrier_target();
                        ctx.barrier
                            .wait_until(|| {
                                let broker = ctx.broker.borrow();
                                broker.barrier_reached(&target) || broker.is_closing(key)
                            })
                            .await;
                        ctx.broker.borrow_mut().send_pong(key);
                    }
                    Next::Verify => {
                        // Credentials that need bcrypt or Ed25519: check
                        // them on the blocking thread; the shard serves
                        // others meanwhile.
                        ctx.end_of_work();
                        let check = ctx.broker.borrow_mut().take_slow_check(key);
                        // Boxed for the same reason as the TLS handshake: a
                        // login's wait (~600 bytes) is not every client's.
                        let outcome = match check {
                            Some(check) => {
                                Box::pin(account_lookup::run_slow_check(ctx, check)).await
                            }
                            None => SlowOutcome::Checked(false),
                        };
                        let next = ctx
                            .broker
                            .borrow_mut()
                            .check_done(key, outcome, Instant::now());
                        if next == Next::Close {
                            ctx.end_of_work();
                            break 'reading;
                        }
                    }
                    Next::Close => {
                        ctx.end_of_work();
                        break 'reading;
                    }
                }
            }
            let max_pending = ctx.broker.borrow().limits().max_pending;
            self.buffer
                .note_ops(self.parser.take_ops_parsed(), max_pending);
            spawn_system_answers(ctx);
            publish_system_events(ctx);
            ctx.finish_unit(&mut self.units_this_turn).await;
            if last_read {
                break;
            }
            if lane == Lane::Newcomers && ctx.broker.borrow().is_established(key) {
                return ReadEnd::Established;
            }
        }
        ReadEnd::Closed
    }

    /// Replaces the writer task by one in `lane` if the writer holds
    /// nothing (no backlog taken, no ciphertext left in the session), so
    /// that an established connection's writes are not scheduled with the
    /// newcomers'. A writer that is busy stays where it is: cancelling it
    /// would lose what it holds, and only a slow socket at connect time
    /// keeps it busy.
    pub fn move_writer_to(&mut self, ctx: &Rc<ShardContext>, lane: Lane) {
        let idle = ctx.broker.borrow().writer_idle(self.key)
            && self.link.as_ref().is_none_or(|link| !link.wants_flush());
        if !idle {
            return;
        }
        let replacement = spawn_writer(
            ctx,
            self.key,
            &self.conn,
            &self.writer_wake,
            self.link.as_ref(),
            lane,
        );
        // Dropping the old handle cancels that task where it waits for work.
        drop(std::mem::replace(&mut self.writer, replacement));
    }

    /// Closes the connection once its reading ended: the reason goes to
    /// the core, the writer flushes what it can and ends, and the
    /// connection leaves the shard's tables.
    pub async fn close(self, ctx: &Rc<ShardContext>) {
        ctx.broker
            .borrow_mut()
            .begin_close(self.key, self.close_reason);
        self.writer.await;
        if ctx
            .broker
            .borrow_mut()
            .remove_connection(self.key, wall_clock())
        {
            ctx.shared.live_connections.fetch_sub(1, Ordering::Relaxed);
        }
        ctx.departures.notify_all();
        publish_system_events(ctx);
        ctx.end_of_work();
    }
}
