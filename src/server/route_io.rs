//! The cluster shard's route tasks on glommio: the route accept loop, one
//! dialler per route to solicit (configured seeds are retried forever every
//! second, gossiped ones `connect_retries` times, as nats-server), and the
//! reader of one route connection (its writer is the clients' writer).
//!
//! What the route ops mean is decided in the core
//! (`percore_core::shard::route_handshake` and `route_ops`); this file only
//! moves bytes and keeps timers.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use shards::net::{dial, HandOff, ShardListener};
use shards::sync::WaitList;
use shards::{task, timer};

use crate::connection::CloseReason;
use crate::ids::ClientId;
use crate::protocol::RouteParser;
use crate::read_buffer::ReadBuffer;
use crate::route::RouteUrl;
use crate::shard::route_handshake::{DialErrorReports, RouteDial};
use crate::shard::{Accepted, Next};
use crate::shard_io::SocketEndpoint;

use super::accept_backoff::AcceptBackoff;
use super::tls_tasks::{link_wants_writer, write_client_tls};
use super::{
    read_input, spawn_system_answers, wall_clock, write_client, ShardContext, STREAMING_READ_LEN,
};
use crate::tls::handshake::{handshake, HandshakeError};

/// nats-server's `DEFAULT_ROUTE_DIAL`.
const ROUTE_DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// nats-server's `DEFAULT_ROUTE_CONNECT`: between two failed dials.
const ROUTE_CONNECT_DELAY: Duration = Duration::from_secs(1);

/// Accepts route connections for as long as the shard runs. A failed
/// accept (typically out of descriptors) backs off as the client accept
/// loop does, with nats-server's words for the route listener.
pub(super) async fn route_accept_loop(ctx: Rc<ShardContext>, listener: ShardListener) {
    let mut backoff = AcceptBackoff::default();
    loop {
        match listener.accept().await {
            Ok(socket) => {
                backoff.succeeded();
                task::spawn(serve_route_then_redial(ctx.clone(), socket, None)).detach();
                // As the client accept loop: a full backlog must not keep
                // this task from giving way.
                task::yield_if_needed().await;
            }
            Err(e) => {
                let (line, delay) = backoff.failed("Route", &e);
                crate::error!("{line}");
                timer::sleep(delay).await;
            }
        }
    }
}

/// Starts dialling every configured seed.
pub(super) fn solicit_configured_routes(ctx: &Rc<ShardContext>) {
    let routes = ctx
        .shared
        .options
        .cluster
        .as_ref()
        .map(|c| c.routes.clone())
        .unwrap_or_default();
    for url in routes {
        spawn_dial(
            ctx,
            RouteDial {
                url,
                explicit: true,
                delay: Duration::ZERO,
                reconnect: false,
            },
        );
    }
}

/// Dials the servers gossip told the cluster shard about.
pub(super) fn dial_gossiped_routes(ctx: &Rc<ShardContext>) {
    let dials = ctx.broker.borrow_mut().take_route_dials();
    for dial in dials {
        spawn_dial(ctx, dial);
    }
}

fn spawn_dial(ctx: &Rc<ShardContext>, dial: RouteDial) {
    task::spawn(solicit(ctx.clone(), dial)).detach();
}

/// Whether `url` is this server's own route listener (a seed list shared by
/// every node names each node too): such a route is dropped, not dialled.
fn is_own_address(ctx: &ShardContext, url: &RouteUrl) -> bool {
    let Some(own) = ctx.shared.route_addr else {
        return false;
    };
    if url.port != own.port() {
        return false;
    }
    let Ok(addrs) = (url.host.as_str(), url.port).to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|addr| {
        let ip = addr.ip();
        ip == own.ip() || (own.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
    })
}

