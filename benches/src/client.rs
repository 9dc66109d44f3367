//! A minimal blocking NATS client, built for the load generator.
//!
//! One thread owns one connection. Writes go through [`OutBuf`], a plain byte
//! buffer flushed in large batches (publishers) or after each reply (responders).
//! Reads go through [`Reader`], a growable buffer with a tiny parser for the
//! server-to-client operations (INFO, MSG, HMSG, PING, PONG, +OK, -ERR).
//! Nothing read from the server is trusted: malformed input becomes an
//! `io::Error`, never a panic.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::clock;
use crate::tls::Wire;

/// The CONNECT line the bench sends: no verbose +OK, headers and no_responders on,
/// so the server treats us like a modern client.
const CONNECT_LINE: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1,\"name\":\"percore-bench\"}\r\nPING\r\n";

/// Initial read buffer; it grows when one frame does not fit.
const READ_BUF: usize = 256 * 1024;
/// Publishers flush once this much is buffered: large batches keep the client
/// from being the bottleneck (one syscall per ~64 KiB).
pub const FLUSH_AT: usize = 64 * 1024;

/// What the server said in its INFO line (only the fields the bench uses).
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub client_id: u64,
    pub max_payload: u64,
    pub headers: bool,
    /// What a JWT or NKey login signs (operator mode); empty otherwise.
    pub nonce: String,
}

impl ServerInfo {
    fn parse(json: &[u8]) -> io::Result<ServerInfo> {
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| bad_data(format!("INFO is not JSON: {e}")))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        Ok(ServerInfo {
            server_id: s("server_id"),
            server_name: s("server_name"),
            version: s("version"),
            client_id: v.get("client_id").and_then(|x| x.as_u64()).unwrap_or(0),
            max_payload: v.get("max_payload").and_then(|x| x.as_u64()).unwrap_or(0),
            headers: v.get("headers").and_then(|x| x.as_bool()).unwrap_or(false),
            nonce: s("nonce"),
        })
    }
}

/// One operation received from the server. Slices borrow the reader's buffer
/// and are valid until the next call to [`Reader::next_event`].
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Msg {
        subject: &'a [u8],
        sid: u64,
        reply: Option<&'a [u8]>,
        /// For HMSG this is headers followed by the payload.
        payload: &'a [u8],
        /// When the read() that completed this frame returned (CLOCK_MONOTONIC ns).
        recv_ns: u64,
    },
    Ping,
    Pong,
    Ok,
    Err(String),
    Info(&'a [u8]),
}

/// Borrow-free description of a parsed frame (byte ranges into the buffer),
/// so the parse loop can mutate the buffer before handing out slices.
enum Frame {
    Msg {
        subject: (usize, usize),
        sid: u64,
        reply: Option<(usize, usize)>,
        payload: (usize, usize),
    },
    Ping,
    Pong,
    Ok,
    Err(String),
    Info((usize, usize)),
}

pub fn bad_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Buffered reader with a NATS frame parser.
pub struct Reader {
    stream: Wire,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Largest single read() (the throttled slow subscriber reads small chunks).
    max_read: usize,
    /// CLOCK_MONOTONIC ns when the last read() returned: a cheap "receive time"
    /// for every frame of that read, instead of one clock call per message.
    pub last_read_ns: u64,
    /// Bytes read from the socket so far.
    pub bytes_read: u64,
}

impl Reader {
    pub fn new(stream: TcpStream) -> Reader {
        Reader::with_capacity(Wire::Plain(stream), READ_BUF)
    }

    /// A reader whose buffer starts at `cap` bytes (it still grows for a
    /// frame that does not fit): small for connections that carry little.
    pub fn with_capacity(stream: Wire, cap: usize) -> Reader {
        Reader {
            stream,
            buf: vec![0; cap.max(64)],
            start: 0,
            end: 0,
            max_read: usize::MAX,
            last_read_ns: 0,
            bytes_read: 0,
        }
    }

    /// Caps every read() at `max` bytes, so a caller can pace its reading.
    pub fn limit_reads(&mut self, max: usize) {
        self.max_read = max.max(1);
    }

