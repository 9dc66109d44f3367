//! Building the rustls [`ServerConfig`] from the `tls {}` options: the
//! certificate and key files, the client certificate verifier (`verify`,
//! `ca_file`), the cipher suites and curves (as nats-server names them, see
//! `config::tls`), and the pinned certificate digests.
//!
//! Built at start and again at each reload (new handshakes use the new
//! files); a connection keeps the `Arc<ServerConfig>` it started with.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SignatureAlgorithm, SupportedCipherSuite};
use sha2::{Digest, Sha256};

use crate::config::tls::{CipherSuite, Curve, TlsOptions};

/// nats-server's default TLS 1.2 suites, in its order.
const DEFAULT_TLS12_SUITES: &[CipherSuite] = &[
    CipherSuite::EcdheEcdsaAes128GcmSha256,
    CipherSuite::EcdheRsaAes128GcmSha256,
    CipherSuite::EcdheEcdsaChacha20Poly1305,
    CipherSuite::EcdheRsaChacha20Poly1305,
    CipherSuite::EcdheEcdsaAes256GcmSha384,
    CipherSuite::EcdheRsaAes256GcmSha384,
];

/// The order Go's crypto/tls (1.19, the Go of nats-server 2.9.10) picks
/// TLS 1.2 suites in, whatever order the configuration lists them in and
/// whatever the client prefers: AES-128-GCM, then AES-256-GCM, then
/// ChaCha20 (on a machine with AES instructions, for a client that does
/// not put ChaCha20 first).
const GO_TLS12_PREFERENCE: &[CipherSuite] = &[
    CipherSuite::EcdheEcdsaAes128GcmSha256,
    CipherSuite::EcdheRsaAes128GcmSha256,
    CipherSuite::EcdheEcdsaAes256GcmSha384,
    CipherSuite::EcdheRsaAes256GcmSha384,
    CipherSuite::EcdheEcdsaChacha20Poly1305,
    CipherSuite::EcdheRsaChacha20Poly1305,
];

/// nats-server's default curves, without P-521, which rustls does not offer
/// (a client offering only P-521 fails the handshake, as with any group
/// mismatch; nothing weaker is used in its place).
const DEFAULT_CURVES: &[Curve] = &[Curve::X25519, Curve::P256, Curve::P384];

/// The per-connection write buffer limit: ciphertext queued in the session
/// beyond this is refused, so the broker's own output queue (and its slow
/// consumer rules) holds the backlog, not rustls.
pub const SESSION_BUFFER_LIMIT: usize = 64 * 1024;

/// Everything a shard needs to open TLS sessions on the client port.
#[derive(Clone)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    /// Lower-case hex sha256 of accepted client certificates' SPKI; empty:
    /// any certificate the verifier accepts.
    pub pinned: Arc<[String]>,
    /// The algorithm of the certificate's private key (RSA signatures cost
    /// ten times ECDSA's: see `tls::offload`).
    pub key_algorithm: SignatureAlgorithm,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("pinned", &self.pinned.len())
            .field("key_algorithm", &self.key_algorithm)
            .finish_non_exhaustive()
    }
}

/// Reads the files and builds the configuration; the error names the file.
pub fn build(opts: &TlsOptions) -> Result<TlsServer, String> {
    build_with(opts, opts.verify)
}

/// The configuration for HTTPS monitoring: the client port's certificate
/// and suites, but no client certificate asked for (as nats-server).
pub fn build_for_monitoring(opts: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    Ok(build_with(opts, false)?.config)
}

