//! The TLS record layer of one connection: a rustls sans-I/O
//! [`rustls::Connection`] (a [`ServerConnection`] for clients and accepted
//! routes, a [`ClientConnection`] for routes this server dials) between the
//! socket and the parser, on the shard that owns the connection. The rest of the broker reads and writes
//! plaintext; this is the only place ciphertext exists.
//!
//! # Who touches it (concurrency contract)
//!
//! A [`TlsLink`] is shard-local (`Rc`, `RefCell`), shared by three parties,
//! none of which holds the borrow across an `.await`:
//! - the state machine's direct send ([`TlsLink::send`], through
//!   `GlommioIo`): encrypts the plaintext it is given into the session and
//!   writes ciphertext to the socket without waiting;
//! - the connection's reader task: drives the handshake, then turns
//!   ciphertext from the socket into plaintext for the parser
//!   ([`TlsLink::read_into`]);
//! - the connection's writer task: encrypts what the state machine handed it
//!   ([`TlsLink::encrypt`]) and flushes ciphertext the socket did not take
//!   ([`TlsLink::flush`]).
//!
//! During the handshake only the reader task writes to the socket. With
//! `--tls_offload` the session itself travels to the shard's blocking
//! thread for each of the client's flights and back
//! ([`TlsLink::absorb_off_shard`]); a send meanwhile is kept aside and
//! handed to the session, in order, when it is back. Closing
//! ([`TlsLink::shutdown`]) adds a `close_notify` only when the socket is
//! free to take it (no chunk out), so it can never cut into a record.
//!
//! # No byte lost or reordered
//!
//! Plaintext reaches the session in the state machine's order: its output
//! queue hands bytes either to the direct send or, while the writer task
//! owns the backlog, to the writer only (`OutputState`). Ciphertext then
//! lives in one FIFO, the session's, and leaves it only from the front,
//! either straight into the kernel (a non-blocking send) or as one chunk
//! that a flusher takes out to await the socket with. While such a chunk is
//! out (`chunk_out`), nobody else writes to the socket: the direct send only
//! encrypts into the FIFO, and the chunk's flusher empties the FIFO before
//! it stops. Whoever leaves ciphertext behind because the socket is full
//! wakes the writer task, whose wake condition includes
//! [`TlsLink::wants_flush`]; so ciphertext never waits without a task
//! responsible for it, even when the state machine believes its bytes are
//! all sent.
//!
//! # Backpressure
//!
//! Once established, the session refuses plaintext while more than
//! [`SESSION_BUFFER_LIMIT`] of ciphertext waits for the socket; the direct
//! send then reports a partial send, so the state machine's own queue keeps
//! the backlog and its slow-consumer and stall rules apply as for plaintext.
//! During the handshake the limit is off: the state machine then sends only
//! a few bytes (INFO with `handshake_first`, a PING, an `-ERR`), and they
//! must be taken whole, because only the reader task writes to the socket
//! while the handshake runs.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, ServerConfig, ServerConnection};
use shards::net::{shutdown_fd, try_send_vectored_fd, Connection};
use shards::sync::WaitList;

use super::config::SESSION_BUFFER_LIMIT;
use crate::outbound_queue::BLOCK_SIZE;
use crate::read_buffer::{ReadBuffer, MAX_READ_CHUNK};

/// Where a connection's TLS stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// INFO goes out in plaintext before the handshake (nats-server 2.9);
    /// sends are plain socket writes.
    Greeting,
    /// The handshake runs; the reader task is the only socket writer.
    Handshaking,
    /// Application data, encrypted both ways.
    Established,
    /// `allow_non_tls` and the client did not start a handshake: the link
    /// is a plain socket from now on.
    Plaintext,
    /// The handshake failed: nothing more is sent (nats-server closes
    /// without a flush).
    Failed,
}

