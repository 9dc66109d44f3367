//! A small blocking HTTP/1.1 GET client on `std::net::TcpStream` (with
//! rustls for `https`), for the
//! URL account resolver ([`crate::resolver::url`]). It only needs to fetch
//! small documents (account JWTs) from one configured base URL, so it does
//! one request per connection (`Connection: close`), follows no
//! redirects, and reads `Content-Length`, chunked or until-close bodies up
//! to [`MAX_BODY`]. Everything (connect, request, headers, body) must
//! finish before one deadline, as Go's `http.Client.Timeout` bounds the
//! whole exchange. Error texts follow Go's `net/http` client where a
//! client of nats-server would see them in its logs.
//!
//! Blocking: call it from a blocking thread, never from a shard.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// The largest body accepted: account JWTs are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest status line plus headers accepted.
const MAX_HEAD: usize = 64 * 1024;

/// An `http://host[:port]/path` or `https://...` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// As configured (for error texts; see [`HttpUrl::redacted`]).
    pub text: String,
    /// `https`: the exchange runs over TLS.
    pub secure: bool,
    host: String,
    port: u16,
    /// Path and query, at least `/`.
    path: String,
}

impl HttpUrl {
    /// Parses an `http` or `https` URL.
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!("account resolver url [{text:?}] has no scheme"));
        };
        let secure = scheme.eq_ignore_ascii_case("https");
        if !secure && !scheme.eq_ignore_ascii_case("http") {
            return Err(format!(
                "account resolver url [{text:?}]: scheme {scheme:?} is not supported (http or https)"
            ));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // Credentials in the URL are not sent (no basic auth here).
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = split_host_port(host_port, default_port)
            .ok_or_else(|| format!("account resolver url [{text:?}] has an invalid host"))?;
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(HttpUrl {
            text: text.to_string(),
            secure,
            host,
            port,
            path,
        })
    }

    /// This URL with `suffix` appended to its path.
    pub fn join(&self, suffix: &str) -> HttpUrl {
        HttpUrl {
            text: format!("{}{suffix}", self.text),
            secure: self.secure,
            host: self.host.clone(),
            port: self.port,
            path: format!("{}{suffix}", self.path),
        }
    }

    /// The URL with a password replaced by `xxxxx` (Go's `url.Redacted`).
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.text.split_once("://") else {
            return self.text.clone();
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let Some(at) = rest[..end].rfind('@') else {
            return self.text.clone();
        };
        let Some(colon) = rest[..at].find(':') else {
            return self.text.clone();
        };
        format!("{scheme}://{}:xxxxx{}", &rest[..colon], &rest[at..])
    }
}

fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if text.is_empty() {
        return None;
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_string(), port.parse().ok()?)),
        Some(_) => None,
        None => Some((text.to_string(), default_port)),
    }
}

/// An answer with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    /// Go's `Response.Status`: `"404 Not Found"`.
    pub status: String,
    pub body: Vec<u8>,
}