    /// True while complete or partial frames are still buffered; responders
    /// flush their replies only when this turns false (natural batching).
    pub fn has_buffered(&self) -> bool {
        self.end > self.start
    }

    /// Next event; `Ok(None)` when the socket's read timeout expired with no
    /// complete frame. EOF is an `UnexpectedEof` error.
    pub fn next_event(&mut self) -> io::Result<Option<Event<'_>>> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf[self.start..self.end])? {
                let base = self.start;
                self.start += used;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                    // The frame still lives in buf: indices stay valid until the next read.
                }
                return Ok(Some(self.event_at(base, frame)));
            }
            // Need more bytes: compact, grow if one frame is larger than the buffer.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
            let upto = self.end.saturating_add(self.max_read).min(self.buf.len());
            match self.stream.read(&mut self.buf[self.end..upto]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ))
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    self.last_read_ns = clock::now_ns();
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn event_at(&self, base: usize, frame: Frame) -> Event<'_> {
        let b = &self.buf;
        let sl = |r: (usize, usize)| &b[base + r.0..base + r.1];
        match frame {
            Frame::Msg {
                subject,
                sid,
                reply,
                payload,
            } => Event::Msg {
                subject: sl(subject),
                sid,
                reply: reply.map(sl),
                payload: sl(payload),
                recv_ns: self.last_read_ns,
            },
            Frame::Ping => Event::Ping,
            Frame::Pong => Event::Pong,
            Frame::Ok => Event::Ok,
            Frame::Err(s) => Event::Err(s),
            Frame::Info(r) => Event::Info(sl(r)),
        }
    }
}

/// Parses one frame at the start of `b`; `Ok(None)` if incomplete.
fn parse_frame(b: &[u8]) -> io::Result<Option<(Frame, usize)>> {
    let Some(nl) = memchr::memmem::find(b, b"\r\n") else {
        if b.len() > 64 * 1024 {
            return Err(bad_data("protocol line longer than 64 KiB"));
        }
        return Ok(None);
    };
    let line = &b[..nl];
    let after = nl + 2;
    let op_end = line
        .iter()
        .position(|c| *c == b' ' || *c == b'\t')
        .unwrap_or(line.len());
    let op = &line[..op_end];
    let rest = &line[op_end..];
    if op.eq_ignore_ascii_case(b"MSG") || op.eq_ignore_ascii_case(b"HMSG") {
        let is_h = op.len() == 4;
        let mut args: [(usize, usize); 5] = [(0, 0); 5];
        let mut n = 0;
        let mut i = op_end;
        while i < line.len() {
            while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
                i += 1;
            }
            if i == line.len() {
                break;
            }
            let s = i;
            while i < line.len() && line[i] != b' ' && line[i] != b'\t' {
                i += 1;
            }
            if n == args.len() {
                return Err(bad_data("too many MSG arguments"));
            }
            args[n] = (s, i);
            n += 1;
        }
        // MSG: subject sid [reply] size ; HMSG: subject sid [reply] hdr_size total_size
        let fixed = if is_h { 4 } else { 3 };
        if n != fixed && n != fixed + 1 {
            return Err(bad_data(format!(
                "bad {} line: {}",
                String::from_utf8_lossy(op),
                String::from_utf8_lossy(line)
            )));
        }
        let sid = parse_u64(&line[args[1].0..args[1].1])?;
        let reply = if n == fixed + 1 { Some(args[2]) } else { None };
        let size_arg = args[n - 1];
        let size = parse_u64(&line[size_arg.0..size_arg.1])? as usize;
        let total = after + size + 2;
        if b.len() < total {
            return Ok(None);
        }
        if &b[after + size..total] != b"\r\n" {
            return Err(bad_data("message payload not followed by CRLF"));
        }
        return Ok(Some((
            Frame::Msg {
                subject: args[0],
                sid,
                reply,
                payload: (after, after + size),
            },
            total,
        )));
    }
    let frame = if op.eq_ignore_ascii_case(b"PING") {
        Frame::Ping
    } else if op.eq_ignore_ascii_case(b"PONG") {
        Frame::Pong
    } else if op.eq_ignore_ascii_case(b"+OK") {
        Frame::Ok
    } else if op.eq_ignore_ascii_case(b"-ERR") {
        let text = String::from_utf8_lossy(rest)
            .trim()
            .trim_matches('\'')
            .to_string();
        Frame::Err(text)
    } else if op.eq_ignore_ascii_case(b"INFO") {
        Frame::Info((op_end, nl))
    } else {
        return Err(bad_data(format!(
            "unknown operation from server: {}",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        )));
    };
    Ok(Some((frame, after)))
}

