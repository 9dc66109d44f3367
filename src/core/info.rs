//! The server's `INFO` line, field for field and in the order nats-server
//! 2.9 sends it (clients parse it; byte-level tools compare it), including
//! the space before CRLF.

use serde::Serialize;

/// The version we advertise. Clients gate features on it as semver (nats.go
/// checks for ≥ 2.2 / 2.9 features), so it names the nats-server release
/// whose behaviour we reproduce.
pub const ADVERTISED_VERSION: &str = "2.9.10";
/// `proto: 1`: echo control and asynchronous INFO supported.
pub const PROTOCOL_VERSION: u8 = 1;

/// Server-wide part of INFO, built once at start.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub server_id: String,
    pub server_name: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    /// INFO `auth_required` (see `AuthPolicy::auth_required`).
    pub auth_required: bool,
    pub max_payload: usize,
    /// INFO's TLS flags (all false without `tls {}`).
    pub tls: TlsAdvertised,
}

/// What INFO says about TLS on the client port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsAdvertised {
    /// `tls_required`: TLS configured and `allow_non_tls` not set.
    pub required: bool,
    /// `tls_verify`: clients must present a certificate.
    pub verify: bool,
    /// `tls_available`: TLS configured with `allow_non_tls`.
    pub available: bool,
}

#[derive(Serialize)]
struct InfoWire<'a> {
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_available: bool,
    max_payload: usize,
    client_id: u64,
    client_ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    connect_urls: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ldm: bool,
}

/// What a clustered server adds to its client INFO: the cluster's name and
/// the client URLs of its members (empty with `no_advertise`), which
/// clients use to discover and fail over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientClusterInfo {
    pub name: String,
    pub connect_urls: Vec<String>,
}

impl ServerIdentity {
    /// The INFO line for one client connection, ending in ` \r\n`; `nonce`
    /// is the connection's NKey challenge, if the server sends one.
    pub fn info_line(
        &self,
        client_id: u64,
        client_ip: &str,
        lame_duck: bool,
        nonce: Option<&str>,
    ) -> Vec<u8> {
        self.info_line_in_cluster(client_id, client_ip, lame_duck, nonce, None)
    }

    /// [`ServerIdentity::info_line`] of a server in a cluster.
    pub fn info_line_in_cluster(
        &self,
        client_id: u64,
        client_ip: &str,
        lame_duck: bool,
        nonce: Option<&str>,
        cluster: Option<&ClientClusterInfo>,
    ) -> Vec<u8> {
        self.info_line_with_payload(
            client_id,
            client_ip,
            lame_duck,
            nonce,
            cluster,
            self.max_payload,
        )
    }

    /// [`ServerIdentity::info_line_in_cluster`] with the connection's own
    /// `max_payload` (nats-server's `c.mpay`: lower when the user's or the
    /// account's limit is).
    pub fn info_line_with_payload(
        &self,
        client_id: u64,
        client_ip: &str,
        lame_duck: bool,
        nonce: Option<&str>,
        cluster: Option<&ClientClusterInfo>,
        max_payload: usize,
    ) -> Vec<u8> {
        let wire = InfoWire {
            server_id: &self.server_id,
            server_name: &self.server_name,
            version: ADVERTISED_VERSION,
            proto: PROTOCOL_VERSION,
            go: concat!("percore-", env!("CARGO_PKG_VERSION")),
            host: &self.host,
            port: self.port,
            headers: self.headers,
            auth_required: self.auth_required,
            tls_required: self.tls.required,
            tls_verify: self.tls.verify,
            tls_available: self.tls.available,
            max_payload,
            client_id,
            client_ip,
            nonce,
            cluster: cluster.map(|c| c.name.as_str()),
            connect_urls: cluster.map_or(&[], |c| &c.connect_urls[..]),
            ldm: lame_duck,
        };
        // Serialising plain strings and numbers into a Vec cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        let mut line = b"INFO ".to_vec();
        // As Go's encoding/json writes it (`<`, `>`, `&` escaped, ...).
        line.extend_from_slice(&crate::go_json::go_json_escape(&json));
        line.extend_from_slice(b" \r\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_has_nats_field_order_and_trailing_space() {
        let id = ServerIdentity {
            server_id: "NABC".into(),
            server_name: "n1".into(),
            host: "127.0.0.1".into(),
            port: 4222,
            headers: true,
            auth_required: false,
            max_payload: 1048576,
            tls: TlsAdvertised::default(),
        };
        let line = String::from_utf8(id.info_line(7, "127.0.0.1", false, None)).unwrap();
        assert!(line.starts_with(
            "INFO {\"server_id\":\"NABC\",\"server_name\":\"n1\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\""
        ));
        assert!(line.ends_with(
            "\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"client_id\":7,\"client_ip\":\"127.0.0.1\"} \r\n"
        ));
        let ldm = String::from_utf8(id.info_line(7, "127.0.0.1", true, None)).unwrap();
        assert!(ldm.ends_with(",\"ldm\":true} \r\n"));
        let secured = ServerIdentity {
            auth_required: true,
            ..id
        };
        let line = String::from_utf8(secured.info_line(7, "1.2.3.4", false, Some("abc"))).unwrap();
        assert!(line.contains("\"headers\":true,\"auth_required\":true,\"max_payload\":1048576,"));
        assert!(line.ends_with("\"client_ip\":\"1.2.3.4\",\"nonce\":\"abc\"} \r\n"));
        let tls = ServerIdentity {
            tls: TlsAdvertised {
                required: true,
                verify: true,
                available: false,
            },
            ..secured
        };
        let line = String::from_utf8(tls.info_line(7, "1.2.3.4", false, None)).unwrap();
        assert!(line.contains(
            "\"auth_required\":true,\"tls_required\":true,\"tls_verify\":true,\"max_payload\""
        ));
    }
}
