//! The TLS client of the URL account resolver (`https` resolver URLs and
//! `resolver_tls`, nats-server's `AccountResolverTLSConfig`): trusts the
//! block's `ca_file`, else the system roots (as Go's default transport);
//! presents the block's certificate when it has one; `insecure` skips the
//! server's chain and name as nats-server's `InsecureSkipVerify`.

use std::sync::Arc;

use rustls::ClientConfig;

use super::client::verifying_builder;
use super::config::{crypto_provider, read_certificates, read_key};
use crate::config::tls::TlsOptions;

/// Builds the configuration; the error names the file.
pub fn build(opts: Option<&TlsOptions>) -> Result<Arc<ClientConfig>, String> {
    let defaults = TlsOptions::default();
    let opts = opts.unwrap_or(&defaults);
    let provider = Arc::new(crypto_provider(opts));
    let builder = verifying_builder(opts, provider)?;
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
