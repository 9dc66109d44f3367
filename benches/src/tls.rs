//! TLS for the load generator (`--tls-ca`): a rustls client session per
//! connection, shared by the connection's two handles (the [`Reader`] on
//! one thread, the [`OutBuf`] on another), so the scenarios run unchanged
//! over TLS. As with nats-server 2.9, the client reads INFO in plaintext,
//! then runs the handshake.
//!
//! Concurrency contract: the session sits behind a mutex held only for
//! in-memory work (decrypting what was read, encrypting what is to be
//! written), never across a socket call, so a reader blocked in `read(2)`
//! never holds up the writer. Ciphertext is written only by the connection's
//! single writer handle, which takes everything the session has queued in
//! one piece under the lock: the socket sees the session's records in order.
//!
//! [`Reader`]: crate::client::Reader
//! [`OutBuf`]: crate::client::OutBuf

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// Turns TLS on for every connection this process makes, trusting the CA
/// certificate(s) in `ca_file`.
pub fn enable(ca_file: &Path) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("--tls-ca {}: {e}", ca_file.display()))?
    {
        let cert = cert.map_err(|e| format!("--tls-ca {}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("--tls-ca {}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    CONFIG
        .set(Arc::new(config))
        .map_err(|_| "TLS already enabled".to_string())
}

pub fn enabled() -> bool {
    CONFIG.get().is_some()
}

/// The socket as the bench reads and writes it.
pub enum Wire {
    Plain(TcpStream),
    Tls(Arc<TlsWire>),
}

pub struct TlsWire {
    session: Mutex<Session>,
    socket: TcpStream,
    /// The reader handle's ciphertext buffer and the writer handle's; each
    /// is used by one thread only (the mutexes are never contended), kept
    /// so that reads and flushes do not allocate.
    read_buf: Mutex<Vec<u8>>,
    write_buf: Mutex<Vec<u8>>,
}

struct Session {
    conn: ClientConnection,
    /// Ciphertext read from the socket that the session has not taken yet
    /// (it takes no more while its plaintext buffer is full).
    unread: Vec<u8>,
}

impl Session {
    /// Feeds buffered ciphertext to the session as far as it takes it.
    fn feed(&mut self) -> io::Result<()> {
        while !self.unread.is_empty() {
            let mut input = &self.unread[..];
            let before = input.len();
            let taken = self.conn.read_tls(&mut input);
            let consumed = before - input.len();
            self.unread.drain(..consumed);
            match taken {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {
                    self.conn.process_new_packets().map_err(io::Error::other)?;
                }
            }
        }
        Ok(())
    }
}

impl Wire {
    /// Runs the TLS handshake on `socket` (INFO already read) if TLS is
    /// enabled; returns the wire for both handles.
    pub fn establish(socket: TcpStream, server_host: &str) -> io::Result<Wire> {
        let Some(config) = CONFIG.get() else {
            return Ok(Wire::Plain(socket));
        };
        let name = ServerName::try_from(server_host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut session = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        // The writer encrypts whole batches; the socket, not the session,
        // pushes back.
        session.set_buffer_limit(None);
        let mut sock = &socket;
        while session.is_handshaking() {
            session.complete_io(&mut sock)?;
        }
        Ok(Wire::Tls(Arc::new(TlsWire {
            session: Mutex::new(Session {
                conn: session,
                unread: Vec::new(),
            }),
            socket,
            read_buf: Mutex::new(vec![0; 256 * 1024]),
            write_buf: Mutex::new(Vec::new()),
        })))
    }

    pub fn try_clone(&self) -> io::Result<Wire> {
        Ok(match self {
            Wire::Plain(s) => Wire::Plain(s.try_clone()?),
            Wire::Tls(t) => Wire::Tls(t.clone()),
        })
    }

    /// The TCP socket underneath (timeouts, non-blocking mode, fd, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(t) => &t.socket,
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(t) => t.read(buf),
        }
    }

    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.write_all(buf),
            Wire::Tls(t) => t.write_all(buf),
        }
    }
}

impl TlsWire {
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Plaintext the session holds, else one socket read decrypted.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut ciphertext = self
            .read_buf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            {
                let mut session = self.lock();
                session.feed()?;
                match session.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            let n = (&self.socket).read(&mut ciphertext)?;
            if n == 0 {
                return Ok(0);
            }
            self.lock().unread.extend_from_slice(&ciphertext[..n]);
        }
    }

    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut out = self
            .write_buf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        out.clear();
        {
            let mut session = self.lock();
            session.conn.writer().write_all(buf)?;
            while session.conn.wants_write() {
                session.conn.write_tls(&mut *out)?;
            }
        }
        (&self.socket).write_all(&out)
    }
}
