//! Driving one client's TLS handshake on its reader task, as nats-server
//! 2.9 orders it: INFO has already gone out in plaintext (unless
//! `handshake_first`), then the handshake, bounded by the `tls { timeout }`;
//! with `allow_non_tls`, the client's first byte decides (0x16, a TLS
//! handshake record, or plaintext).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use shards::net::Connection;
use shards::timer;

use super::config::spki_sha256;
use super::identity::{certificate_identity, peer_certs};
use super::session::{Phase, TlsLink, TlsRead, HANDSHAKE_RECORD};
use crate::connection::TlsState;
use crate::read_buffer::ReadBuffer;

/// One read of handshake bytes for the blocking thread (a client's flight
/// with its certificate chain fits; a larger one takes more reads).
const HANDSHAKE_READ: usize = 16 * 1024;

/// What a connection's handshake needs to know.
pub struct HandshakeSettings {
    pub timeout: Duration,
    /// Hex sha256 digests of accepted client certificates' SPKI (empty:
    /// no pinning).
    pub pinned: Arc<[String]>,
    /// `verify_and_map`: read the certificate's names for the auth policy.
    pub map: bool,
    /// Process the client's handshake messages on the shard's blocking
    /// thread (`--tls_offload`).
    pub offload: bool,
}

/// How the connection goes on.
#[derive(Debug)]
pub enum Negotiated {
    Tls(TlsState),
    /// `allow_non_tls` and the client spoke plaintext.
    Plaintext,
}

/// Why a handshake did not complete; both close the connection with
/// `TLS Handshake Failure`, after different log lines.
#[derive(Debug)]
pub enum HandshakeError {
    /// Logged as `TLS handshake timeout`.
    Timeout,
    /// Logged as `TLS handshake error: <text>`.
    Failed(String),
}

/// With `allow_non_tls` (link in [`Phase::Greeting`]): waits up to the
/// timeout for the client's first bytes, which stay in `buffer`. A client
/// that sends nothing in that time is taken as a plaintext one, as
/// nats-server does.
pub async fn client_wants_tls(
    conn: &Connection,
    buffer: &mut ReadBuffer,
    timeout: Duration,
) -> io::Result<bool> {
    let first = future::or(
        async {
            let spare = buffer.spare_mut();
            conn.read(spare).await.map(Some)
        },
        async {
            timer::sleep(timeout).await;
            Ok(None)
        },
    )
    .await?;
    match first {
        Some(0) => Err(io::ErrorKind::UnexpectedEof.into()),
        Some(n) => {
            buffer.filled_by(n);
            Ok(buffer.data()[0] == HANDSHAKE_RECORD)
        }
        None => Ok(false),
    }
}

/// Runs the handshake. Bytes already in `buffer` (read while deciding for
/// `allow_non_tls`) are its start; plaintext the client sends right behind
/// its last handshake message is left in `buffer` for the parser.
pub async fn handshake(
    conn: &Connection,
    link: &TlsLink,
    buffer: &mut ReadBuffer,
    settings: &HandshakeSettings,
) -> Result<TlsState, HandshakeError> {
    let early = buffer.data().to_vec();
    buffer.consume(early.len());
    link.set_phase(Phase::Handshaking);
    let exchange = async {
        if !early.is_empty() {
            if settings.offload {
                link.absorb_off_shard(early, buffer).await
            } else {
                link.absorb(&early, buffer)
            }
            .map_err(|e| HandshakeError::Failed(e.0))?;
        }
        loop {
            link.flush(conn).await.map_err(failed)?;
            if !link.is_handshaking() {
                return Ok(());
            }
            if settings.offload {
                let mut input = vec![0u8; HANDSHAKE_READ];
                let n = conn.read(&mut input).await.map_err(failed)?;
                if n == 0 {
                    return Err(HandshakeError::Failed("EOF".into()));
                }
                input.truncate(n);
                link.absorb_off_shard(input, buffer)
                    .await
                    .map_err(|e| HandshakeError::Failed(e.0))?;
                continue;
            }
            match link.read_into(conn, buffer, false).await.map_err(failed)? {
                TlsRead::Eof => return Err(HandshakeError::Failed("EOF".into())),
                TlsRead::Error(e) => return Err(HandshakeError::Failed(e.0)),
                TlsRead::Data { .. } => {}
            }
        }
    };
    let timed_out = async {
        timer::sleep(settings.timeout).await;
        Err(HandshakeError::Timeout)
    };
    if let Err(e) = future::or(exchange, timed_out).await {
        link.fail(conn.raw_fd());
        return Err(e);
    }
    let chain = link.peer_chain();
    let certificate = chain.first();
    if !settings.pinned.is_empty() {
        let pinned = certificate
            .and_then(spki_sha256)
            .is_some_and(|digest| settings.pinned.contains(&digest));
        if !pinned {
            link.fail(conn.raw_fd());
            return Err(HandshakeError::Failed("certificate not pinned".into()));
        }
    }
    link.set_phase(Phase::Established);
    let (version, cipher_suite) = link.describe();
    let certificate = if settings.map {
        certificate.and_then(certificate_identity).map(Arc::new)
    } else {
        None
    };
    Ok(TlsState {
        version,
        cipher_suite,
        certificate,
        peer_certs: peer_certs(&chain),
    })
}

fn failed(e: io::Error) -> HandshakeError {
    HandshakeError::Failed(e.to_string())
}
