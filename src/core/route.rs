//! Cluster routes: the settings a shard needs to speak the route protocol,
//! the INFO and CONNECT lines exactly as nats-server 2.9 writes them, and
//! what a peer's INFO and CONNECT tell us.
//!
//! Which shard does what (the design, also in README "How it is built"):
//! every route connection lives on shard 0, the cluster shard. It owns the
//! route table (one registered route per remote server id, which is how
//! duplicates and routes to self are found without a lock), answers and
//! sends the handshake, gossips new peers to the other routes, and turns
//! the server-wide client interest it sees in its replica into `RS+`/`RS-`.
//! A route's `RS+` becomes a subscription of the route connection on shard
//! 0, which the other shards see as shard 0's interest counts, so a publish
//! anywhere is forwarded to shard 0 once and leaves once per route as
//! `RMSG`. Messages from a route are published on shard 0 with the one-hop
//! rule, which rides the rings as a flag on each forwarded message.

use serde::{Deserialize, Serialize};

use crate::info::ADVERTISED_VERSION;
use crate::route_permissions::{RoutePermissions, SubjectPermissionWire};

/// nats-server's route protocol version in 2.9 (account-aware `RS+`/`RMSG`).
pub const ROUTE_PROTOCOL_VERSION: u8 = 2;

/// What a shard needs to know about the cluster (built once at start from
/// the `cluster` options).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSettings {
    /// `cluster.name` (or the generated one).
    pub name: String,
    /// The name was generated (INFO and CONNECT say `cluster_dynamic`).
    pub dynamic: bool,
    /// `cluster.authorization`: the user and password peers must send.
    pub user: Option<String>,
    pub pass: Option<String>,
    /// `cluster.no_advertise`: no client URLs in INFO, ours or the peers'.
    pub no_advertise: bool,
    /// The route INFO's `host`/`port`: the cluster listener, or
    /// `cluster.advertise`.
    pub host: String,
    pub port: u16,
    /// Set with `cluster.advertise`: the INFO's `ip`, `nats-route://h:p/`.
    pub advertise_ip: Option<String>,
    /// This server's client URLs (`host:port`) for the INFO's
    /// `connect_urls`.
    pub client_urls: Vec<String>,
    /// `cluster.authorization.timeout`: how long an inbound route has to
    /// send a valid CONNECT.
    pub auth_timeout: std::time::Duration,
    /// `cluster.connect_retries`: dial attempts for implicit routes.
    pub connect_retries: u32,
    /// The configured seeds, as `host:port` (lower case): a gossiped peer
    /// at one of these is dialled by its explicit route, not again.
    pub explicit: Vec<String>,
    /// `cluster { tls {} }`: INFO says `tls_required`/`tls_verify` and
    /// CONNECT `tls_required`, as nats-server.
    pub tls_required: bool,
    /// `cluster.permissions`: what interest is exchanged with the routes
    /// (see [`crate::route_permissions`]).
    pub permissions: Option<RoutePermissions>,
}

#[derive(Serialize)]
struct RouteInfoWire<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'a str,
    proto: u8,
    go: &'a str,
    host: &'a str,
    port: u16,
    headers: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_verify: bool,
    max_payload: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    cluster: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cluster_dynamic: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    connect_urls: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ldm: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<SubjectPermissionWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    export: Option<SubjectPermissionWire>,
}

/// Our route INFO line (` \r\n` ending, as nats-server). `lnoc` is left
/// out: peers then send leafnode-origin traffic as plain `RS+`/`RMSG`.
#[allow(clippy::too_many_arguments)]
pub fn route_info_line(
    settings: &ClusterSettings,
    server_id: &str,
    server_name: &str,
    headers: bool,
    max_payload: usize,
    nonce: Option<&str>,
    lame_duck: bool,
) -> Vec<u8> {
    let no_urls: [String; 0] = [];
    let wire = RouteInfoWire {
        server_id,
        server_name,
        version: ADVERTISED_VERSION,
        proto: ROUTE_PROTOCOL_VERSION,
        go: concat!("percore-", env!("CARGO_PKG_VERSION")),
        host: &settings.host,
        port: settings.port,
        headers,
        auth_required: settings.user.is_some(),
        tls_required: settings.tls_required,
        tls_verify: settings.tls_required,
        max_payload,
        ip: settings.advertise_ip.as_deref(),
        nonce,
        cluster: &settings.name,
        cluster_dynamic: settings.dynamic,
        connect_urls: if settings.no_advertise {
            &no_urls
        } else {
            &settings.client_urls
        },
        ldm: lame_duck,
        import: settings
            .permissions
            .as_ref()
            .and_then(RoutePermissions::import_wire),
        export: settings
            .permissions
            .as_ref()
            .and_then(RoutePermissions::export_wire),
    };
    let json = serde_json::to_vec(&wire).unwrap_or_default();
    let mut line = b"INFO ".to_vec();
    // As Go's encoding/json: the permissions' `>` is `\u003e` on the wire.
    line.extend_from_slice(&crate::go_json::go_json_escape(&json));
    line.extend_from_slice(b" \r\n");
    line
}