/// One client's TLS record layer, shared (`Rc`) by the state machine's
/// endpoint and the connection's reader and writer tasks.
///
/// Contract (the module docs say why it holds): ciphertext leaves the
/// session only from the front and only into the socket; while a flusher
/// holds a chunk it took out (`chunk_out`), nobody else writes to the
/// socket and that flusher empties the session before it stops; whoever
/// leaves ciphertext behind wakes the writer task, which flushes it before
/// anything it encrypts itself. So no byte is lost or reordered, whether the
/// state machine's direct send, the writer task or the reader (handshake,
/// alerts) produced it.
pub struct TlsLink {
    /// `None` only while one handshake step runs on the shard's blocking
    /// thread (`absorb_off_shard`); the reader task, which sent it there,
    /// is then awaiting it and nothing else needs it but a send, which is
    /// kept in `early` meanwhile.
    session: RefCell<Option<rustls::Connection>>,
    /// Plaintext the state machine sent while the session was away.
    early: RefCell<Vec<u8>>,
    phase: Cell<Phase>,
    /// A flusher has taken ciphertext out of the session and awaits the
    /// socket with it; everything still in the session goes after it.
    chunk_out: Cell<bool>,
    /// The client's first byte has been seen (and was a handshake record).
    first_byte_seen: Cell<bool>,
    /// The client is not speaking TLS at all: fail without an alert, as
    /// nats-server (Go) does for a first record that is no handshake.
    not_tls: Cell<bool>,
}

/// What one read from a TLS socket came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRead {
    /// The socket reached end of stream.
    Eof,
    /// `ciphertext` bytes were read; their plaintext (if any) was appended.
    Data {
        ciphertext: usize,
        /// The client sent `close_notify`.
        peer_closed: bool,
    },
    /// The client's bytes broke the protocol.
    Error(TlsError),
}

/// The result of feeding ciphertext to the session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Absorbed {
    /// The client sent `close_notify`: no more data will come.
    pub peer_closed: bool,
}

/// A TLS protocol error from the client's bytes (a failed handshake, a bad
/// record), worded as rustls words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The content type of a TLS handshake record, a client's first byte.
pub const HANDSHAKE_RECORD: u8 = 0x16;

thread_local! {
    /// One ciphertext buffer per shard thread, borrowed only between two
    /// awaits: every TLS read is copied here and goes straight into its
    /// session, so a TLS connection holds no ciphertext buffer of ours.
    static CIPHERTEXT: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_READ_CHUNK]);
}

impl TlsLink {
    pub fn new(config: Arc<ServerConfig>, phase: Phase) -> Result<TlsLink, rustls::Error> {
        Ok(TlsLink::with_connection(
            ServerConnection::new(config)?.into(),
            phase,
        ))
    }

    /// The TLS client side (a route this server dials): the handshake runs
    /// first, so the link starts in [`Phase::Handshaking`].
    pub fn new_client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<TlsLink, rustls::Error> {
        Ok(TlsLink::with_connection(
            ClientConnection::new(config, server_name)?.into(),
            Phase::Handshaking,
        ))
    }