fn build_with(opts: &TlsOptions, verify_clients: bool) -> Result<TlsServer, String> {
    let provider = Arc::new(crypto_provider(opts));
    let (Some(cert_file), Some(key_file)) = (&opts.cert_file, &opts.key_file) else {
        return Err("TLS configuration needs 'cert_file' and 'key_file'".into());
    };
    let certs = read_certificates(cert_file)?;
    let key = read_key(key_file)?;
    // An unusable key is refused below, with the files named.
    let key_algorithm = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map(|signing| signing.algorithm())
        .unwrap_or(SignatureAlgorithm::Unknown(0));
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = if verify_clients {
        let roots = match &opts.ca_file {
            Some(ca_file) => read_roots(ca_file)?,
            // As Go: no ca_file, the system's roots.
            None => system_roots()?,
        };
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("TLS client verification: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "error parsing X509 certificate/key pair: {} and {}: {e}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    // The server's order decides, as in Go: an OpenSSL client that lists
    // AES-256-GCM first still gets AES-128-GCM, and `/connz` names the
    // suite nats-server would have.
    config.ignore_client_order = true;
    Ok(TlsServer {
        config: Arc::new(config),
        pinned: opts.pinned_certs.clone().unwrap_or_default().into(),
        key_algorithm,
    })
}

/// ring with nats-server's suite and curve choices. TLS 1.3 suites are
/// always on (as in Go, where the list only selects TLS 1.2 suites), in
/// Go's order, as are the TLS 1.2 ones ([`GO_TLS12_PREFERENCE`]).
pub(super) fn crypto_provider(opts: &TlsOptions) -> CryptoProvider {
    let mut tls12 = opts
        .cipher_suites
        .as_deref()
        .unwrap_or(DEFAULT_TLS12_SUITES)
        .to_vec();
    tls12.sort_by_key(|suite| GO_TLS12_PREFERENCE.iter().position(|p| p == suite));
    let mut cipher_suites = vec![
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    cipher_suites.extend(tls12.iter().filter_map(|s| tls12_suite(*s)));
    let curves = opts.curve_preferences.as_deref().unwrap_or(DEFAULT_CURVES);
    let kx_groups = curves
        .iter()
        .map(|c| match c {
            Curve::X25519 => provider::kx_group::X25519,
            Curve::P256 => provider::kx_group::SECP256R1,
            Curve::P384 => provider::kx_group::SECP384R1,
        })
        .collect();
    CryptoProvider {
        cipher_suites,
        kx_groups,
        ..provider::default_provider()
    }
}

fn tls12_suite(suite: CipherSuite) -> Option<SupportedCipherSuite> {
    use provider::cipher_suite as cs;
    Some(match suite {
        CipherSuite::EcdheEcdsaAes128GcmSha256 => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheRsaAes128GcmSha256 => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheEcdsaChacha20Poly1305 => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        CipherSuite::EcdheRsaChacha20Poly1305 => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite::EcdheEcdsaAes256GcmSha384 => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheRsaAes256GcmSha384 => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        // Always on; listing them changes nothing.
        CipherSuite::Tls13Aes128GcmSha256
        | CipherSuite::Tls13Aes256GcmSha384
        | CipherSuite::Tls13Chacha20Poly1305Sha256 => return None,
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read TLS {what} {}: {e}", path.display()))
}

pub(super) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(path, "cert_file")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS cert_file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS cert_file {}: no PEM certificate found",
            path.display()
        ));
    }
    Ok(certs)
}

pub(super) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file(path, "key_file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "TLS key_file {}: no usable private key: {e}",
            path.display()
        )
    })
}

pub(super) fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let pem = read_file(path, "ca_file")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("TLS ca_file {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("TLS ca_file {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        // nats-server's words for a ca_file with no certificate in it.
        return Err(format!(
            "failed to parse root ca certificate: {}",
            path.display()
        ));
    }
    Ok(roots)
}

pub(super) fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "TLS 'verify' without a 'ca_file': no usable system root certificates ({} errors)",
            found.errors.len()
        ));
    }
    Ok(roots)
}

/// Lower-case hex sha256 of a certificate's SubjectPublicKeyInfo (the form
/// `pinned_certs` lists), or `None` if it does not parse.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let digest = Sha256::digest(parsed.tbs_certificate.subject_pki.raw);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A self-signed certificate and key as files in a fresh directory.
    fn files(name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("percore-tls-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert file");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key file");
        (dir.join("cert.pem"), dir.join("key.pem"), dir)
    }

    #[test]
    fn files_are_read_and_bad_ones_named() {
        let (cert, key, dir) = files("read");
        let opts = TlsOptions {
            cert_file: Some(cert.clone()),
            key_file: Some(key.clone()),
            ..TlsOptions::default()
        };
        assert!(build(&opts).is_ok());
        // verify without ca_file: the system roots, as Go.
        let verify = TlsOptions {
            verify: true,
            ..opts.clone()
        };
        if let Err(e) = build(&verify) {
            assert!(e.contains("no usable system root certificates"), "{e}");
        }
        let with_ca = TlsOptions {
            ca_file: Some(cert.clone()),
            ..verify
        };
        assert!(build(&with_ca).is_ok());
        let missing = TlsOptions {
            key_file: Some(dir.join("nope.pem")),
            ..opts.clone()
        };
        let e = build(&missing).expect_err("missing key");
        assert!(e.contains("nope.pem"), "{e}");
        let swapped = TlsOptions {
            cert_file: Some(key.clone()),
            key_file: Some(cert.clone()),
            ..opts
        };
        let e = build(&swapped).expect_err("swapped files");
        assert!(e.contains("key.pem"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn suites_and_curves_follow_the_options() {
        let opts = TlsOptions {
            cipher_suites: Some(vec![CipherSuite::EcdheRsaAes256GcmSha384]),
            curve_preferences: Some(vec![Curve::P384]),
            ..TlsOptions::default()
        };
        let provider = crypto_provider(&opts);
        let names: Vec<String> = provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            names,
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        assert_eq!(provider.kx_groups.len(), 1);
        assert_eq!(format!("{:?}", provider.kx_groups[0].name()), "secp384r1");
    }
}
