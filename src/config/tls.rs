//! The `tls {}` block, the top-level `allow_non_tls` and the `--tls*` flags,
//! with nats-server's keys and error texts. This module only reads and checks
//! the settings; `crate::tls::config` turns them into a rustls configuration
//! (reading the certificate files) when the server starts or reloads.
//!
//! Names nats-server accepts but rustls cannot honour (CBC, RC4, 3DES or
//! plain-RSA cipher suites, the P-521 curve) are refused here with a message
//! that says so: a configuration that asked for them must not start with
//! something else in their place.

use std::path::PathBuf;
use std::time::Duration;

use super::conf::{Entry, Value};
use super::duration::parse_go_duration;
use super::entry::wrong_type;
use super::error::ConfigError;

/// nats-server's `TLS_TIMEOUT`: how long a client has for its handshake.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// The client port's TLS settings (nats-server's `TLSConfigOpts`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsOptions {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Roots that client certificates must chain to (`verify`).
    pub ca_file: Option<PathBuf>,
    /// Clients must present a certificate that chains to `ca_file`.
    pub verify: bool,
    /// `verify_and_map`: `verify`, and the certificate names the user.
    pub map: bool,
    /// In `cluster { tls {} }`: routes this server dials do not check the
    /// peer's certificate chain or name (nats-server's warning is logged).
    /// In the client `tls {}` block it is accepted and changes nothing.
    pub insecure: bool,
    /// Handshake timeout; `None`: [`DEFAULT_TLS_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// TLS 1.2 suites, in preference order; `None`: the defaults.
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// Key exchange groups, in preference order; `None`: the defaults.
    pub curve_preferences: Option<Vec<Curve>>,
    /// Lower-case hex sha256 digests of accepted client certificates' SPKI.
    pub pinned_certs: Option<Vec<String>>,
    /// nats-server 2.10's option: the handshake before INFO (INFO then
    /// travels encrypted).
    pub handshake_first: bool,
    /// `connection_rate_limit`: new TLS connections per second (0: none).
    pub rate_limit: u64,
}

impl TlsOptions {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TLS_TIMEOUT)
    }
}

/// The cipher suites rustls (ring provider) offers, by nats-server's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    EcdheEcdsaAes128GcmSha256,
    EcdheRsaAes128GcmSha256,
    EcdheEcdsaChacha20Poly1305,
    EcdheRsaChacha20Poly1305,
    EcdheEcdsaAes256GcmSha384,
    EcdheRsaAes256GcmSha384,
    /// TLS 1.3 suites: accepted in the list, as in nats-server, where Go
    /// always enables all three whatever the list says.
    Tls13Aes128GcmSha256,
    Tls13Aes256GcmSha384,
    Tls13Chacha20Poly1305Sha256,
}

/// (nats-server name, suite) for every suite percore can honour.
pub const CIPHER_NAMES: &[(&str, CipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::EcdheEcdsaAes128GcmSha256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::EcdheRsaAes128GcmSha256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        CipherSuite::EcdheEcdsaChacha20Poly1305,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        CipherSuite::EcdheRsaChacha20Poly1305,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::EcdheEcdsaAes256GcmSha384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::EcdheRsaAes256GcmSha384,
    ),
    ("TLS_AES_128_GCM_SHA256", CipherSuite::Tls13Aes128GcmSha256),
    ("TLS_AES_256_GCM_SHA384", CipherSuite::Tls13Aes256GcmSha384),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::Tls13Chacha20Poly1305Sha256,
    ),
];

/// Suites nats-server accepts that rustls does not implement (no CBC, RC4,
/// 3DES, or key exchange without forward secrecy).
const CIPHERS_NOT_HONOURED: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/// Key exchange groups rustls (ring provider) offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
}

pub const CURVE_NAMES: &[(&str, Curve)] = &[
    ("X25519", Curve::X25519),
    ("CurveP256", Curve::P256),
    ("CurveP384", Curve::P384),
];