/// Dials `dial.url` until it connects (explicit routes: forever; gossiped
/// ones: `connect_retries` more times), serves the route, and dials again
/// when the core says so.
async fn solicit(ctx: Rc<ShardContext>, mut dial: RouteDial) {
    loop {
        if !dial.delay.is_zero() {
            timer::sleep(dial.delay).await;
        }
        if is_own_address(&ctx, &dial.url) {
            crate::debug!(
                "Detected route to self, ignoring \"{}\"",
                dial.url.redacted()
            );
            return;
        }
        let retries = ctx
            .shared
            .options
            .cluster
            .as_ref()
            .map_or(0, |c| c.connect_retries);
        let mut attempts: u64 = 0;
        let socket = loop {
            if ctx.stopping.get() {
                return;
            }
            let addr = resolve(&dial.url);
            crate::debug!(
                "Trying to connect to route on {} ({})",
                dial.url.host_port(),
                addr.map(|a| a.to_string()).unwrap_or_default()
            );
            // Failures in Go's words, as nats-server logs them.
            let result = match addr {
                Some(addr) => dial_socket(addr)
                    .await
                    .map_err(|e| crate::go_dial_error::dial_error(addr, &e)),
                None => Err(crate::go_dial_error::lookup_error(&dial.url.host)),
            };
            match result {
                Ok(socket) => break socket,
                Err(e) => {
                    attempts += 1;
                    // The options as last loaded: a reload changes how
                    // often the next failures are reported (as nats-server).
                    let reports = {
                        let loaded = ctx.shared.loaded();
                        DialErrorReports {
                            connect: loaded.options.connect_error_reports,
                            reconnect: loaded.options.reconnect_error_reports,
                        }
                    };
                    if reports.is_error(&dial, attempts) {
                        crate::error!("Error trying to connect to route (attempt {attempts}): {e}");
                    } else {
                        crate::debug!("Error trying to connect to route (attempt {attempts}): {e}");
                    }
                    if !dial.explicit && attempts > u64::from(retries) {
                        return;
                    }
                    timer::sleep(ROUTE_CONNECT_DELAY).await;
                }
            }
        };
        match serve_route(ctx.clone(), socket, Some((dial.url.clone(), dial.explicit))).await {
            Some(next) if !ctx.stopping.get() => dial = next,
            _ => return,
        }
    }
}

async fn dial_socket(addr: SocketAddr) -> std::io::Result<HandOff> {
    dial(addr, ROUTE_DIAL_TIMEOUT).await
}

fn resolve(url: &RouteUrl) -> Option<SocketAddr> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, url.port));
    }
    (url.host.as_str(), url.port).to_socket_addrs().ok()?.next()
}

async fn serve_route_then_redial(
    ctx: Rc<ShardContext>,
    socket: HandOff,
    solicited: Option<(RouteUrl, bool)>,
) {
    if let Some(next) = serve_route(ctx.clone(), socket, solicited).await {
        if !ctx.stopping.get() {
            spawn_dial(&ctx, next);
        }
    }
}