fn parse_u64(s: &[u8]) -> io::Result<u64> {
    if s.is_empty() || s.len() > 19 {
        return Err(bad_data("bad number in protocol line"));
    }
    let mut v: u64 = 0;
    for c in s {
        if !c.is_ascii_digit() {
            return Err(bad_data("bad number in protocol line"));
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Ok(v)
}

/// Outgoing bytes for one connection. Never flushes on its own except through
/// [`OutBuf::flush_if_full`], so the caller decides the batch size.
pub struct OutBuf {
    stream: Wire,
    pub buf: Vec<u8>,
}

impl OutBuf {
    pub fn new(stream: Wire) -> OutBuf {
        OutBuf {
            stream,
            buf: Vec::with_capacity(FLUSH_AT * 2),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.stream.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn flush_if_full(&mut self) -> io::Result<bool> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Appends `PUB subject [reply] len\r\n` (the payload and CRLF follow separately).
    pub fn pub_header(&mut self, subject: &[u8], reply: Option<&[u8]>, len: usize) {
        self.buf.extend_from_slice(b"PUB ");
        self.buf.extend_from_slice(subject);
        self.buf.push(b' ');
        if let Some(r) = reply {
            self.buf.extend_from_slice(r);
            self.buf.push(b' ');
        }
        push_usize(&mut self.buf, len);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn publish(&mut self, subject: &[u8], reply: Option<&[u8]>, payload: &[u8]) {
        self.pub_header(subject, reply, payload.len());
        self.buf.extend_from_slice(payload);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>, sid: u64) {
        let line = match queue {
            Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
            None => format!("SUB {subject} {sid}\r\n"),
        };
        self.buf.extend_from_slice(line.as_bytes());
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

pub fn push_usize(buf: &mut Vec<u8>, mut v: usize) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Accepts `nats://host:port`, `host:port` or `host`, default port 4222.
pub fn parse_url(url: &str) -> String {
    let s = url.strip_prefix("nats://").unwrap_or(url);
    let s = s.trim_end_matches('/');
    if s.contains(':') {
        s.to_string()
    } else {
        format!("{s}:4222")
    }
}

/// An established connection: INFO read, CONNECT sent, first PONG received.
pub struct Conn {
    pub info: ServerInfo,
    pub reader: Reader,
    pub out: OutBuf,
}

impl Conn {
    pub fn connect(url: &str) -> io::Result<Conn> {
        Conn::connect_with_buffer(url, READ_BUF)
    }

    /// As [`Conn::connect`], with a read buffer of `read_buf` bytes to start with.
    pub fn connect_with_buffer(url: &str, read_buf: usize) -> io::Result<Conn> {
        let addr = parse_url(url)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| bad_data(format!("cannot resolve {url}")))?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        // Bounded handshake: a server that never answers must not hang the run.
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = Reader::with_capacity(Wire::Plain(stream.try_clone()?), read_buf);
        let info = match reader.next_event()? {
            Some(Event::Info(json)) => ServerInfo::parse(json)?,
            Some(_) => return Err(bad_data("server did not start with INFO")),
            None => return Err(bad_data("timed out waiting for INFO")),
        };
        // With --tls-ca: the handshake follows INFO (nats-server 2.9's order).
        let wire = Wire::establish(stream, &addr.ip().to_string())?;
        reader.stream = wire.try_clone()?;
        let mut out = OutBuf::new(wire);
        match crate::creds::enabled() {
            // With --creds: the same CONNECT, logged in as the file's user.
            Some(creds) => {
                let fields = creds.connect_fields(&info.nonce).map_err(bad_data)?;
                let plain = String::from_utf8_lossy(CONNECT_LINE);
                let line = plain.replacen("}\r\n", &format!("{fields}}}\r\n"), 1);
                out.raw(line.as_bytes());
            }
            None => out.raw(CONNECT_LINE),
        }
        out.flush()?;
        let mut conn = Conn { info, reader, out };
        conn.wait_pong(Duration::from_secs(5))?;
        Ok(conn)
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.reader.stream.tcp().set_read_timeout(d)
    }

    /// Non-blocking mode for the socket (shared by the reader and writer
    /// handles): reads then return `Ok(None)` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.reader.stream.tcp().set_nonblocking(on)
    }

    /// The socket's descriptor, for epoll.
    pub fn as_raw_fd(&self) -> RawFd {
        self.reader.stream.tcp().as_raw_fd()
    }

    /// Reads until a PONG, answering PINGs; messages arriving meanwhile are
    /// counted and dropped (only used before measurement starts). A -ERR fails.
    pub fn wait_pong(&mut self, timeout: Duration) -> io::Result<u64> {
        let deadline = clock::now_ns() + timeout.as_nanos() as u64;
        let mut dropped = 0;
        loop {
            match self.reader.next_event()? {
                Some(Event::Pong) => return Ok(dropped),
                Some(Event::Ping) => {
                    self.out.raw(b"PONG\r\n");
                    self.out.flush()?;
                }
                Some(Event::Err(e)) => return Err(bad_data(format!("server error: {e}"))),
                Some(Event::Msg { .. }) => dropped += 1,
                Some(_) => {}
                None => {}
            }
            if clock::now_ns() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for PONG",
                ));
            }
        }
    }

    /// PING and wait for the PONG: everything sent before is processed by the server.
    pub fn round_trip(&mut self, timeout: Duration) -> io::Result<()> {
        self.out.raw(b"PING\r\n");
        self.out.flush()?;
        self.wait_pong(timeout).map(|_| ())
    }

    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.out.stream.tcp().try_clone()
    }

    pub fn shutdown(&self) {
        let _ = self.out.stream.tcp().shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mut b: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((f, used)) = parse_frame(b).expect("parse") {
            out.push(match f {
                Frame::Msg {
                    subject,
                    sid,
                    reply,
                    payload,
                } => format!(
                    "MSG {} {} {:?} {}",
                    String::from_utf8_lossy(&b[subject.0..subject.1]),
                    sid,
                    reply.map(|r| String::from_utf8_lossy(&b[r.0..r.1]).to_string()),
                    String::from_utf8_lossy(&b[payload.0..payload.1])
                ),
                Frame::Ping => "PING".into(),
                Frame::Pong => "PONG".into(),
                Frame::Ok => "OK".into(),
                Frame::Err(e) => format!("ERR {e}"),
                Frame::Info(_) => "INFO".into(),
            });
            b = &b[used..];
        }
        out
    }

    #[test]
    fn parses_server_operations() {
        let input = b"INFO {\"a\":1}\r\nMSG foo 1 5\r\nhello\r\nMSG foo 2 bar 0\r\n\r\nHMSG h 3 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\nPONG\r\n+OK\r\n-ERR 'Slow Consumer'\r\nMSG partial 1 10\r\nabc";
        assert_eq!(
            frames(input),
            vec![
                "INFO",
                "MSG foo 1 None hello",
                "MSG foo 2 Some(\"bar\") ",
                "MSG h 3 None NATS/1.0\r\n\r\nhi",
                "PING",
                "PONG",
                "OK",
                "ERR Slow Consumer",
            ]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_frame(b"MSG foo x 5\r\nhello\r\n").is_err());
        assert!(parse_frame(b"WHAT\r\n").is_err());
        assert!(parse_frame(b"MSG foo 1 2\r\nabcd\r\n").is_err());
    }
}