/// Applies a `tls {}` block: the block replaces any earlier one.
pub fn apply_tls(entry: &Entry) -> Result<TlsOptions, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(wrong_type(entry, "a map"));
    };
    let mut tls = TlsOptions::default();
    for e in map.entries() {
        let at = |message: String| ConfigError::at(&e.key_pos, message);
        match e.key.to_ascii_lowercase().as_str() {
            "cert_file" => tls.cert_file = Some(file(e, "cert_file")?),
            "key_file" => tls.key_file = Some(file(e, "key_file")?),
            "ca_file" => tls.ca_file = Some(file(e, "ca_file")?),
            "insecure" => tls.insecure = flag(e, "insecure")?,
            "verify" => tls.verify = flag(e, "verify")?,
            "verify_and_map" => {
                let map = flag(e, "verify_and_map")?;
                tls.verify |= map;
                tls.map = map;
            }
            "verify_cert_and_check_known_urls" => {
                if flag(e, "verify_cert_and_check_known_urls")? {
                    return Err(at(
                        "verify_cert_and_check_known_urls not supported in this context".into(),
                    ));
                }
            }
            "cipher_suites" => tls.cipher_suites = Some(names(e, "cipher_suites", cipher)?),
            "curve_preferences" => {
                tls.curve_preferences = Some(names(e, "curve_preferences", curve)?)
            }
            "timeout" => tls.timeout = Some(timeout(e)?),
            "connection_rate_limit" => match e.node.value {
                Value::Integer(n) => tls.rate_limit = u64::try_from(n).unwrap_or(0),
                _ => {
                    return Err(at(
                        "error parsing tls config, 'connection_rate_limit' wrong type".into(),
                    ))
                }
            },
            "pinned_certs" => tls.pinned_certs = pinned_certs(e)?,
            "handshake_first" | "first" | "immediate" => {
                tls.handshake_first = flag(e, "handshake_first")?
            }
            _ if e.used_as_variable => {}
            _ => {
                return Err(at(format!(
                    "error parsing tls config, unknown field [{}]",
                    super::error::go_quote(&e.key)
                )))
            }
        }
    }
    Ok(tls)
}

/// Checks across keys, as nats-server's `GenTLSConfig` makes them.
pub fn validate(tls: &TlsOptions) -> Result<(), ConfigError> {
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => Err(ConfigError::new("missing 'key_file' in TLS configuration")),
        (None, Some(_)) => Err(ConfigError::new("missing 'cert_file' in TLS configuration")),
        // nats-server starts without a certificate and then fails every
        // handshake; that is never what an operator meant.
        (None, None) => Err(ConfigError::new(
            "TLS configuration needs 'cert_file' and 'key_file'",
        )),
        (Some(_), Some(_)) => Ok(()),
    }
}

/// `--tls`, `--tlscert`, `--tlskey`, `--tlscacert`, `--tlsverify`: as in
/// nats-server, any of them (unless `--tls=false`) replaces the file's block
/// with one built from the flags alone.
pub struct TlsFlags<'a> {
    pub tls: Option<bool>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
    pub ca: Option<&'a str>,
    pub verify: Option<bool>,
}

pub fn apply_flags(flags: &TlsFlags<'_>, tls: &mut Option<TlsOptions>) -> Result<(), ConfigError> {
    let any = flags.tls.is_some()
        || flags.cert.is_some()
        || flags.key.is_some()
        || flags.ca.is_some()
        || flags.verify.is_some();
    if !any || flags.tls == Some(false) {
        return Ok(());
    }
    let cert = flags
        .cert
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ConfigError::new("TLS Server certificate must be present and valid"))?;
    let key = flags
        .key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ConfigError::new("TLS Server private key must be present and valid"))?;
    *tls = Some(TlsOptions {
        cert_file: Some(PathBuf::from(cert)),
        key_file: Some(PathBuf::from(key)),
        ca_file: flags.ca.filter(|c| !c.is_empty()).map(PathBuf::from),
        verify: flags.verify.unwrap_or(false),
        ..TlsOptions::default()
    });
    Ok(())
}