/// GETs `url` (over TLS with `tls` for `https`); everything must be done
/// within `timeout`. The error is Go's text for the failed `Get`.
pub fn get(
    url: &HttpUrl,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let quoted = format!("Get {:?}", url.redacted());
    let timed_out = |stage: &str| {
        format!("{quoted}: context deadline exceeded (Client.Timeout exceeded while {stage})")
    };
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|_| format!("{quoted}: dial tcp: lookup {}: no such host", url.host))?
        .collect();
    let mut stream = None;
    let mut last_error = None;
    for addr in &addrs {
        let Some(left) = remaining(deadline) else {
            return Err(timed_out("awaiting headers"));
        };
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(timed_out("awaiting headers"))
            }
            Err(e) => {
                last_error = Some(format!(
                    "{quoted}: dial tcp {addr}: connect: {}",
                    os_text(&e)
                ))
            }
        }
    }
    let Some(stream) = stream else {
        return Err(last_error
            .unwrap_or_else(|| format!("{quoted}: dial tcp: lookup {}: no such host", url.host)));
    };
    let mut stream = if url.secure {
        let config = tls.ok_or_else(|| format!("{quoted}: no TLS configuration"))?;
        let name =
            crate::tls::client::server_name(&url.host).map_err(|e| format!("{quoted}: {e}"))?;
        let session =
            ClientConnection::new(config.clone(), name).map_err(|e| format!("{quoted}: {e}"))?;
        Transport::Tls(Box::new(StreamOwned::new(session, stream)))
    } else {
        Transport::Plain(stream)
    };
    let host = if url.port == if url.secure { 443 } else { 80 } {
        url.host.clone()
    } else if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\nConnection: close\r\n\r\n",
        url.path
    );
    let left = remaining(deadline).ok_or_else(|| timed_out("awaiting headers"))?;
    // The TLS handshake reads and writes here too.
    stream
        .tcp()
        .set_write_timeout(Some(left))
        .and_then(|()| stream.tcp().set_read_timeout(Some(left)))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .and_then(|()| stream.flush())
        .map_err(|e| io_failure(&quoted, &e, || timed_out("awaiting headers")))?;
    let mut reader = DeadlineReader {
        stream,
        deadline,
        buffer: Vec::new(),
        start: 0,
        eof: false,
    };
    let head = reader
        .read_head()
        .map_err(|e| io_failure(&quoted, &e, || timed_out("awaiting headers")))?
        .ok_or_else(|| format!("{quoted}: EOF"))?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let (code, status) = parse_status(status_line)
        .ok_or_else(|| format!("{quoted}: malformed HTTP response {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{quoted}: bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let reading_body = || timed_out("reading body");
    let body = if chunked {
        reader.read_chunked()
    } else if let Some(length) = length {
        if length > MAX_BODY {
            return Err(too_large(&quoted));
        }
        reader.read_exact_body(length)
    } else {
        reader.read_to_close()
    }
    .map_err(|e| match e {
        BodyError::TooLarge => too_large(&quoted),
        BodyError::Malformed => format!("{quoted}: malformed chunked encoding"),
        BodyError::Io(e) => io_failure(&quoted, &e, reading_body),
    })?;
    Ok(Response { code, status, body })
}

fn too_large(quoted: &str) -> String {
    format!("{quoted}: response body larger than {MAX_BODY} bytes")
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// A timeout reads as Go's deadline text; anything else as the OS said.
fn io_failure(quoted: &str, e: &std::io::Error, timed_out: impl Fn() -> String) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => timed_out(),
        std::io::ErrorKind::UnexpectedEof => format!("{quoted}: unexpected EOF"),
        _ => format!("{quoted}: {}", os_text(e)),
    }
}

/// Go prints the syscall's text in lower case, without Rust's
/// `(os error N)`.
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `HTTP/1.1 404 Not Found` → `(404, "404 Not Found")`.
fn parse_status(line: &str) -> Option<(u16, String)> {
    let (proto, rest) = line.split_once(' ')?;
    if !proto.starts_with("HTTP/") {
        return None;
    }
    let status = rest.trim_start_matches(' ');
    let code = status.get(..3)?.parse().ok()?;
    Some((code, status.to_string()))
}

enum BodyError {
    TooLarge,
    Malformed,
    Io(std::io::Error),
}

impl From<std::io::Error> for BodyError {
    fn from(e: std::io::Error) -> Self {
        BodyError::Io(e)
    }
}

