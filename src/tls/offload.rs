//! Where a client's TLS handshake crypto runs: on the shard itself, or on
//! the shard's blocking thread (`--tls_offload`).
//!
//! The server's signature dominates a handshake's cost. With an RSA key it
//! is ~1 ms, long enough to delay every other connection of the shard:
//! measured (BENCHMARKS.md, RSA-2048, 100 handshakes/s beside a 10 k msgs/s
//! pair) the pair's p99 was 1.20× nats-server's inline and 0.78× offloaded.
//! With an ECDSA P-256 or Ed25519 key the signature is ~0.1 ms or less, and
//! the two thread hops of offloading cost more than they save. So the
//! default follows the configured key; the flag overrides it either way.

use std::fmt;

use rustls::SignatureAlgorithm;

/// The decision and its reason, for the start-up and reload log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakePlace {
    /// Run the handshake's crypto on the shard's blocking thread.
    pub offload: bool,
    why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// `--tls_offload` or `--tls_offload=false`.
    Flag,
    /// Not forced: the server key's algorithm decided.
    Key(SignatureAlgorithm),
}

/// `forced`: `--tls_offload[=bool]` if given; `key`: the algorithm of the
/// configured server certificate's private key.
pub fn decide(forced: Option<bool>, key: SignatureAlgorithm) -> HandshakePlace {
    match forced {
        Some(offload) => HandshakePlace {
            offload,
            why: Why::Flag,
        },
        None => HandshakePlace {
            offload: key == SignatureAlgorithm::RSA,
            why: Why::Key(key),
        },
    }
}

impl fmt::Display for HandshakePlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.offload {
            "the shards' blocking threads"
        } else {
            "the shards"
        };
        write!(f, "TLS handshakes run on {place} (")?;
        match self.why {
            Why::Flag if self.offload => f.write_str("--tls_offload")?,
            Why::Flag => f.write_str("--tls_offload=false")?,
            Why::Key(key) => write!(f, "{} key", key_name(key))?,
        }
        f.write_str(")")
    }
}

fn key_name(key: SignatureAlgorithm) -> String {
    match key {
        SignatureAlgorithm::RSA => "RSA".into(),
        SignatureAlgorithm::ECDSA => "ECDSA".into(),
        SignatureAlgorithm::ED25519 => "Ed25519".into(),
        SignatureAlgorithm::ED448 => "Ed448".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_offload_others_stay_on_the_shard_unless_forced() {
        let rsa = decide(None, SignatureAlgorithm::RSA);
        assert!(rsa.offload);
        assert_eq!(
            rsa.to_string(),
            "TLS handshakes run on the shards' blocking threads (RSA key)"
        );
        let ecdsa = decide(None, SignatureAlgorithm::ECDSA);
        assert!(!ecdsa.offload);
        assert_eq!(
            ecdsa.to_string(),
            "TLS handshakes run on the shards (ECDSA key)"
        );
        assert!(!decide(None, SignatureAlgorithm::ED25519).offload);
        let forced_on = decide(Some(true), SignatureAlgorithm::ECDSA);
        assert!(forced_on.offload);
        assert_eq!(
            forced_on.to_string(),
            "TLS handshakes run on the shards' blocking threads (--tls_offload)"
        );
        let forced_off = decide(Some(false), SignatureAlgorithm::RSA);
        assert!(!forced_off.offload);
        assert_eq!(
            forced_off.to_string(),
            "TLS handshakes run on the shards (--tls_offload=false)"
        );
    }
}