fn file(entry: &Entry, key: &str) -> Result<PathBuf, ConfigError> {
    match &entry.node.value {
        Value::String(s) => Ok(PathBuf::from(s)),
        _ => Err(ConfigError::at(
            &entry.key_pos,
            format!("error parsing tls config, expected '{key}' to be filename"),
        )),
    }
}

fn flag(entry: &Entry, key: &str) -> Result<bool, ConfigError> {
    match entry.node.value {
        Value::Bool(b) => Ok(b),
        _ => Err(ConfigError::at(
            &entry.key_pos,
            format!("error parsing tls config, expected '{key}' to be a boolean"),
        )),
    }
}

/// A non-empty list of names, each looked up by `lookup`.
fn names<T>(
    entry: &Entry,
    key: &str,
    lookup: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(wrong_type(entry, "an array"));
    };
    if items.is_empty() {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!("error parsing tls config, '{key}' cannot be empty"),
        ));
    }
    items
        .iter()
        .map(|item| match &item.value {
            Value::String(name) => lookup(name).map_err(|e| ConfigError::at(&item.pos, e)),
            other => Err(ConfigError::at(
                &item.pos,
                format!(
                    "error parsing tls config, '{key}' entries must be strings, got {}",
                    other.kind()
                ),
            )),
        })
        .collect()
}

fn cipher(name: &str) -> Result<CipherSuite, String> {
    if let Some((_, suite)) = CIPHER_NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*suite);
    }
    if CIPHERS_NOT_HONOURED.contains(&name) {
        return Err(format!(
            "cipher {name} is not supported by percore: rustls implements only AEAD suites \
             with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305)"
        ));
    }
    Err(format!("unrecognized cipher {name}"))
}

fn curve(name: &str) -> Result<Curve, String> {
    if let Some((_, curve)) = CURVE_NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*curve);
    }
    if name == "CurveP521" {
        return Err(format!(
            "curve preference {name} is not supported by percore: rustls offers X25519, \
             CurveP256 and CurveP384"
        ));
    }
    Err(format!("unrecognized curve preference {name}"))
}

/// Seconds as an integer or float, or a Go duration string.
fn timeout(entry: &Entry) -> Result<Duration, ConfigError> {
    let at = |message: String| ConfigError::at(&entry.key_pos, message);
    let seconds = match &entry.node.value {
        Value::Integer(n) => *n as f64,
        Value::Float(f) => *f,
        Value::String(text) => {
            let nanos = parse_go_duration(text)
                .map_err(|e| at(format!("error parsing tls config, 'timeout' {e}")))?;
            nanos as f64 / 1e9
        }
        _ => return Err(at("error parsing tls config, 'timeout' wrong type".into())),
    };
    if seconds <= 0.0 {
        // nats-server then uses its default.
        return Ok(DEFAULT_TLS_TIMEOUT);
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| at("error parsing tls config, 'timeout' is too big".into()))
}

