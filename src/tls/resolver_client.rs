//! The TLS client of the URL account resolver (`https` resolver URLs and
//! `resolver_tls`, nats-server's `AccountResolverTLSConfig`): trusts the
//! block's `ca_file`, else the system roots (as Go's default transport);
//! presents the block's certificate when it has one; `insecure` skips the
//! server's chain and name as nats-server's `InsecureSkipVerify`.

use std::sync::Arc;

use rustls::ClientConfig;

use super::client::NoPeerCheck;
use super::config::{crypto_provider, read_certificates, read_key, read_roots, system_roots};
use crate::config::tls::TlsOptions;

/// Builds the configuration; the error names the file.
pub fn build(opts: Option<&TlsOptions>) -> Result<Arc<ClientConfig>, String> {
    let defaults = TlsOptions::default();
    let opts = opts.unwrap_or(&defaults);
    let provider = Arc::new(crypto_provider(opts));
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoPeerCheck(provider)))
    } else {
        let roots = match &opts.ca_file {
            Some(ca_file) => read_roots(ca_file)?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    };
    let config = match (&opts.cert_file, &opts.key_file) {
        (Some(cert_file), Some(key_file)) => builder
            .with_client_auth_cert(read_certificates(cert_file)?, read_key(key_file)?)
            .map_err(|e| {
                format!(
                    "error parsing X509 certificate/key pair: {} and {}: {e}",
                    cert_file.display(),
                    key_file.display()
                )
            })?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
