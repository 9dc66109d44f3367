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
    pub max_payload: usize,
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
    max_payload: usize,
    client_id: u64,
    client_ip: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ldm: bool,
}

impl ServerIdentity {
    /// The INFO line for one client connection, ending in ` \r\n`.
    pub fn info_line(&self, client_id: u64, client_ip: &str, lame_duck: bool) -> Vec<u8> {
        let wire = InfoWire {
            server_id: &self.server_id,
            server_name: &self.server_name,
            version: ADVERTISED_VERSION,
            proto: PROTOCOL_VERSION,
            go: concat!("percore-", env!("CARGO_PKG_VERSION")),
            host: &self.host,
            port: self.port,
            headers: self.headers,
            max_payload: self.max_payload,
            client_id,
            client_ip,
            ldm: lame_duck,
        };
        let mut line = b"INFO ".to_vec();
        // Serialising plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut line, &wire);
        line.extend_from_slice(b" \r\n");
        line
    }
}

/// A new server id shaped like nats-server's (a public nkey: 'N' followed by
/// 55 base32 characters), random per start.
pub fn generate_server_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 55];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !filled {
        let mut seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9)
            ^ u64::from(std::process::id());
        for b in bytes.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
    }
    let mut id = String::with_capacity(56);
    id.push('N');
    id.extend(bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char));
    id
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
            max_payload: 1048576,
        };
        let line = String::from_utf8(id.info_line(7, "127.0.0.1", false)).unwrap();
        assert!(line.starts_with(
            "INFO {\"server_id\":\"NABC\",\"server_name\":\"n1\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\""
        ));
        assert!(line.ends_with(
            "\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"client_id\":7,\"client_ip\":\"127.0.0.1\"} \r\n"
        ));
        let ldm = String::from_utf8(id.info_line(7, "127.0.0.1", true)).unwrap();
        assert!(ldm.ends_with(",\"ldm\":true} \r\n"));
    }

    #[test]
    fn server_id_shape() {
        let id = generate_server_id();
        assert_eq!(id.len(), 56);
        assert!(id.starts_with('N'));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    }
}
