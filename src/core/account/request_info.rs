//! The `Nats-Request-Info` header nats-server 2.9 puts on every request
//! that crosses a service import, so the responder in the exporting
//! account learns who asked: the requester's account and its measured
//! round trip (`{"acc":"B","rtt":117144}`, the RTT in nanoseconds, left
//! out while zero as Go's `omitempty` does).
//!
//! The header is set, not added: a `Nats-Request-Info` the requester sent
//! itself is removed first (the first occurrence only, where it starts a
//! line and is followed by `:`, as nats-server's `removeHeaderIfPresent`),
//! and the new line goes last in the block. Built once per request that
//! crosses an import, never on the plain publish path.
//!
//! An import with `share: true` tells the exporter more (nats-server's
//! `getClientInfo(detailed)`): the requester's start, host, client id,
//! user, name, lang and version, its JWT details, the server and cluster
//! names, `kind` and `client_type`. An import from the system account gets
//! the server and cluster names even without `share`.

use std::time::Duration;

use crate::go_json::go_json_escape;

/// The header's name, as nats-server writes it.
pub const REQUEST_INFO_HEADER: &[u8] = b"Nats-Request-Info";

const HEADER_LINE: &[u8] = b"NATS/1.0\r\n";
const CRLF: &[u8] = b"\r\n";

/// Who asked: what nats-server's `ClientInfo` holds for a service import
/// without `share`.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The requester's account (the importing one).
    pub account: &'a str,
    /// On a chain of service imports, the account the request is in when
    /// it crosses the next one (`svc`).
    pub service: Option<&'a str>,
    /// The requester's round trip as last measured.
    pub rtt: Option<Duration>,
    /// The requester's connection details, for an import with `share`.
    pub details: Option<ClientDetails<'a>>,
    /// This server (`server`, `cluster`): with `details`, or alone for an
    /// import from the system account.
    pub server: Option<ServerNames<'a>>,
}

/// The connection details a `share: true` import passes on (Go's
/// `omitempty`: empty strings, a zero id and no tags are left out).
#[derive(Debug, Clone, Copy)]
pub struct ClientDetails<'a> {
    /// When the connection was accepted, as Go's RFC 3339 with nanoseconds.
    pub start: &'a str,
    pub host: &'a str,
    pub id: u64,
    /// As nats-server's `getRawAuthUser`.
    pub user: &'a str,
    pub name: &'a str,
    pub lang: &'a str,
    pub version: &'a str,
    pub jwt: &'a str,
    pub issuer_key: &'a str,
    pub name_tag: &'a str,
    pub tags: &'a [String],
}

/// This server's name and its cluster's (empty when not clustered).
#[derive(Debug, Clone, Copy)]
pub struct ServerNames<'a> {
    pub server: &'a str,
    pub cluster: &'a str,
}

impl RequestInfo<'_> {
    /// The header value: the JSON Go's encoder writes for this
    /// `ClientInfo` (its field order: start, host, id, acc, svc, user,
    /// name, lang, ver, rtt, server, cluster, jwt, issuer_key, name_tag,
    /// tags, kind, client_type; Go's string escapes).
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = b"{".to_vec();
        let details = self.details.as_ref();
        if let Some(d) = details {
            push_field(&mut json, "start", d.start);
            push_field(&mut json, "host", d.host);
            if d.id != 0 {
                json.extend_from_slice(format!("\"id\":{},", d.id).as_bytes());
            }
        }
        json.extend_from_slice(b"\"acc\":");
        push_go_string(&mut json, self.account);
        json.push(b',');
        push_field(&mut json, "svc", self.service.unwrap_or(""));
        if let Some(d) = details {
            push_field(&mut json, "user", d.user);
            push_field(&mut json, "name", d.name);
            push_field(&mut json, "lang", d.lang);
            push_field(&mut json, "ver", d.version);
        }
        let rtt = self.rtt.map_or(0, |d| d.as_nanos());
        if rtt > 0 {
            json.extend_from_slice(format!("\"rtt\":{rtt},").as_bytes());
        }
        if let Some(server) = &self.server {
            push_field(&mut json, "server", server.server);
            push_field(&mut json, "cluster", server.cluster);
        }
        if let Some(d) = details {
            push_field(&mut json, "jwt", d.jwt);
            push_field(&mut json, "issuer_key", d.issuer_key);
            push_field(&mut json, "name_tag", d.name_tag);
            if !d.tags.is_empty() {
                json.extend_from_slice(b"\"tags\":[");
                for (i, tag) in d.tags.iter().enumerate() {
                    if i > 0 {
                        json.push(b',');
                    }
                    push_go_string(&mut json, tag);
                }
                json.extend_from_slice(b"],");
            }
            push_field(&mut json, "kind", "Client");
            push_field(&mut json, "client_type", "nats");
        }
        // Every field above ends with a comma; the last one's goes.
        if json.last() == Some(&b',') {
            json.pop();
        }
        json.push(b'}');
        json
    }
}