fn pinned_certs(entry: &Entry) -> Result<Option<Vec<String>>, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            "error parsing tls config, expected 'pinned_certs' to be a list of hex-encoded \
             sha256 of DER encoded SubjectPublicKeyInfo",
        ));
    };
    if items.is_empty() {
        return Ok(None);
    }
    let mut digests = Vec::with_capacity(items.len());
    for item in items {
        let text = match &item.value {
            Value::String(s) => s.to_ascii_lowercase(),
            other => other.kind().to_string(),
        };
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::at(
                &item.pos,
                format!(
                    "error parsing tls config, 'pinned_certs' key {text} does not look like \
                     hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"
                ),
            ));
        }
        digests.push(text);
    }
    Ok(Some(digests))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn tls(source: &str) -> Result<TlsOptions, String> {
        let map = parse_str(source, "x.conf", &no_env).map_err(|e| e.to_string())?;
        let entry = map.get("tls").expect("a tls block");
        apply_tls(entry).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_are_read() {
        let t = tls("tls { cert_file: c.pem, key_file: k.pem, ca_file: ca.pem, verify_and_map: true, \
             timeout: 1.5, cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], \
             curve_preferences: [CurveP256, X25519], pinned_certs: [\"AB0000000000000000000000000000000000000000000000000000000000000F\"] }")
        .unwrap();
        assert_eq!(t.cert_file, Some(PathBuf::from("c.pem")));
        assert!(t.verify && t.map);
        assert_eq!(t.timeout(), Duration::from_millis(1500));
        assert_eq!(
            t.cipher_suites,
            Some(vec![CipherSuite::EcdheRsaAes128GcmSha256])
        );
        assert_eq!(t.curve_preferences, Some(vec![Curve::P256, Curve::X25519]));
        assert_eq!(
            t.pinned_certs.unwrap()[0],
            "ab0000000000000000000000000000000000000000000000000000000000000f"
        );
    }

    #[test]
    fn timeout_forms() {
        assert_eq!(
            tls("tls { timeout: 3 }").unwrap().timeout(),
            Duration::from_secs(3)
        );
        assert_eq!(
            tls("tls { timeout: \"250ms\" }").unwrap().timeout(),
            Duration::from_millis(250)
        );
        assert_eq!(tls("tls {}").unwrap().timeout(), DEFAULT_TLS_TIMEOUT);
        assert!(tls("tls { timeout: true }")
            .unwrap_err()
            .contains("error parsing tls config, 'timeout' wrong type"));
    }

    #[test]
    fn errors_are_nats_servers() {
        assert_eq!(
            tls("tls { cert: x }").unwrap_err(),
            "x.conf:1:6: error parsing tls config, unknown field [\"cert\"]"
        );
        assert!(tls("tls { cipher_suites: [FOO] }")
            .unwrap_err()
            .ends_with("unrecognized cipher FOO"));
        assert!(tls("tls { curve_preferences: [Bar] }")
            .unwrap_err()
            .ends_with("unrecognized curve preference Bar"));
        assert!(tls("tls { cipher_suites: [] }")
            .unwrap_err()
            .ends_with("error parsing tls config, 'cipher_suites' cannot be empty"));
        assert!(tls("tls { verify: 1 }")
            .unwrap_err()
            .ends_with("error parsing tls config, expected 'verify' to be a boolean"));
        assert!(tls("tls { pinned_certs: [abc] }")
            .unwrap_err()
            .contains("'pinned_certs' key abc does not look like"));
    }

    #[test]
    fn names_rustls_cannot_honour_are_refused() {
        let e = tls("tls { cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA] }").unwrap_err();
        assert!(e.contains("cipher TLS_RSA_WITH_AES_128_CBC_SHA is not supported by percore"));
        let e = tls("tls { curve_preferences: [CurveP521] }").unwrap_err();
        assert!(e.contains("curve preference CurveP521 is not supported by percore"));
    }

    #[test]
    fn flags_replace_the_block() {
        let mut t = Some(TlsOptions {
            verify: true,
            ..TlsOptions::default()
        });
        let flags = TlsFlags {
            tls: Some(true),
            cert: Some("c"),
            key: Some("k"),
            ca: None,
            verify: None,
        };
        apply_flags(&flags, &mut t).unwrap();
        let t = t.unwrap();
        assert!(!t.verify);
        assert_eq!(t.key_file, Some(PathBuf::from("k")));
        let mut none = None;
        let flags = TlsFlags {
            tls: Some(true),
            cert: None,
            key: None,
            ca: None,
            verify: None,
        };
        assert_eq!(
            apply_flags(&flags, &mut none).unwrap_err().to_string(),
            "TLS Server certificate must be present and valid"
        );
    }
}
