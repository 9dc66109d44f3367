//! The TLS client side of routes this server dials (nats-server's
//! `cluster { tls {} }` when soliciting): a rustls [`ClientConfig`] that
//! trusts the block's `ca_file` (the system roots without one, as Go) and
//! presents the block's certificate as its client certificate. With
//! `insecure` the peer's chain and name are not checked, as nats-server's
//! `InsecureSkipVerify` (a warning is logged at start); the handshake's
//! signatures are still verified.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::config::{crypto_provider, read_certificates, read_key, read_roots, system_roots};
use crate::config::tls::TlsOptions;

/// nats-server's warning for `insecure` in the cluster's `tls` block.
pub const INSECURE_WARNING: &str = "TLS certificate chain and hostname of solicited routes will not be verified. DO NOT USE IN PRODUCTION!";

/// TLS 1.3 and 1.2 with `provider`, checking the server against the
/// options' `ca_file` (else the system roots), or not at all with
/// `insecure`: the part the route client and the resolver client share.
pub(super) fn verifying_builder(
    opts: &TlsOptions,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, String> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    Ok(if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoPeerCheck(provider)))
    } else {
        let roots = match &opts.ca_file {
            Some(ca_file) => read_roots(ca_file)?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    })
}

/// Builds the dialling side's configuration; the error names the file.
pub fn build_client(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(crypto_provider(opts));
    let (Some(cert_file), Some(key_file)) = (&opts.cert_file, &opts.key_file) else {
        return Err("TLS configuration needs 'cert_file' and 'key_file'".into());
    };
    let certs = read_certificates(cert_file)?;
    let key = read_key(key_file)?;
    let builder = verifying_builder(opts, provider)?;
    let config = builder.with_client_auth_cert(certs, key).map_err(|e| {
        format!(
            "error parsing X509 certificate/key pair: {} and {}: {e}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(Arc::new(config))
}

/// The name the peer's certificate must carry: the route URL's host (an IP
/// address is checked against the certificate's IP SANs).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("invalid TLS server name {host}: {e}"))
}

/// `insecure`: any certificate chain and name; signatures still checked.
#[derive(Debug)]
pub(super) struct NoPeerCheck(pub(super) Arc<CryptoProvider>);

impl ServerCertVerifier for NoPeerCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