/// `"key":"value",` unless `value` is empty (Go's `omitempty`).
fn push_field(out: &mut Vec<u8>, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    push_go_string(out, value);
    out.push(b',');
}

/// `s` as a JSON string with Go's escapes.
fn push_go_string(out: &mut Vec<u8>, s: &str) {
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""));
    out.extend_from_slice(&go_json_escape(quoted.as_bytes()));
}

/// A request's payload with `Nats-Request-Info: value` set in its header
/// block, into `out` (cleared first); returns the new header block's
/// length. `header_len` is the request's own block (`None` for PUB).
///
/// As nats-server's `setHeader`: an announced block of two bytes or less
/// is not a block, and the whole payload stays the body.
pub fn set_request_info(
    header_len: Option<usize>,
    payload: &[u8],
    value: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    out.clear();
    let own = header_len.filter(|&h| h > CRLF.len() && h <= payload.len());
    let body_start = match own {
        Some(h) => {
            // The block without the CRLF that ends it.
            let block = without_header(&payload[..h - CRLF.len()], REQUEST_INFO_HEADER);
            match block {
                Some(block) => out.extend_from_slice(block.as_ref()),
                None => out.extend_from_slice(HEADER_LINE),
            }
            h
        }
        None => {
            out.extend_from_slice(HEADER_LINE);
            0
        }
    };
    out.extend_from_slice(REQUEST_INFO_HEADER);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(CRLF);
    out.extend_from_slice(CRLF);
    let new_header_len = out.len();
    out.extend_from_slice(&payload[body_start..]);
    new_header_len
}