/// The connection, plain or through TLS.
enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Transport {
    /// The socket, for its timeouts.
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => &s.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            // A server that closes without close_notify ends the body
            // (Go reads such a body to the end too).
            Transport::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// Reads with the time left before the deadline as each read's timeout.
struct DeadlineReader {
    stream: Transport,
    deadline: Instant,
    /// Bytes read and not yet consumed start at `start`.
    buffer: Vec<u8>,
    start: usize,
    eof: bool,
}

impl DeadlineReader {
    /// Reads more; false at the end of the stream.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let left = remaining(self.deadline).ok_or(std::io::ErrorKind::TimedOut)?;
        self.stream.tcp().set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    fn pending(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// The status line and headers, without the blank line; `None` if
    /// the stream ended first.
    fn read_head(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(self.pending(), b"\r\n\r\n") {
                let head = self.pending()[..end].to_vec();
                self.start += end + 4;
                return Ok(Some(head));
            }
            if self.pending().len() > MAX_HEAD {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "response headers too long",
                ));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn read_exact_body(&mut self, length: usize) -> Result<Vec<u8>, BodyError> {
        while self.pending().len() < length {
            if !self.fill()? {
                return Err(BodyError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(self.pending()[..length].to_vec())
    }

    fn read_to_close(&mut self) -> Result<Vec<u8>, BodyError> {
        while self.fill()? {
            if self.pending().len() > MAX_BODY {
                return Err(BodyError::TooLarge);
            }
        }
        Ok(self.pending().to_vec())
    }

    /// A line ending in CRLF, without it.
    fn read_line(&mut self) -> Result<Vec<u8>, BodyError> {
        loop {
            if let Some(end) = find(self.pending(), b"\r\n") {
                let line = self.pending()[..end].to_vec();
                self.start += end + 2;
                return Ok(line);
            }
            if self.pending().len() > MAX_HEAD {
                return Err(BodyError::Malformed);
            }
            if !self.fill()? {
                return Err(BodyError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, BodyError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size_text = String::from_utf8_lossy(&line);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| BodyError::Malformed)?;
            if size == 0 {
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(BodyError::TooLarge);
            }
            let chunk = self.read_exact_body(size)?;
            self.start += size;
            body.extend_from_slice(&chunk);
            if !self.read_line()?.is_empty() {
                return Err(BodyError::Malformed);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection with `answer` and returns the request seen.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                if conn.read(&mut byte).unwrap_or(0) == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            let _ = conn.write_all(answer);
            String::from_utf8_lossy(&request).into_owned()
        });
        (format!("http://{addr}"), handle)
    }

    #[test]
    fn urls() {
        let url = HttpUrl::parse("http://127.0.0.1:9090/jwt/v1/accounts/").expect("url");
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 9090);
        assert_eq!(url.join("ABC").path, "/jwt/v1/accounts/ABC");
        let bare = HttpUrl::parse("http://example.com").expect("url");
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        let creds = HttpUrl::parse("http://me:secret@h:1/x").expect("url");
        assert_eq!(creds.redacted(), "http://me:xxxxx@h:1/x");
        let secure = HttpUrl::parse("https://h/x").expect("https");
        assert!(secure.secure && secure.port == 443);
        assert!(HttpUrl::parse("ftp://h/x").is_err());
        assert!(HttpUrl::parse("h:1/x").is_err());
        let v6 = HttpUrl::parse("http://[::1]:81/a").expect("v6");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 81));
    }

    #[test]
    fn content_length_and_request_line() {
        let (base, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
        let url = HttpUrl::parse(&format!("{base}/jwt/v1/accounts/")).expect("url");
        let response = get(&url.join("AKEY"), Duration::from_secs(5), None).expect("get");
        assert_eq!(
            (response.code, response.body.as_slice()),
            (200, &b"hello"[..])
        );
        let request = server.join().expect("server");
        assert!(request.starts_with("GET /jwt/v1/accounts/AKEY HTTP/1.1\r\n"));
    }

    #[test]
    fn chunked_and_status_text() {
        let (base, _server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let response = get(
            &HttpUrl::parse(&base).expect("url"),
            Duration::from_secs(5),
            None,
        )
        .expect("get");
        assert_eq!(response.status, "404 Not Found");
        assert_eq!(response.body, b"abcde");
    }

    #[test]
    fn body_until_close_is_bounded() {
        let (base, _server) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nuntil close");
        let response = get(
            &HttpUrl::parse(&base).expect("url"),
            Duration::from_secs(5),
            None,
        )
        .expect("get");
        assert_eq!(response.body, b"until close");
        let (base, _server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n");
        let err = get(
            &HttpUrl::parse(&base).expect("url"),
            Duration::from_secs(5),
            None,
        )
        .expect_err("too large");
        assert!(err.contains("larger than 1048576 bytes"), "{err}");
    }

    #[test]
    fn silence_times_out_with_gos_text() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = HttpUrl::parse(&format!(
            "http://{}/a/",
            listener.local_addr().expect("addr")
        ))
        .expect("url");
        let started = Instant::now();
        let err = get(&url, Duration::from_millis(200), None).expect_err("timeout");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            err,
            format!(
                "Get {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                url.text
            )
        );
        drop(listener);
    }

    #[test]
    fn refused_connection() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        let err = get(&url, Duration::from_secs(1), None).expect_err("refused");
        assert_eq!(
            err,
            format!("Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }
}
