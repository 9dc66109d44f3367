//! The slice of HTTP/1.1 the monitoring port needs: reading one request
//! head with size limits, decoding the path and query string, and writing a
//! response with a known length. Peers are untrusted: anything malformed or
//! oversized becomes [`ReadError::Malformed`] (answered 400, then closed),
//! never a panic.

use std::io::{self, BufRead, Read, Write};
use std::time::SystemTime;

use super::format;

/// Longest request line accepted (method, target, version).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest single header line.
pub const MAX_HEADER_LINE: usize = 8 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 100;
/// A request body up to this size is read and discarded so the connection
/// can be reused; a larger one closes the connection after the response.
pub const MAX_DISCARDED_BODY: u64 = 64 * 1024;

/// One parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path, always starting with `/`.
    pub path: String,
    pub query: Query,
    /// Whether the client lets the connection be reused after this request.
    pub keep_alive: bool,
    pub content_length: u64,
}

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or went idle past the timeout) before a full head.
    Closed,
    /// Not HTTP we accept; the string says why (for the 400 body).
    Malformed(&'static str),
    /// Read failure or idle timeout: the connection is just closed.
    Io,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// One line without its `\r\n` (or bare `\n`); `None` at a clean EOF
/// before any byte. Never buffers more than `limit` bytes.
fn read_line(reader: &mut impl BufRead, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    // +1 so a line of exactly `limit` bytes still fits with its `\n`.
    let read = reader
        .by_ref()
        .take(limit as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > limit {
            return Err(ReadError::Malformed("line too long"));
        }
        // EOF in the middle of a line: nothing to answer.
        return Err(ReadError::Closed);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > limit {
        return Err(ReadError::Malformed("line too long"));
    }
    Ok(Some(line))
}

/// Reads one request head. `Ok(None)`: the peer closed cleanly between
/// requests.
pub fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>, ReadError> {
    // RFC 9112 §2.2: ignore a few empty lines before the request line
    // (some clients send a CRLF after a previous body).
    let mut request_line = None;
    for _ in 0..4 {
        match read_line(reader, MAX_REQUEST_LINE)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => {
                request_line = Some(line);
                break;
            }
        }
    }
    let request_line = request_line.ok_or(ReadError::Malformed("missing request line"))?;
    let request_line =
        std::str::from_utf8(&request_line).map_err(|_| ReadError::Malformed("request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed("request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ReadError::Malformed("method"));
    }
    let http_1_1 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(ReadError::Malformed("HTTP version")),
    };
    let (path, query) = split_target(target)?;

    let mut close = false;
    let mut keep_alive_token = false;
    let mut content_length: Option<u64> = None;
    let mut headers = 0;
    loop {
        let line = read_line(reader, MAX_HEADER_LINE)?.ok_or(ReadError::Closed)?;
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(ReadError::Malformed("too many headers"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ReadError::Malformed("header line"))?;
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(ReadError::Malformed("header name"));
        }
        let value = String::from_utf8_lossy(&line[colon + 1..]);
        let value = value.trim();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let length: u64 = value
                .parse()
                .map_err(|_| ReadError::Malformed("Content-Length"))?;
            if content_length.is_some_and(|previous| previous != length) {
                return Err(ReadError::Malformed("Content-Length"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // No endpoint takes a body; we cannot skip a chunked one safely.
            return Err(ReadError::Malformed("Transfer-Encoding"));
        }
    }
    Ok(Some(Request {
        method: method.to_string(),
        path,
        query,
        keep_alive: if http_1_1 {
            !close
        } else {
            keep_alive_token && !close
        },
        content_length: content_length.unwrap_or(0),
    }))
}

/// Splits a request target into decoded path and query. Accepts the
/// origin form (`/varz?x=1`) and the absolute form (`http://h/varz`).
fn split_target(target: &str) -> Result<(String, Query), ReadError> {
    let origin = if target.starts_with('/') {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find('/').map_or("/", |slash| &rest[slash..])
    } else {
        return Err(ReadError::Malformed("request target"));
    };
    let origin = origin.split('#').next().unwrap_or("");
    let (raw_path, raw_query) = origin.split_once('?').unwrap_or((origin, ""));
    let path = percent_decode(raw_path.as_bytes(), false).ok_or(ReadError::Malformed("path"))?;
    Ok((
        String::from_utf8_lossy(&path).into_owned(),
        Query::parse(raw_query),
    ))
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `%XX` decoding (and `+` as space in query components); `None` on a bad
/// escape.
pub fn percent_decode(input: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let high = hex_value(*input.get(i + 1)?)?;
                let low = hex_value(*input.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Decoded query parameters in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=x+y&c=%41`. Like Go's `url.Query()` (which nats-server
    /// uses), a pair with a bad escape or a `;` is dropped rather than
    /// failing the request.
    pub fn parse(raw: &str) -> Query {
        let mut pairs = Vec::new();
        for pair in raw.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(key), Some(value)) = (
                percent_decode(key.as_bytes(), true),
                percent_decode(value.as_bytes(), true),
            ) else {
                continue;
            };
            pairs.push((
                String::from_utf8_lossy(&key).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            ));
        }
        Query { pairs }
    }

    /// A query from decoded pairs (the system account's requests carry
    /// their options as JSON, turned into the HTTP parameters).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        Query { pairs }
    }

    /// The first value of `key`, `None` when absent or empty (nats-server
    /// treats `?limit=` like no `limit`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

pub const JSON: &str = "application/json";
pub const JAVASCRIPT: &str = "application/javascript";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

/// A complete response; the body is always sent with a Content-Length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// HEAD: send the headers (Content-Length included) without the body.
    pub omit_body: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            omit_body: false,
        }
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, TEXT, body)
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes `response` in one buffer; `keep_alive: false` adds
/// `Connection: close` (the caller then closes).
pub fn write_response(
    out: &mut impl Write,
    response: &Response,
    keep_alive: bool,
    now: SystemTime,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nDate: {}\r\nContent-Length: {}\r\n",
        response.status,
        reason_phrase(response.status),
        response.content_type,
        format::http_date(now),
        response.body.len()
    );
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !response.omit_body {
        bytes.extend_from_slice(&response.body);
    }
    out.write_all(&bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<Request>, ReadError> {
        read_request(&mut io::Cursor::new(raw.as_bytes().to_vec()))
    }

    #[test]
    fn parses_request_head() {
        let request = parse("GET /connz?limit=5&sort=bytes_to HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/connz");
        assert_eq!(request.query.get("limit"), Some("5"));
        assert_eq!(request.query.get("sort"), Some("bytes_to"));
        assert!(request.keep_alive);
    }

    #[test]
    fn connection_header_and_version_decide_keep_alive() {
        let close = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!close.keep_alive);
        let old = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!old.keep_alive);
        let old_kept = parse("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(old_kept.keep_alive);
        // Bare LF line ends are tolerated.
        let lf = parse("GET /varz HTTP/1.1\nConnection: upgrade, close\n\n")
            .unwrap()
            .unwrap();
        assert!(!lf.keep_alive);
    }

    #[test]
    fn rejects_malformed_heads() {
        for raw in [
            "GET /\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET varz HTTP/1.1\r\n\r\n",
            "G@T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nno colon\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /%zz HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(ReadError::Malformed(_))),
                "{raw:?} should be malformed"
            );
        }
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert!(matches!(parse(&long), Err(ReadError::Malformed(_))));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(parse(&many), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn eof_is_not_an_error_to_answer() {
        assert!(matches!(parse(""), Ok(None)));
        assert!(matches!(parse("GET / HT"), Err(ReadError::Closed)));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: x\r\n"),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn absolute_target_and_escaped_path() {
        let request = parse("GET http://host:8222/var%7A?a=1 HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(request.path, "/varz");
        assert_eq!(request.query.get("a"), Some("1"));
    }

    #[test]
    fn query_decoding() {
        let query =
            Query::parse("test=foo%2Ebar&x=a+b&sort=&limit=3&limit=x&bad=%zz&semi=1;2&flag");
        assert_eq!(query.get("test"), Some("foo.bar"));
        assert_eq!(query.get("x"), Some("a b"));
        // Empty values count as absent; the first of repeated keys wins.
        assert_eq!(query.get("sort"), None);
        assert_eq!(query.get("limit"), Some("3"));
        assert_eq!(query.get("bad"), None);
        assert_eq!(query.get("semi"), None);
        assert_eq!(query.get("flag"), None);
        assert_eq!(Query::parse("limit=%2B5").get("limit"), Some("+5"));
        assert_eq!(Query::parse("limit=+5").get("limit"), Some(" 5"));
    }

    #[test]
    fn writes_response_with_length() {
        let mut out = Vec::new();
        let response = Response::new(200, JSON, "{}");
        write_response(&mut out, &response, false, std::time::UNIX_EPOCH).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\n{}"
        );
    }
}
