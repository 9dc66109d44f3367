//! The TLS half of a client's tasks (see `crate::tls` for the record layer
//! itself): starting TLS on the reader task after INFO (the rate limit, an
//! `allow_non_tls` client's choice, the handshake and its failures, as
//! nats-server logs and closes them), and the writer task of a TLS
//! connection.

use std::time::Instant;

use shards::sync::WaitList;
use shards::task;
use std::rc::Rc;

use super::{write_backlog_plain, ShardContext};
use crate::connection::CloseReason;
use crate::ids::{ClientId, ConnKey};
use crate::outbound_queue::BlockPool;
use crate::read_buffer::ReadBuffer;
use crate::tls::handshake::{client_wants_tls, handshake, HandshakeError};
use crate::tls::session::{Phase, TlsLink};
use crate::tls::Accepting;

/// INFO has been queued in plaintext (unless `handshake_first`); sees it
/// out, lets an `allow_non_tls` client choose, and runs the handshake.
/// `Err` carries the reason to close with.
pub(super) async fn start_tls(
    ctx: &ShardContext,
    key: ConnKey,
    (ip, cid): (&str, ClientId),
    conn: &shards::net::Connection,
    link: &TlsLink,
    accepting: &Accepting,
    buffer: &mut ReadBuffer,
) -> Result<(), CloseReason> {
    if link.phase() == Phase::Greeting {
        // No TLS byte may leave before the last byte of INFO.
        ctx.drained
            .wait_until(|| {
                let broker = ctx.broker.borrow();
                broker.output_pending(key) == 0 || broker.is_closing(key)
            })
            .await;
        if accepting.allow_non_tls {
            match client_wants_tls(conn, buffer, accepting.timeout).await {
                Ok(true) => {}
                Ok(false) => {
                    link.set_phase(Phase::Plaintext);
                    ctx.broker
                        .borrow_mut()
                        .start_auth_timer_at(key, Instant::now());
                    return Ok(());
                }
                Err(_) => return Err(CloseReason::ReadError),
            }
        }
    }
    if let Some(rate) = &accepting.rate_limit {
        if !rate.allow(Instant::now()) {
            ctx.broker.borrow_mut().refuse_throttled(key);
            ctx.end_of_work();
            return Err(CloseReason::MaxConnectionsExceeded);
        }
    }
    crate::debug!("{ip} - cid:{cid} - Starting TLS client connection handshake");
    match handshake(conn, link, buffer, &accepting.handshake_settings()).await {
        Ok(state) => {
            crate::debug!(
                "{ip} - cid:{cid} - TLS handshake complete, TLS version {}, cipher suite {}",
                state.version,
                state.cipher_suite
            );
            ctx.broker
                .borrow_mut()
                .tls_established(key, state, Instant::now());
            // What waited in the session for the handshake (INFO with
            // handshake_first) goes out now.
            if !link.write_now(conn.raw_fd()).unwrap_or(true) {
                link_wants_writer(ctx, key);
            }
            ctx.end_of_work();
            Ok(())
        }
        Err(HandshakeError::Timeout) => {
            crate::error!("{ip} - cid:{cid} - TLS handshake timeout");
            Err(close_handshake_failure(ctx, key))
        }
        Err(HandshakeError::Failed(e)) => {
            crate::error!("{ip} - cid:{cid} - TLS handshake error: {e}");
            Err(close_handshake_failure(ctx, key))
        }
    }
}

/// nats-server closes a failed handshake without a flush; the link is
/// already `Failed`, so nothing queued reaches the socket.
fn close_handshake_failure(ctx: &ShardContext, key: ConnKey) -> CloseReason {
    ctx.broker
        .borrow_mut()
        .begin_close(key, CloseReason::TlsHandshakeFailure);
    CloseReason::TlsHandshakeFailure
}

/// Ciphertext is left in a session: its writer task takes over.
pub(super) fn link_wants_writer(ctx: &ShardContext, key: ConnKey) {
    if let Some(endpoint) = ctx.broker.borrow().endpoint(key) {
        endpoint.writer_wake.notify_all();
    }
}

/// The writer side of a TLS client: flushes ciphertext the direct send
/// left in the session, and encrypts and writes the backlog the state
/// machine hands over (see `TlsLink` for the ordering contract).
pub(super) async fn write_client_tls(
    ctx: Rc<ShardContext>,
    key: ConnKey,
    conn: Rc<shards::net::Connection>,
    wake: Rc<WaitList>,
    link: Rc<TlsLink>,
) {
    loop {
        wake.wait_until(|| link.wants_flush() || ctx.broker.borrow().writer_should_run(key))
            .await;
        if link.wants_flush() && link.flush(&conn).await.is_err() {
            ctx.broker
                .borrow_mut()
                .writer_done(key, BlockPool::default(), false, Instant::now());
            return;
        }
        if !ctx.broker.borrow().writer_should_run(key) {
            continue;
        }
        let more = match link.phase() {
            // allow_non_tls chose plaintext (or INFO is still going out).
            Phase::Greeting | Phase::Plaintext => write_backlog_plain(&ctx, key, &conn).await,
            _ => write_backlog_tls(&ctx, key, &conn, &link).await,
        };
        if !more {
            return;
        }
    }
}

/// Encrypts the connection's backlog and writes it; false when the writer
/// should end.
async fn write_backlog_tls(
    ctx: &ShardContext,
    key: ConnKey,
    conn: &shards::net::Connection,
    link: &TlsLink,
) -> bool {
    let Some(mut queue) = ctx.broker.borrow_mut().take_for_writer(key, Instant::now()) else {
        return false;
    };
    let mut blocks = BlockPool::default();
    let mut ok = true;
    while !queue.is_empty() {
        let Ok(n) = link.encrypt(&queue.send_slices()) else {
            ok = false;
            break;
        };
        if n > 0 {
            queue.consume(&mut blocks, n);
            ctx.broker
                .borrow_mut()
                .chunk_written(key, n, Instant::now());
        }
        // Makes room in the session for the next piece.
        if link.flush(conn).await.is_err() {
            ok = false;
            break;
        }
        if n == 0 {
            // Nothing taken although the session was just flushed: another
            // flusher holds its ciphertext; let it run.
            task::yield_now().await;
        }
    }
    queue.clear(&mut blocks);
    ctx.broker
        .borrow_mut()
        .writer_done(key, blocks, ok, Instant::now());
    ok
}
