//! What a connection's TLS session tells the rest of the broker, once its
//! handshake is done. The session itself (rustls) lives in the runtime,
//! below the parser; the core only needs these facts, for `/connz` and for
//! `verify_and_map`.

use std::sync::Arc;

use crate::auth::CertificateIdentity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsState {
    /// `/connz` `tls_version`, as nats-server prints it ("1.2", "1.3").
    pub version: &'static str,
    /// `/connz` `tls_cipher_suite`, Go's name for it.
    pub cipher_suite: &'static str,
    /// The client certificate's names, when `verify_and_map` needs them.
    pub certificate: Option<Arc<CertificateIdentity>>,
    /// The chain the client presented (`/connz?auth=1` `tls_peer_certs`).
    pub peer_certs: Vec<PeerCert>,
}

/// One certificate of a client's chain, as `/connz` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// The subject, as Go prints a `pkix.Name`.
    pub subject: String,
    /// Hex sha256 of the SubjectPublicKeyInfo (what `pinned_certs` lists).
    pub spki_sha256: String,
    /// Hex sha256 of the whole certificate.
    pub cert_sha256: String,
}