#[derive(Serialize)]
struct RouteConnectWire<'a> {
    echo: bool,
    verbose: bool,
    pedantic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<&'a str>,
    tls_required: bool,
    headers: bool,
    name: &'a str,
    cluster: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cluster_dynamic: bool,
}

/// The CONNECT a soliciting server sends: `name` is our server id; the
/// credentials come from the route URL.
pub fn route_connect_line(
    server_id: &str,
    cluster: &str,
    dynamic: bool,
    headers: bool,
    user: Option<&str>,
    pass: Option<&str>,
    tls_required: bool,
) -> Vec<u8> {
    let wire = RouteConnectWire {
        echo: true,
        verbose: false,
        pedantic: false,
        user,
        pass,
        tls_required,
        headers,
        name: server_id,
        cluster,
        cluster_dynamic: dynamic,
    };
    let json = serde_json::to_vec(&wire).unwrap_or_default();
    let mut line = b"CONNECT ".to_vec();
    line.extend_from_slice(&crate::go_json::go_json_escape(&json));
    line.extend_from_slice(b"\r\n");
    line
}

/// The fields of a peer's route INFO that matter here. Unknown fields are
/// ignored; the raw JSON is kept for gossip.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    pub server_id: String,
    pub server_name: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    pub cluster: String,
    pub cluster_dynamic: bool,
    pub connect_urls: Vec<String>,
    pub ip: String,
    pub auth_required: bool,
    pub ldm: bool,
    pub gateway: String,
    /// The peer's `cluster.permissions.export` (what of our interest it
    /// accepts); `import` is not needed here.
    pub export: Option<SubjectPermissionWire>,
}

/// The fields of a route CONNECT.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PeerConnect {
    pub name: String,
    pub cluster: String,
    pub cluster_dynamic: bool,
    pub lang: String,
    pub gateway: String,
    pub headers: bool,
    pub user: Option<String>,
    pub pass: Option<String>,
}

/// A route URL to dial: `nats-route://[user:pass@]host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
}

impl RouteUrl {
    /// Parses `scheme://[user[:pass]@]host:port[/]` (any scheme, as
    /// nats-server's URL parsing accepts). `None` if it has no host and
    /// port.
    pub fn parse(url: &str) -> Option<RouteUrl> {
        let url = url.trim();
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let rest = rest.split('/').next().unwrap_or("");
        let (creds, hostport) = match rest.rsplit_once('@') {
            Some((creds, hostport)) => (Some(creds), hostport),
            None => (None, rest),
        };
        let (host, port) = hostport.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok()?;
        if host.is_empty() {
            return None;
        }
        let (user, pass) = match creds {
            Some(creds) => match creds.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(creds.to_string()), None),
            },
            None => (None, None),
        };
        Some(RouteUrl {
            host: host.to_string(),
            port,
            user,
            pass,
        })
    }

    /// `host:port`, lower case: the key nats-server compares routes by.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port).to_ascii_lowercase()
        } else {
            format!("{}:{}", self.host, self.port).to_ascii_lowercase()
        }
    }

    /// For logs: without the password.
    pub fn redacted(&self) -> String {
        match &self.user {
            Some(user) => format!("nats-route://{user}:xxxxx@{}", self.host_port()),
            None => format!("nats-route://{}", self.host_port()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_connect_have_nats_server_shape() {
        let settings = ClusterSettings {
            name: "demo".into(),
            host: "127.0.0.1".into(),
            port: 16241,
            client_urls: vec!["127.0.0.1:15231".into()],
            ..ClusterSettings::default()
        };
        let info = String::from_utf8(route_info_line(
            &settings,
            "NID",
            "n1",
            true,
            1048576,
            Some("abc"),
            false,
        ))
        .unwrap();
        assert!(info.starts_with(
            "INFO {\"server_id\":\"NID\",\"server_name\":\"n1\",\"version\":\"2.9.10\",\"proto\":2,\"go\":\""
        ));
        assert!(info.ends_with(
            "\"host\":\"127.0.0.1\",\"port\":16241,\"headers\":true,\"max_payload\":1048576,\"nonce\":\"abc\",\"cluster\":\"demo\",\"connect_urls\":[\"127.0.0.1:15231\"]} \r\n"
        ));
        let connect = String::from_utf8(route_connect_line(
            "NID", "demo", false, true, None, None, false,
        ))
        .unwrap();
        assert_eq!(
            connect,
            "CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NID\",\"cluster\":\"demo\"}\r\n"
        );
    }

    #[test]
    fn route_urls() {
        let url = RouteUrl::parse("nats-route://u:p@Host:6222/").unwrap();
        assert_eq!(url.host_port(), "host:6222");
        assert_eq!(
            (url.user.as_deref(), url.pass.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(url.redacted(), "nats-route://u:xxxxx@host:6222");
        assert_eq!(RouteUrl::parse("nats://127.0.0.1:1").unwrap().port, 1);
        assert!(RouteUrl::parse("nats-route://nohost").is_none());
        assert!(RouteUrl::parse("nats-route://h:99999").is_none());
    }
}
