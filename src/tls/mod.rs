//! Client and route TLS on the shards, with rustls:
//! - [`client`]: the rustls client configuration for routes this server
//!   dials (`cluster { tls {} }`);
//! - [`config`]: the rustls server configuration from the `tls {}` options
//!   (certificates, client verification, suites, curves, pinned certs);
//! - [`session`]: the TLS record layer between a client's socket and its
//!   parser (the rustls session, and who may write its ciphertext when);
//! - [`handshake`]: one client's handshake on its reader task (timeout,
//!   `allow_non_tls`, pinned certificates);
//! - [`identity`]: a client certificate's names for `verify_and_map`;
//! - [`offload`]: whether handshakes run on the shard or its blocking
//!   thread (the key's algorithm, or `--tls_offload`);
//! - [`rate`][]: `connection_rate_limit`.
//!
//! Kernel TLS (handing the session's keys to the kernel after the
//! handshake) is not done: it needs a kernel with the `tls` ULP, which the
//! development machine lacks, so it could not be measured or tested.

pub mod client;
pub mod config;
pub mod handshake;
pub mod identity;
pub mod offload;
pub mod rate;
pub mod resolver_client;
pub mod session;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::Options;
use config::TlsServer;
use handshake::HandshakeSettings;
use session::{Phase, TlsLink};

/// The client port's TLS as all shards share it: the current rustls
/// configuration, replaced whole at reload (connections keep the one they
/// started with; new handshakes take the new one).
pub struct TlsAcceptor {
    current: RwLock<Arc<Accepting>>,
}

/// One generation of TLS settings.
pub struct Accepting {
    pub server: TlsServer,
    pub timeout: Duration,
    pub allow_non_tls: bool,
    pub handshake_first: bool,
    pub map: bool,
    /// `connection_rate_limit`, if set.
    pub rate_limit: Option<rate::RateLimit>,
    /// HTTPS monitoring's configuration (the same certificate, no client
    /// certificates asked for), when monitoring is on HTTPS.
    pub monitoring: Option<Arc<rustls::ServerConfig>>,
    /// Handshake crypto on the blocking thread or not, and why: decided
    /// per generation, since a reload may bring a key of another type.
    pub place: offload::HandshakePlace,
}

impl TlsAcceptor {
    /// `None` without a `tls {}` block; an error names the file or option.
    /// Logs where handshakes run.
    pub fn new(options: &Options) -> Result<Option<TlsAcceptor>, String> {
        Ok(accepting(options)?.map(|a| {
            crate::info!("{}", a.place);
            TlsAcceptor {
                current: RwLock::new(Arc::new(a)),
            }
        }))
    }

    pub fn current(&self) -> Arc<Accepting> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Builds the new generation (reading the files again) and swaps it in;
    /// on error the running one stays. Logs where handshakes run now.
    pub fn reload(&self, options: &Options) -> Result<(), String> {
        let Some(next) = accepting(options)? else {
            return Err("config reload not supported for tls: it cannot be turned off".into());
        };
        crate::info!("{}", next.place);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
        Ok(())
    }
}

fn accepting(options: &Options) -> Result<Option<Accepting>, String> {
    let Some(tls) = &options.tls else {
        return Ok(None);
    };
    let server = config::build(tls)?;
    Ok(Some(Accepting {
        place: offload::decide(options.tls_offload, server.key_algorithm),
        server,
        timeout: tls.timeout(),
        allow_non_tls: options.allow_non_tls,
        handshake_first: tls.handshake_first,
        map: tls.map,
        rate_limit: (tls.rate_limit > 0).then(|| rate::RateLimit::new(tls.rate_limit)),
        monitoring: match (options.http_port, options.https_port) {
            (None, Some(_)) => Some(config::build_for_monitoring(tls)?),
            _ => None,
        },
    }))
}

impl Accepting {
    /// A new connection's record layer, in the phase its handshake starts
    /// from.
    pub fn link(&self) -> Result<TlsLink, rustls::Error> {
        let phase = if self.handshake_first {
            Phase::Handshaking
        } else {
            Phase::Greeting
        };
        TlsLink::new(self.server.config.clone(), phase)
    }

    pub fn handshake_settings(&self) -> HandshakeSettings {
        HandshakeSettings {
            timeout: self.timeout,
            pinned: self.server.pinned.clone(),
            map: self.map,
            offload: self.place.offload,
        }
    }
}

/// `cluster { tls {} }`: both sides of a route's TLS, built once at start
/// (a changed cluster block is refused at reload). The handshake comes
/// first on a route, before INFO, as nats-server 2.9 does it.
pub struct RouteTls {
    /// The accepting side (client certificates required with `verify`).
    pub server: TlsServer,
    /// The dialling side: trusts `ca_file`, presents the same certificate.
    pub client: Arc<rustls::ClientConfig>,
    pub timeout: Duration,
    /// The first configured route host that is a name, not an address:
    /// as nats-server, the name checked for routes dialled by IP address
    /// (gossip gives addresses; certificates often carry only names).
    pub tls_name: Option<String>,
}

impl RouteTls {
    /// `None` without a `tls {}` block in `cluster`.
    pub fn new(options: &Options) -> Result<Option<RouteTls>, String> {
        let Some(tls) = options.cluster.as_ref().and_then(|c| c.tls.as_ref()) else {
            return Ok(None);
        };
        Ok(Some(RouteTls {
            server: config::build(tls)?,
            client: client::build_client(tls)?,
            timeout: tls.timeout(),
            tls_name: options
                .cluster
                .iter()
                .flat_map(|c| c.routes.iter())
                .map(|r| r.host.trim_start_matches('[').trim_end_matches(']'))
                .find(|host| host.parse::<std::net::IpAddr>().is_err())
                .map(str::to_string),
        }))
    }

    /// The record layer of an accepted route: handshake first.
    pub fn accepted_link(&self) -> Result<TlsLink, rustls::Error> {
        TlsLink::new(self.server.config.clone(), Phase::Handshaking)
    }

    /// The record layer of a route dialled to `host` (an IP address is
    /// checked as [`RouteTls::tls_name`] when there is one).
    pub fn dialled_link(&self, host: &str) -> Result<TlsLink, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = match &self.tls_name {
            Some(name) if bare.parse::<std::net::IpAddr>().is_ok() => name.as_str(),
            _ => host,
        };
        TlsLink::new_client(self.client.clone(), client::server_name(name)?)
            .map_err(|e| e.to_string())
    }

    pub fn handshake_settings(&self) -> HandshakeSettings {
        HandshakeSettings {
            timeout: self.timeout,
            pinned: self.server.pinned.clone(),
            map: false,
            offload: false,
        }
    }
}