    fn with_connection(mut session: rustls::Connection, phase: Phase) -> TlsLink {
        session.set_buffer_limit(None);
        TlsLink {
            session: RefCell::new(Some(session)),
            early: RefCell::new(Vec::new()),
            phase: Cell::new(phase),
            chunk_out: Cell::new(false),
            first_byte_seen: Cell::new(false),
            not_tls: Cell::new(false),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    pub fn set_phase(&self, phase: Phase) {
        if phase == Phase::Established {
            self.with_session(|s| s.set_buffer_limit(Some(SESSION_BUFFER_LIMIT)));
        }
        self.phase.set(phase);
    }

    /// `work` on the session, unless it is away on the blocking thread.
    fn with_session<R>(&self, work: impl FnOnce(&mut rustls::Connection) -> R) -> Option<R> {
        self.session.borrow_mut().as_mut().map(work)
    }

    /// The state machine's direct send: how many plaintext bytes the link
    /// took (0: full, the writer task takes over). Never waits.
    pub fn send(
        &self,
        fd: RawFd,
        slices: &[IoSlice<'_>],
        writer_wake: &WaitList,
    ) -> io::Result<usize> {
        match self.phase.get() {
            Phase::Greeting | Phase::Plaintext => try_send_vectored_fd(fd, slices),
            Phase::Failed => Err(io::ErrorKind::BrokenPipe.into()),
            Phase::Handshaking => match self.with_session(|s| s.writer().write_vectored(slices)) {
                Some(taken) => taken,
                None => {
                    let mut early = self.early.borrow_mut();
                    for slice in slices {
                        early.extend_from_slice(slice);
                    }
                    Ok(slices.iter().map(|s| s.len()).sum())
                }
            },
            Phase::Established => self.send_established(fd, slices, writer_wake),
        }
    }

    /// Encrypts and writes while the socket takes it: a batch larger than
    /// the session's window (one unit of work's deliveries can be) goes out
    /// on this direct path, in window-sized pieces, instead of waking the
    /// writer task while the socket still has room.
    fn send_established(
        &self,
        fd: RawFd,
        slices: &[IoSlice<'_>],
        writer_wake: &WaitList,
    ) -> io::Result<usize> {
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let mut taken = self.encrypt(slices)?;
        loop {
            if !self.write_now(fd)? {
                writer_wake.notify_all();
                return Ok(taken);
            }
            if taken == total {
                return Ok(taken);
            }
            // What is left of `slices` (rare: a batch over the window).
            let mut rest = slices.to_vec();
            let mut view = &mut rest[..];
            IoSlice::advance_slices(&mut view, taken);
            let more = self.encrypt(view)?;
            if more == 0 {
                return Ok(taken);
            }
            taken += more;
        }
    }

    /// Encrypts plaintext into the session without writing (the writer
    /// task's step); how much it took.
    pub fn encrypt(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.phase.get() == Phase::Failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.with_session(|s| s.writer().write_vectored(slices))
            .unwrap_or_else(|| Err(io::ErrorKind::BrokenPipe.into()))
    }

    /// Ciphertext waits and nobody is flushing it (the writer task's wake
    /// condition).
    pub fn wants_flush(&self) -> bool {
        self.phase.get() == Phase::Established
            && !self.chunk_out.get()
            && self.with_session(|s| s.wants_write()).unwrap_or(false)
    }

    /// Writes ciphertext from the front of the session without waiting.
    /// True when nothing is left for this caller to do: the session is
    /// empty, or another flusher holds a chunk and will empty it.
    pub fn write_now(&self, fd: RawFd) -> io::Result<bool> {
        if self.chunk_out.get() {
            return Ok(true);
        }
        let mut session = self.session.borrow_mut();
        // Away on the blocking thread: its owner flushes when it is back.
        let Some(session) = session.as_mut() else {
            return Ok(true);
        };
        while session.wants_write() {
            match session.write_tls(&mut SocketWriter(fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes all ciphertext, waiting for the socket as needed (or leaves it
    /// to the flusher that holds a chunk).
    pub async fn flush(&self, conn: &Connection) -> io::Result<()> {
        loop {
            if self.write_now(conn.raw_fd())? {
                return Ok(());
            }
            let chunk = self.take_chunk();
            self.chunk_out.set(true);
            let written = conn.write_all(&chunk).await;
            self.chunk_out.set(false);
            written?;
        }
    }

    /// Up to one output block of ciphertext from the front of the session.
    fn take_chunk(&self) -> Vec<u8> {
        let mut chunk = BoundedVec {
            bytes: Vec::new(),
            limit: BLOCK_SIZE,
        };
        let mut session = self.session.borrow_mut();
        let Some(session) = session.as_mut() else {
            return chunk.bytes;
        };
        while session.wants_write() && chunk.bytes.len() < chunk.limit {
            if session.write_tls(&mut chunk).is_err() {
                break;
            }
        }
        chunk.bytes
    }

    /// Closing: a `close_notify` if the session is up and the socket is
    /// ours to write now, then the socket shutdown (the reader sees EOF).
    pub fn shutdown(&self, fd: RawFd) {
        if self.phase.get() == Phase::Established && !self.chunk_out.get() {
            self.with_session(|s| s.send_close_notify());
            let _ = self.write_now(fd);
        }
        shutdown_fd(fd);
    }

    /// Reads what the socket has (first trying without waiting when the
    /// connection is `streaming`) and appends the plaintext it decrypts to
    /// `plaintext`.
    ///
    /// The ciphertext is read into `plaintext`'s free space (one socket
    /// operation, as on a plaintext connection), copied to the shard's
    /// ciphertext buffer, and decrypted from there into that same space.
    pub async fn read_into(
        &self,
        conn: &Connection,
        plaintext: &mut ReadBuffer,
        streaming: bool,
    ) -> io::Result<TlsRead> {
        let n = {
            let spare = plaintext.spare_mut();
            let limit = spare.len().min(MAX_READ_CHUNK);
            let spare = &mut spare[..limit];
            let attempt = if streaming {
                conn.try_recv(spare)?
            } else {
                None
            };
            let n = match attempt {
                Some(n) => n,
                None => conn.read(spare).await?,
            };
            CIPHERTEXT.with(|buffer| buffer.borrow_mut()[..n].copy_from_slice(&spare[..n]));
            n
        };
        if n == 0 {
            return Ok(TlsRead::Eof);
        }
        Ok(CIPHERTEXT.with(|buffer| {
            let buffer = buffer.borrow();
            match self.absorb(&buffer[..n], plaintext) {
                Ok(absorbed) => TlsRead::Data {
                    ciphertext: n,
                    peer_closed: absorbed.peer_closed,
                },
                Err(e) => TlsRead::Error(e),
            }
        }))
    }

    /// Feeds ciphertext to the session and moves the plaintext it yields to
    /// `plaintext`; handshake messages it yields wait in the session for a
    /// flush.
    pub fn absorb(&self, input: &[u8], plaintext: &mut ReadBuffer) -> Result<Absorbed, TlsError> {
        self.check_first_byte(input)?;
        self.with_session(|session| feed(session, input, plaintext))
            .unwrap_or_else(|| Err(TlsError("TLS session busy".into())))
    }

    /// [`TlsLink::absorb`] with the session's work (the handshake's key
    /// exchange, signature and certificate checks) done on the shard's
    /// blocking thread, so a costly handshake does not hold up the shard's
    /// other connections. For the reader task during the handshake only.
    pub async fn absorb_off_shard(
        &self,
        input: Vec<u8>,
        plaintext: &mut ReadBuffer,
    ) -> Result<Absorbed, TlsError> {
        self.check_first_byte(&input)?;
        let Some(mut session) = self.session.borrow_mut().take() else {
            return Err(TlsError("TLS session busy".into()));
        };
        let (session, outcome) = shards::task::spawn_blocking(move || {
            let mut decrypted = ReadBuffer::new();
            let outcome = feed(&mut session, &input, &mut decrypted);
            (session, outcome.map(|absorbed| (absorbed, decrypted)))
        })
        .await;
        *self.session.borrow_mut() = Some(session);
        let early = std::mem::take(&mut *self.early.borrow_mut());
        if !early.is_empty() {
            // Limit off during the handshake: all of it is taken.
            let _ = self.with_session(|s| s.writer().write_all(&early));
        }
        let (absorbed, decrypted) = outcome?;
        let mut bytes = decrypted.data();
        while !bytes.is_empty() {
            let spare = plaintext.spare_mut();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            plaintext.filled_by(n);
            bytes = &bytes[n..];
        }
        Ok(absorbed)
    }

    /// A client whose first byte is no TLS handshake record is not
    /// speaking TLS at all.
    fn check_first_byte(&self, input: &[u8]) -> Result<(), TlsError> {
        if let Some(&first) = input.first() {
            if !self.first_byte_seen.replace(true) && first != HANDSHAKE_RECORD {
                // A plaintext client on a TLS port (its CONNECT, say).
                self.not_tls.set(true);
                return Err(TlsError(
                    "tls: first record does not look like a TLS handshake".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn is_handshaking(&self) -> bool {
        self.with_session(|s| s.is_handshaking()).unwrap_or(true)
    }

    /// `/connz` `tls_version` and `tls_cipher_suite`, as nats-server
    /// names them.
    pub fn describe(&self) -> (&'static str, &'static str) {
        self.with_session(|session| describe(session))
            .unwrap_or(("Unknown", "Unknown"))
    }

    /// The certificate chain the client sent (its own first); empty if none.
    pub fn peer_chain(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        self.with_session(|s| s.peer_certificates().map(<[_]>::to_vec))
            .flatten()
            .unwrap_or_default()
    }

    /// The handshake failed: whatever alert rustls queued goes out if the
    /// socket takes it now; then nothing more is sent.
    pub fn fail(&self, fd: RawFd) {
        self.chunk_out.set(false);
        if !self.not_tls.get() {
            let _ = self.write_now(fd);
        }
        self.phase.set(Phase::Failed);
    }
}

/// Feeds `input` to the session, moving the plaintext it yields to
/// `plaintext` as it goes (the session takes no more ciphertext while its
/// own plaintext buffer is full).
fn feed(
    session: &mut rustls::Connection,
    mut input: &[u8],
    plaintext: &mut ReadBuffer,
) -> Result<Absorbed, TlsError> {
    let mut absorbed = Absorbed::default();
    while !input.is_empty() {
        match session.read_tls(&mut input) {
            // close_notify already received: what follows is ignored.
            Ok(0) => break,
            Ok(_) => {}
            // "received plaintext buffer full": drained below.
            Err(_) => {}
        }
        let state = session
            .process_new_packets()
            .map_err(|e| TlsError(e.to_string()))?;
        absorbed.peer_closed |= state.peer_has_closed();
        if state.plaintext_bytes_to_read() > 0 {
            drain(session, plaintext)?;
        }
    }
    Ok(absorbed)
}

/// The negotiated version and suite, as nats-server names them.
fn describe(session: &rustls::Connection) -> (&'static str, &'static str) {
    let version = match session.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "1.3",
        Some(ProtocolVersion::TLSv1_2) => "1.2",
        _ => "Unknown",
    };
    let suite = session
        .negotiated_cipher_suite()
        .map_or("Unknown", |s| go_cipher_name(s.suite()));
    (version, suite)
}

/// Moves every plaintext byte the session holds into `plaintext`.
fn drain(session: &mut rustls::Connection, plaintext: &mut ReadBuffer) -> Result<(), TlsError> {
    loop {
        let spare = plaintext.spare_mut();
        match session.reader().read(spare) {
            Ok(0) => return Ok(()),
            Ok(n) => plaintext.filled_by(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(TlsError(e.to_string())),
        }
    }
}

/// Go's names for the suites rustls negotiates (nats-server prints these).
fn go_cipher_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as S;
    match suite {
        S::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        S::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        S::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        }
        S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        _ => "Unknown",
    }
}

/// `io::Write` over a socket with non-blocking sends: a full socket is
/// `WouldBlock`, which leaves the bytes in the session.
struct SocketWriter(RawFd);

impl Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match try_send_vectored_fd(self.0, bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects ciphertext up to `limit` bytes (whole records may overshoot it
/// by less than one record: rustls writes a record's remainder next time).
struct BoundedVec {
    bytes: Vec<u8>,
    limit: usize,
}

impl Write for BoundedVec {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.bytes.len());
        let n = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Wake, Waker};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn pair() -> (TlsLink, ClientConnection) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der: CertificateDer<'static> = cert.der().clone();
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let mut roots = RootCertStore::empty();
        roots.add(der).expect("root");
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let link = TlsLink::new(Arc::new(server), Phase::Handshaking).expect("link");
        let client = ClientConnection::new(
            Arc::new(client),
            "localhost".try_into().expect("server name"),
        )
        .expect("client");
        (link, client)
    }

    /// The handshake in memory, as the reader task would drive it.
    fn establish(link: &TlsLink, client: &mut ClientConnection) {
        let mut plaintext = ReadBuffer::new();
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).expect("client write");
            }
            if !to_server.is_empty() {
                link.absorb(&to_server, &mut plaintext).expect("absorb");
            }
            let to_client = link.take_chunk();
            if !to_client.is_empty() {
                client.read_tls(&mut &to_client[..]).expect("client read");
                client.process_new_packets().expect("client process");
            }
            if !link.is_handshaking() && !client.is_handshaking() && !client.wants_write() {
                break;
            }
        }
        assert!(!link.is_handshaking(), "handshake done");
        link.set_phase(Phase::Established);
    }

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// The direct send on a socket that fills up: the first send that
    /// leaves ciphertext behind takes all its plaintext and wakes the
    /// writer (`wants_flush`); later sends stop at the session's limit,
    /// leaving the backlog to the state machine. Flushing then delivers
    /// exactly the accepted bytes, in order.
    #[test]
    fn ciphertext_left_by_a_full_socket_wakes_the_writer_and_keeps_order() {
        let (link, mut client) = pair();
        establish(&link, &mut client);
        let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
        let small: libc::c_int = 4096;
        // SAFETY: setsockopt on our own socket with a valid int.
        unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let wake = WaitList::new();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut waiting = Box::pin(wake.wait_until(|| false));
        let mut cx = Context::from_waker(&waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());

        let mut accepted = Vec::new();
        let mut refused = false;
        for i in 0..10_000u32 {
            let msg = format!("MSG s 1 8\r\n{i:08}\r\n").repeat(64);
            let n = link
                .send(ours.as_raw_fd(), &[IoSlice::new(msg.as_bytes())], &wake)
                .expect("send");
            accepted.extend_from_slice(&msg.as_bytes()[..n]);
            if link.wants_flush() && !flag.0.load(Ordering::SeqCst) {
                panic!("ciphertext left without waking the writer");
            }
            if n < msg.len() {
                refused = true;
                break;
            }
        }
        assert!(flag.0.load(Ordering::SeqCst), "the writer was woken");
        assert!(refused, "the session stops taking plaintext at its limit");

        // The writer's flush, with the peer reading.
        theirs.set_nonblocking(true).expect("nonblocking");
        let mut wire = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let done = link.write_now(ours.as_raw_fd()).expect("write");
            let mut read_any = false;
            while let Ok(n) = std::io::Read::read(&mut theirs, &mut buf) {
                if n == 0 {
                    break;
                }
                wire.extend_from_slice(&buf[..n]);
                read_any = true;
            }
            if done && !read_any {
                break;
            }
        }
        let mut input = &wire[..];
        let mut plaintext = Vec::new();
        while !input.is_empty() {
            client.read_tls(&mut input).expect("client read");
            client.process_new_packets().expect("client process");
            let _ = std::io::Read::read_to_end(&mut client.reader(), &mut plaintext);
        }
        assert_eq!(plaintext.len(), accepted.len());
        assert!(plaintext == accepted, "same bytes, same order");
    }

    /// A batch larger than the session's window goes out whole on the
    /// direct path while the socket has room: no ciphertext is left for the
    /// writer task.
    #[test]
    fn a_batch_over_the_window_is_sent_directly_when_the_socket_has_room() {
        let (link, mut client) = pair();
        establish(&link, &mut client);
        let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
        let big: libc::c_int = 1 << 20;
        // SAFETY: setsockopt on our own socket with a valid int.
        unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&big as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let batch: Vec<u8> = (0..150 * 1024).map(|i| (i % 251) as u8).collect();
        let (head, tail) = batch.split_at(1000);
        let wake = WaitList::new();
        let n = link
            .send(
                ours.as_raw_fd(),
                &[IoSlice::new(head), IoSlice::new(tail)],
                &wake,
            )
            .expect("send");
        assert_eq!(n, batch.len(), "all taken");
        assert!(!link.wants_flush(), "nothing left for the writer");
        drop(ours);
        let mut wire = Vec::new();
        std::io::Read::read_to_end(&mut theirs, &mut wire).expect("read");
        let mut input = &wire[..];
        let mut plaintext = Vec::new();
        while !input.is_empty() {
            client.read_tls(&mut input).expect("client read");
            client.process_new_packets().expect("client process");
            let _ = std::io::Read::read_to_end(&mut client.reader(), &mut plaintext);
        }
        assert!(plaintext == batch, "same bytes, same order");
    }

    #[test]
    fn a_plaintext_first_byte_fails_without_feeding_rustls() {
        let (link, _client) = pair();
        let mut plaintext = ReadBuffer::new();
        let error = link
            .absorb(b"CONNECT {}\r\n", &mut plaintext)
            .expect_err("not TLS");
        assert_eq!(
            error.0,
            "tls: first record does not look like a TLS handshake"
        );
        assert!(link.not_tls.get());
    }
}