/// `block` (a header block without its final CRLF) less its first `key`
/// line, as nats-server's `removeHeaderIfPresent`: only the first
/// occurrence of the bytes is looked at, and it is removed only where it
/// starts a line and `:` follows. `None` when nothing but the version
/// line would remain.
fn without_header<'a>(block: &'a [u8], key: &[u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
    use std::borrow::Cow;
    let Some(start) = find(block, key) else {
        return Some(Cow::Borrowed(block));
    };
    if start < 1 || block[start - 1] != b'\n' {
        return Some(Cow::Borrowed(block));
    }
    let after = start + key.len();
    if block.get(after) != Some(&b':') {
        return Some(Cow::Borrowed(block));
    }
    let Some(end) = find(&block[start..], CRLF) else {
        return Some(Cow::Borrowed(block));
    };
    let mut kept = block[..start].to_vec();
    kept.extend_from_slice(&block[start + end + CRLF.len()..]);
    // nats-server: nothing left beyond "NATS/1.0\r\n\r\n" is no block.
    if kept.len() <= HEADER_LINE.len() + CRLF.len() {
        return None;
    }
    Some(Cow::Owned(kept))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(account: &str, rtt_ns: u64) -> Vec<u8> {
        RequestInfo {
            account,
            service: None,
            rtt: Some(Duration::from_nanos(rtt_ns)),
            details: None,
            server: None,
        }
        .to_json()
    }

    #[test]
    fn json_is_go_s_client_info_without_share() {
        assert_eq!(info("B", 117144), br#"{"acc":"B","rtt":117144}"#);
        // omitempty: a zero RTT is left out.
        assert_eq!(info("B", 0), br#"{"acc":"B"}"#);
        assert_eq!(info("a<b\"", 1), br#"{"acc":"a\u003cb\"","rtt":1}"#);
        let chained = RequestInfo {
            account: "C",
            service: Some("B"),
            rtt: Some(Duration::from_nanos(5)),
            details: None,
            server: None,
        };
        assert_eq!(chained.to_json(), br#"{"acc":"C","svc":"B","rtt":5}"#);
    }

    #[test]
    fn json_with_share_has_go_s_detailed_client_info() {
        let tags = vec!["a:1".to_string(), "b".to_string()];
        let shared = RequestInfo {
            account: "B",
            service: None,
            rtt: Some(Duration::from_nanos(42)),
            details: Some(ClientDetails {
                start: "2026-12-06T21:00:17.5Z",
                host: "127.0.0.1",
                id: 7,
                user: "bob",
                name: "app",
                lang: "rust",
                version: "0.38.0",
                jwt: "",
                issuer_key: "",
                name_tag: "",
                tags: &tags,
            }),
            server: Some(ServerNames {
                server: "n1",
                cluster: "",
            }),
        };
        assert_eq!(
            String::from_utf8(shared.to_json()).unwrap(),
            r#"{"start":"2026-12-06T21:00:17.5Z","host":"127.0.0.1","id":7,"acc":"B","user":"bob","name":"app","lang":"rust","ver":"0.38.0","rtt":42,"server":"n1","tags":["a:1","b"],"kind":"Client","client_type":"nats"}"#
        );
        // An import from the system account: server and cluster alone.
        let system = RequestInfo {
            account: "B",
            service: Some("S"),
            rtt: None,
            details: None,
            server: Some(ServerNames {
                server: "n1",
                cluster: "c",
            }),
        };
        assert_eq!(
            system.to_json(),
            br#"{"acc":"B","svc":"S","server":"n1","cluster":"c"}"#
        );
    }

    fn set(header_len: Option<usize>, payload: &[u8]) -> (usize, Vec<u8>) {
        let mut out = Vec::new();
        let h = set_request_info(header_len, payload, b"{\"acc\":\"B\"}", &mut out);
        (h, out)
    }

    #[test]
    fn a_pub_gets_a_new_block() {
        let (h, out) = set(None, b"hi");
        assert_eq!(
            out,
            b"NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\nhi".to_vec()
        );
        assert_eq!(h, out.len() - 2);
    }

    #[test]
    fn an_hpub_keeps_its_headers_and_gets_the_line_last() {
        let payload = b"NATS/1.0\r\nFoo: bar\r\n\r\nhi";
        let (h, out) = set(Some(22), payload);
        assert_eq!(
            out,
            b"NATS/1.0\r\nFoo: bar\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\nhi".to_vec()
        );
        assert_eq!(h, out.len() - 2);
    }

    #[test]
    fn the_requester_s_own_request_info_is_replaced() {
        let payload = b"NATS/1.0\r\nNats-Request-Info: {\"acc\":\"X\"}\r\n\r\nhi";
        let (_, out) = set(Some(44), payload);
        assert_eq!(
            out,
            b"NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\nhi".to_vec()
        );
        let payload = b"NATS/1.0\r\nA: 1\r\nNats-Request-Info: x\r\nB: 2\r\n\r\nhi";
        let (_, out) = set(Some(payload.len() - 2), payload);
        assert_eq!(
            out,
            b"NATS/1.0\r\nA: 1\r\nB: 2\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\nhi".to_vec()
        );
    }

    #[test]
    fn a_key_that_does_not_start_a_line_is_left_alone() {
        let payload = b"NATS/1.0\r\nX-Nats-Request-Info: x\r\n\r\n";
        let (_, out) = set(Some(payload.len()), payload);
        assert_eq!(
            out,
            b"NATS/1.0\r\nX-Nats-Request-Info: x\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n"
                .to_vec()
        );
    }
}