/// The reader of one route connection: read, parse, route, flush; repeat.
/// Returns where to dial next, if the route should be dialled again.
async fn serve_route(
    ctx: Rc<ShardContext>,
    socket: HandOff,
    solicited: Option<(RouteUrl, bool)>,
) -> Option<RouteDial> {
    let conn = match socket.adopt() {
        Ok(conn) => Rc::new(conn),
        Err(e) => {
            crate::error!("cannot adopt route connection: {e}");
            return None;
        }
    };
    let (ip, port) = conn
        .peer_addr()
        .map(|a| (a.ip().to_string(), a.port()))
        .unwrap_or_default();
    // `cluster { tls {} }`: the handshake comes first (we are the TLS
    // client on a route we dialled); CONNECT and INFO wait in the session.
    let route_tls = ctx.shared.route_tls.as_ref();
    let link = match route_tls {
        None => None,
        Some(tls) => {
            let link = match &solicited {
                Some((url, _)) => tls.dialled_link(&url.host),
                None => tls.accepted_link().map_err(|e| e.to_string()),
            };
            match link {
                Ok(link) => Some(Rc::new(link)),
                Err(e) => {
                    crate::error!("{ip}:{port} - cannot start route TLS: {e}");
                    return None;
                }
            }
        }
    };
    let writer_wake = Rc::new(WaitList::new());
    let route_id = ClientId(ctx.next_route_id.get());
    ctx.next_route_id.set(route_id.0 + 1);
    let log_label = format!("{ip}:{port} - rid:{route_id}");
    let accepted = Accepted {
        client_id: route_id,
        endpoint: SocketEndpoint {
            fd: conn.raw_fd(),
            writer_wake: writer_wake.clone(),
            tls: link.clone(),
        },
        ip,
        port,
        nonce: crate::auth_checks::new_nonce(),
    };
    let key =
        ctx.broker
            .borrow_mut()
            .register_route(accepted, solicited.clone(), Instant::now())?;
    if let Some(tls) = route_tls {
        // The authorization timer starts after the handshake, which has its
        // own timeout.
        ctx.broker
            .borrow_mut()
            .start_route_auth_timer_at(key, Instant::now() + tls.timeout);
    }
    ctx.end_of_work();
    let writer = match &link {
        None => task::spawn(write_client(ctx.clone(), key, conn.clone(), writer_wake)),
        Some(link) => task::spawn(write_client_tls(
            ctx.clone(),
            key,
            conn.clone(),
            writer_wake,
            link.clone(),
        )),
    };
    let mut parser = RouteParser::new();
    let mut buffer = ReadBuffer::new();
    let mut close_reason = CloseReason::ClientClosed;
    if let (Some(link), Some(tls)) = (&link, route_tls) {
        let side = if solicited.is_some() {
            "client"
        } else {
            "server"
        };
        crate::debug!("{log_label} - Starting TLS route {side} handshake");
        match handshake(&conn, link, &mut buffer, &tls.handshake_settings()).await {
            Ok(state) => {
                crate::debug!(
                    "{log_label} - TLS handshake complete, TLS version {}, cipher suite {}",
                    state.version,
                    state.cipher_suite
                );
                ctx.broker
                    .borrow_mut()
                    .route_tls_established(key, state, Instant::now());
                // CONNECT and INFO waited in the session: out they go.
                if !link.write_now(conn.raw_fd()).unwrap_or(true) {
                    link_wants_writer(&ctx, key);
                }
                ctx.end_of_work();
            }
            Err(HandshakeError::Timeout) => {
                crate::error!("{log_label} - TLS route handshake error: timeout");
                close_reason = CloseReason::TlsHandshakeFailure;
            }
            Err(HandshakeError::Failed(e)) => {
                crate::error!("{log_label} - TLS route handshake error: {e}");
                close_reason = CloseReason::TlsHandshakeFailure;
            }
        }
    }
    // Plaintext that came with the end of the handshake is parsed first.
    let mut carried_over = !buffer.data().is_empty();
    let mut units_this_turn = 0;
    let mut streaming = true;
    while close_reason == CloseReason::ClientClosed {
        ctx.wait_for_ring_space().await;
        if ctx.broker.borrow().is_closing(key) {
            break;
        }
        let mut last_read = false;
        if !carried_over {
            let (read, peer_closed) = read_input(
                &ctx,
                key,
                &conn,
                link.as_deref(),
                &mut buffer,
                streaming,
                &format_args!("{log_label}"),
            )
            .await;
            last_read = peer_closed;
            let n = match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => {
                    close_reason = CloseReason::ReadError;
                    break;
                }
            };
            streaming = n >= STREAMING_READ_LEN;
        }
        carried_over = false;
        ctx.catch_up_with_rings().await;
        let outcome = ctx.broker.borrow_mut().process_route_input(
            key,
            &mut parser,
            buffer.data(),
            Instant::now(),
        );
        buffer.consume(outcome.consumed);
        let max_pending = ctx.broker.borrow().limits().max_pending;
        buffer.note_ops(parser.take_ops_parsed(), max_pending);
        if let Some(needed) = parser.bytes_needed() {
            // In proportion to what arrived, not to what the peer announced
            // (routes have no max_payload): see `ReadBuffer::reserve_toward`.
            buffer.reserve_toward(needed);
        }
        dial_gossiped_routes(&ctx);
        // Another server's client asked this server's system services.
        spawn_system_answers(&ctx);
        if outcome.next == Next::Close {
            ctx.end_of_work();
            break;
        }
        ctx.finish_unit(&mut units_this_turn).await;
        if last_read {
            break;
        }
    }
    ctx.broker.borrow_mut().begin_close(key, close_reason);
    writer.await;
    let again = ctx.broker.borrow_mut().route_reconnect(key);
    ctx.broker.borrow_mut().remove_connection(key, wall_clock());
    ctx.departures.notify_all();
    ctx.end_of_work();
    again
}
