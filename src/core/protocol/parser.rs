//! Zero-copy, resumable parser of the client → server protocol, with the
//! acceptance rules of nats-server 2.9.10 (see `tests/reference/protocol.md` §2, §4–6, §13).
//!
//! The parser owns the framing of one connection's inbound byte stream: it
//! recognises one op at the start of the caller's unconsumed bytes and says
//! how many bytes it used. It never copies or allocates; ops borrow the
//! caller's buffer.
//!
//! # Resumption contract
//!
//! `next(buf)` returns `Ok(None)` when `buf` holds only the beginning of an
//! op. The caller must then append bytes and call `next` again with a buffer
//! that starts with the *same bytes* (it may have been moved or reallocated:
//! the parser keeps offsets, never pointers). Between those calls the parser
//! remembers what it already knows, so nothing is scanned twice:
//!
//! * control line not complete: how far `\n` has been searched for;
//! * PUB/HPUB line complete, payload not: the parsed fields as offsets, and
//!   the payload's position and size. Each later call is O(1) until the
//!   payload and its CRLF are all there; `bytes_needed` tells the caller how
//!   big the buffer must grow.
//!
//! After `Ok(Some((op, consumed)))` the caller drops `consumed` bytes from
//! the front and the next call starts a new op. After an `Err` the
//! connection must be closed; the parser is reset but should not be reused.
//!
//! # Invariants
//!
//! * The result depends only on the bytes, never on how they were split into
//!   calls: an error is reported as soon as the bytes seen so far cannot be
//!   the start of a valid op, and the same error is reported for any split.
//! * Memory held by an incomplete control line is bounded: the blank run
//!   before the argument and the argument itself are each at most
//!   `max_control_line` bytes. (nats-server bounds only the argument; an
//!   endless run of blanks after `PUB`, or endless junk after `PING`, is also
//!   cut off here with `MaxControlLineExceeded`, since we keep the line in
//!   the caller's buffer instead of discarding it byte by byte.)
//! * No input makes it panic.

use memchr::memchr;

use super::ops::{ClientOp, Publish};
use super::pub_line;

/// Why a connection must be closed. The broker sends the `-ERR` given by
/// `err_text` (if any) and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Unknown op, leading blank, empty line, server-only op (MSG, RS+, ...),
    /// missing blank after an op name, bad payload terminator.
    UnknownOperation,
    /// The argument of a control line is longer than `max_control_line`.
    MaxControlLineExceeded,
    /// PUB size / HPUB total size greater than `max_payload`.
    MaxPayloadExceeded,
    /// Wrong field count, invalid size, header size > total size, CONNECT or
    /// INFO without an argument. nats-server closes without any `-ERR`.
    Malformed,
    /// An HPUB control line from a connection whose CONNECT did not turn
    /// headers on (or before any CONNECT). nats-server closes without any
    /// `-ERR` as soon as the line ends, before looking at its fields or
    /// waiting for the payload.
    HeadersNotNegotiated,
}

impl ParseError {
    /// The quoted text of the `-ERR` line nats-server sends for this error,
    /// or `None` when it closes silently.
    pub fn err_text(self) -> Option<&'static str> {
        match self {
            ParseError::UnknownOperation => Some("Unknown Protocol Operation"),
            ParseError::MaxControlLineExceeded => Some("maximum control line exceeded"),
            ParseError::MaxPayloadExceeded => Some("Maximum Payload Violation"),
            ParseError::Malformed | ParseError::HeadersNotNegotiated => None,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self, self.err_text()) {
            (_, Some(text)) => f.write_str(text),
            (ParseError::HeadersNotNegotiated, None) => {
                f.write_str("message headers not supported")
            }
            (_, None) => f.write_str("malformed protocol arguments"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The op names a client may send. Everything else is `UnknownOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Connect,
    Info,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Ok,
    Err,
}

impl Op {
    /// The name in upper case. Every byte after the first is a letter, which
    /// `identify` relies on for its case folding.
    fn name(self) -> &'static [u8] {
        match self {
            Op::Connect => b"CONNECT",
            Op::Info => b"INFO",
            Op::Pub => b"PUB",
            Op::Hpub => b"HPUB",
            Op::Sub => b"SUB",
            Op::Unsub => b"UNSUB",
            Op::Ping => b"PING",
            Op::Pong => b"PONG",
            Op::Ok => b"+OK",
            Op::Err => b"-ERR",
        }
    }

    /// Ops whose name must be followed by a space or tab (`PUBfoo` is not a
    /// PUB). CONNECT and INFO accept a glued argument; PING, PONG and +OK
    /// ignore whatever follows.
    fn needs_blank(self) -> bool {
        matches!(self, Op::Pub | Op::Hpub | Op::Sub | Op::Unsub | Op::Err)
    }
}

/// A byte range of the buffer. Offsets, not slices, so that the state
/// survives the caller moving its buffer between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Span {
    pub(super) fn of(self, buf: &[u8]) -> &[u8] {
        // In bounds by construction; `get` keeps a caller that breaks the
        // resumption contract from turning into a panic.
        buf.get(self.start..self.end).unwrap_or(&[])
    }
}

/// A parsed PUB/HPUB control line whose payload has not fully arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PendingPub {
    pub(super) subject: Span,
    pub(super) reply: Option<Span>,
    pub(super) header_len: Option<usize>,
    pub(super) payload_start: usize,
    pub(super) size: usize,
}

impl PendingPub {
    /// Offset of the CRLF that must follow the payload.
    fn payload_end(&self) -> usize {
        self.payload_start + self.size
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing known about the op at the start of the buffer.
    Idle,
    /// Op name recognised, no `\n` in `buf[..scanned]`.
    Line { op: Op, scanned: usize },
    /// Control line parsed, waiting for the payload and its CRLF.
    Payload(PendingPub),
}

/// Parser state of one client connection.
#[derive(Debug, Clone)]
pub struct Parser {
    max_control_line: usize,
    max_payload: usize,
    /// Whether HPUB is accepted: the connection's CONNECT asked for headers
    /// and the server supports them. False until the broker says otherwise.
    headers: bool,
    state: State,
    /// Whole ops parsed since [`Parser::take_ops_parsed`] (sizes the
    /// connection's reads: `ReadBuffer::note_ops`).
    ops_parsed: u32,
}

/// Separators between fields. `\r` is a separator only in SUB/UNSUB
/// arguments (nats-server splits those on CR too; PUB fields only on blanks).
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_sub_separator(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

/// Sizes are 1 to 9 ASCII digits; anything else is invalid.
pub(super) fn parse_size(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut n = 0usize;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(d - b'0');
    }
    Some(n)
}

/// Splits `buf[range]` into at most `N` fields separated by runs of bytes
/// for which `sep` is true. Returns the number of fields, or `None` if there
/// are more than `N`.
fn split_fields<const N: usize>(
    buf: &[u8],
    start: usize,
    end: usize,
    sep: impl Fn(u8) -> bool,
    out: &mut [Span; N],
) -> Option<usize> {
    let mut count = 0;
    let mut i = start;
    while i < end {
        if sep(buf[i]) {
            i += 1;
            continue;
        }
        let field_start = i;
        while i < end && !sep(buf[i]) {
            i += 1;
        }
        if count == N {
            return None;
        }
        out[count] = Span {
            start: field_start,
            end: i,
        };
        count += 1;
    }
    Some(count)
}

/// Recognises the op name at the start of `buf`, like a byte-at-a-time
/// state machine: `Err` as soon as the bytes present cannot begin a valid
/// op, `Ok(None)` when more bytes are needed to decide (including the blank
/// that must follow some names).
fn identify(buf: &[u8]) -> Result<Option<Op>, ParseError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let op = match first {
        b'P' | b'p' => match buf.get(1) {
            None => return Ok(None),
            Some(b'U' | b'u') => Op::Pub,
            Some(b'I' | b'i') => Op::Ping,
            Some(b'O' | b'o') => Op::Pong,
            Some(_) => return Err(ParseError::UnknownOperation),
        },
        b'H' | b'h' => Op::Hpub,
        b'S' | b's' => Op::Sub,
        b'U' | b'u' => Op::Unsub,
        b'C' | b'c' => Op::Connect,
        b'I' | b'i' => Op::Info,
        b'+' => Op::Ok,
        b'-' => Op::Err,
        _ => return Err(ParseError::UnknownOperation),
    };
    let name = op.name();
    // The first byte was matched exactly above; the rest of the name is
    // letters, so setting bit 0x20 folds case without false matches.
    for (i, &expected) in name.iter().enumerate().skip(1) {
        match buf.get(i) {
            None => return Ok(None),
            Some(&b) if b | 0x20 == expected | 0x20 => {}
            Some(_) => return Err(ParseError::UnknownOperation),
        }
    }
    if op.needs_blank() {
        match buf.get(name.len()) {
            None => return Ok(None),
            Some(&b) if is_blank(b) => {}
            Some(_) => return Err(ParseError::UnknownOperation),
        }
    }
    Ok(Some(op))
}

impl Parser {
    /// `max_control_line`: longest accepted argument of a control line
    /// (nats default 4096). `max_payload`: largest accepted PUB size / HPUB
    /// total size (nats default 1 MiB). HPUB is refused until
    /// [`Parser::set_headers`] turns it on, as nats-server refuses it before
    /// a CONNECT with `"headers":true`.
    pub fn new(max_control_line: usize, max_payload: usize) -> Parser {
        Parser {
            max_control_line,
            max_payload,
            headers: false,
            state: State::Idle,
            ops_parsed: 0,
        }
    }

    /// Whole ops parsed since the last call.
    pub fn take_ops_parsed(&mut self) -> u32 {
        std::mem::take(&mut self.ops_parsed)
    }

    /// The server's `max_payload` as last loaded: a reload applies to
    /// connections already open too, as nats-server's reload sets every
    /// client's limit. Checked on the next control line.
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    /// Accepts HPUB (`true`) or closes on it with
    /// [`ParseError::HeadersNotNegotiated`]; the broker calls it after each
    /// CONNECT with what that CONNECT negotiated.
    pub fn set_headers(&mut self, headers: bool) {
        self.headers = headers;
    }

    /// Parses one op at the start of `buf` (the caller's unconsumed bytes).
    ///
    /// `Ok(Some((op, consumed)))`: the op and how many bytes it used.
    /// `Ok(None)`: need more bytes; append to the same buffer and call again
    /// with the same prefix (see the module docs).
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        let result = match self.state {
            // Nearly every op a publisher sends is a plain PUB line; it
            // gets one pass instead of name, newline, limits and fields in
            // turn (see `pub_line` for the cost it saves).
            State::Idle => match pub_line::scan(buf, self.max_control_line, self.max_payload) {
                Some(pending) => self.finish_payload(buf, pending),
                None => match identify(buf) {
                    Ok(Some(op)) => self.parse_line(buf, op, op.name().len()),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
            },
            State::Line { op, scanned } => self.parse_line(buf, op, scanned),
            State::Payload(pending) => self.finish_payload(buf, pending),
        };
        match result {
            Ok(Some(_)) => self.ops_parsed = self.ops_parsed.saturating_add(1),
            Ok(None) => {}
            Err(_) => self.state = State::Idle,
        }
        result
    }

    /// Whether the next byte given to [`Parser::next`] starts a new op
    /// (no op is partly read).
    pub fn at_op_start(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Total bytes the op at the start of the buffer needs (control line,
    /// payload and its CRLF), once its control line is known; `None` before
    /// that and for ops without payload.
    pub fn bytes_needed(&self) -> Option<usize> {
        match self.state {
            State::Payload(p) => Some(p.payload_end() + 2),
            _ => None,
        }
    }

    /// Looks for the end of the control line of `op` (whose name ends at
    /// `op.name().len()`), resuming the search for `\n` at `scan_from`.
    fn parse_line<'a>(
        &mut self,
        buf: &'a [u8],
        op: Op,
        scan_from: usize,
    ) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        let name_end = op.name().len();
        // A valid line has at most `max_control_line` blanks, then at most
        // `max_control_line` argument bytes, then `\r\n`. Searching further
        // is pointless: if the window is full and has no `\n`, `check_limits`
        // on it is guaranteed to fail. This bounds the work per call.
        let window_end = name_end
            .saturating_add(self.max_control_line.saturating_mul(2))
            .saturating_add(2)
            .min(buf.len());
        let scan_from = scan_from.clamp(name_end, window_end.max(name_end));
        let Some(pos) = buf
            .get(scan_from..window_end)
            .and_then(|rest| memchr(b'\n', rest))
        else {
            // Partial line: enforce the limits on what we have, so an
            // endless line is cut off. A `\r` at the very end may be the
            // start of the line's CRLF, so it is not counted.
            let mut end = window_end;
            if end > name_end && buf[end - 1] == b'\r' {
                end -= 1;
            }
            self.check_limits(buf, name_end, end)?;
            if window_end < buf.len() {
                // Unreachable by the window argument above; kept so that a
                // future change cannot silently drop the bound.
                return Err(ParseError::MaxControlLineExceeded);
            }
            self.state = State::Line {
                op,
                scanned: window_end,
            };
            return Ok(None);
        };
        let newline = scan_from + pos;
        let consumed = newline + 1;
        // A `\r` directly before `\n` is dropped; a bare `\n` also ends a line.
        let line_end = if newline > name_end && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let arg_start = self.check_limits(buf, name_end, line_end)?;
        self.state = State::Idle;

        let op = match op {
            Op::Ping => ClientOp::Ping,
            Op::Pong => ClientOp::Pong,
            Op::Ok => ClientOp::Ok,
            Op::Connect => ClientOp::Connect(non_empty_arg(buf, arg_start, line_end)?),
            Op::Info => ClientOp::Info(non_empty_arg(buf, arg_start, line_end)?),
            Op::Err => ClientOp::Err(trim_end(&buf[arg_start..line_end])),
            Op::Sub => parse_sub(buf, arg_start, line_end)?,
            Op::Unsub => parse_unsub(buf, arg_start, line_end)?,
            Op::Hpub if !self.headers => return Err(ParseError::HeadersNotNegotiated),
            Op::Pub | Op::Hpub => {
                let pending = self.parse_pub_args(buf, op, arg_start, line_end, consumed)?;
                return self.finish_payload(buf, pending);
            }
        };
        Ok(Some((op, consumed)))
    }

    /// Enforces `max_control_line` on `buf[name_end..end]` (the line after
    /// the op name, without its line terminator): the blank run and the
    /// argument after it are each limited. Returns where the argument starts.
    fn check_limits(&self, buf: &[u8], name_end: usize, end: usize) -> Result<usize, ParseError> {
        let line = buf.get(name_end..end).unwrap_or(&[]);
        let blanks = line.iter().take_while(|&&b| is_blank(b)).count();
        if blanks > self.max_control_line || line.len() - blanks > self.max_control_line {
            return Err(ParseError::MaxControlLineExceeded);
        }
        Ok(name_end + blanks)
    }

    /// Parses the fields of a PUB/HPUB line whose payload starts at
    /// `payload_start`.
    fn parse_pub_args(
        &self,
        buf: &[u8],
        op: Op,
        start: usize,
        end: usize,
        payload_start: usize,
    ) -> Result<PendingPub, ParseError> {
        let mut f = [Span { start: 0, end: 0 }; 4];
        let count = split_fields(buf, start, end, is_blank, &mut f).ok_or(ParseError::Malformed)?;
        let size_of = |span: Span| parse_size(span.of(buf)).ok_or(ParseError::Malformed);
        let (reply, header_len, size) = match (op, count) {
            (Op::Pub, 2) => (None, None, size_of(f[1])?),
            (Op::Pub, 3) => (Some(f[1]), None, size_of(f[2])?),
            (Op::Hpub, 3) => (None, Some(size_of(f[1])?), size_of(f[2])?),
            (Op::Hpub, 4) => (Some(f[1]), Some(size_of(f[2])?), size_of(f[3])?),
            _ => return Err(ParseError::Malformed),
        };
        if header_len.is_some_and(|h| h > size) {
            return Err(ParseError::Malformed);
        }
        if size > self.max_payload {
            return Err(ParseError::MaxPayloadExceeded);
        }
        Ok(PendingPub {
            subject: f[0],
            reply,
            header_len,
            payload_start,
            size,
        })
    }

    /// Returns the message if its payload and CRLF are in `buf`, otherwise
    /// remembers it and asks for more. A wrong byte where the CRLF must be is
    /// reported as soon as it is seen.
    fn finish_payload<'a>(
        &mut self,
        buf: &'a [u8],
        p: PendingPub,
    ) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        let end = p.payload_end();
        match buf.get(end..end + 2) {
            Some(b"\r\n") => {
                self.state = State::Idle;
                let publish = Publish {
                    subject: p.subject.of(buf),
                    reply: p.reply.map(|r| r.of(buf)),
                    header_len: p.header_len,
                    payload: &buf[p.payload_start..end],
                };
                Ok(Some((ClientOp::Pub(publish), end + 2)))
            }
            Some(_) => Err(ParseError::UnknownOperation),
            None => {
                if buf.get(end).is_some_and(|&b| b != b'\r') {
                    return Err(ParseError::UnknownOperation);
                }
                self.state = State::Payload(p);
                Ok(None)
            }
        }
    }
}

fn trim_end(arg: &[u8]) -> &[u8] {
    let len = arg.len() - arg.iter().rev().take_while(|&&b| is_blank(b)).count();
    &arg[..len]
}

/// CONNECT and INFO carry JSON; nothing at all cannot be JSON, and
/// nats-server closes such a connection without a reply.
fn non_empty_arg(buf: &[u8], start: usize, end: usize) -> Result<&[u8], ParseError> {
    let arg = trim_end(&buf[start..end]);
    if arg.is_empty() {
        return Err(ParseError::Malformed);
    }
    Ok(arg)
}

fn parse_sub(buf: &[u8], start: usize, end: usize) -> Result<ClientOp<'_>, ParseError> {
    let mut f = [Span { start: 0, end: 0 }; 3];
    match split_fields(buf, start, end, is_sub_separator, &mut f) {
        Some(2) => Ok(ClientOp::Sub {
            subject: f[0].of(buf),
            queue: None,
            sid: f[1].of(buf),
        }),
        Some(3) => Ok(ClientOp::Sub {
            subject: f[0].of(buf),
            queue: Some(f[1].of(buf)),
            sid: f[2].of(buf),
        }),
        _ => Err(ParseError::Malformed),
    }
}

fn parse_unsub(buf: &[u8], start: usize, end: usize) -> Result<ClientOp<'_>, ParseError> {
    let mut f = [Span { start: 0, end: 0 }; 2];
    match split_fields(buf, start, end, is_sub_separator, &mut f) {
        Some(1) => Ok(ClientOp::Unsub {
            sid: f[0].of(buf),
            max: None,
        }),
        Some(2) => Ok(ClientOp::Unsub {
            sid: f[0].of(buf),
            // An invalid max means "remove now" in nats-server 2.9.
            max: Some(parse_size(f[1].of(buf)).map_or(0, |n| n as u64)),
        }),
        _ => Err(ParseError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MCL: usize = 4096;
    const MP: usize = 1024 * 1024;

    /// A parser of a connection that negotiated headers: most tests are
    /// about framing, with HPUB allowed.
    fn headered(mcl: usize, mp: usize) -> Parser {
        let mut parser = Parser::new(mcl, mp);
        parser.set_headers(true);
        parser
    }

    /// An op rendered as text, so that results of different runs (whose
    /// slices borrow different buffers) can be compared and printed.
    fn describe(op: &ClientOp<'_>) -> String {
        let s = |b: &[u8]| b.escape_ascii().to_string();
        match op {
            ClientOp::Connect(a) => format!("CONNECT[{}]", s(a)),
            ClientOp::Info(a) => format!("INFO[{}]", s(a)),
            ClientOp::Pub(p) => format!(
                "PUB[{}][{:?}][{:?}][{}]",
                s(p.subject),
                p.reply.map(s),
                p.header_len,
                s(p.payload)
            ),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => format!("SUB[{}][{:?}][{}]", s(subject), queue.map(s), s(sid)),
            ClientOp::Unsub { sid, max } => format!("UNSUB[{}][{:?}]", s(sid), max),
            ClientOp::Ping => "PING".to_string(),
            ClientOp::Pong => "PONG".to_string(),
            ClientOp::Ok => "+OK".to_string(),
            ClientOp::Err(a) => format!("-ERR[{}]", s(a)),
        }
    }

    /// What a connection driver would see: the ops, the error that ended the
    /// stream (if any), and how many bytes were left unconsumed.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        ops: Vec<String>,
        error: Option<ParseError>,
        leftover: usize,
    }

    /// Feeds `chunks` one after the other, the way a connection driver does:
    /// append to a buffer, parse until `Ok(None)`, drop consumed bytes.
    fn run_chunks(chunks: &[&[u8]], mcl: usize, mp: usize) -> Outcome {
        let mut parser = headered(mcl, mp);
        let mut buf: Vec<u8> = Vec::new();
        let mut ops = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match parser.next(&buf) {
                    Ok(Some((op, used))) => {
                        assert!(used > 0 && used <= buf.len());
                        ops.push(describe(&op));
                        buf.drain(..used);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The connection is closed: what is left is irrelevant.
                        return Outcome {
                            ops,
                            error: Some(e),
                            leftover: 0,
                        };
                    }
                }
            }
        }
        Outcome {
            ops,
            error: None,
            leftover: buf.len(),
        }
    }

    fn run(input: &[u8]) -> Outcome {
        run_chunks(&[input], MCL, MP)
    }

    /// Parses exactly one complete op from `input` and checks it used all bytes.
    fn one(input: &[u8]) -> String {
        let mut p = headered(MCL, MP);
        match p.next(input) {
            Ok(Some((op, used))) => {
                assert_eq!(
                    used,
                    input.len(),
                    "consumed for {:?}",
                    input.escape_ascii().to_string()
                );
                describe(&op)
            }
            other => panic!(
                "{:?} for {}",
                other.map(|o| o.map(|(op, n)| (describe(&op), n))),
                input.escape_ascii()
            ),
        }
    }

    fn err(input: &[u8]) -> ParseError {
        let out = run(input);
        match out.error {
            Some(e) => e,
            None => panic!("no error for {}: {:?}", input.escape_ascii(), out),
        }
    }

    /// Every split into two reads, plus byte by byte, must match the
    /// unsplit parse.
    fn assert_split_invariant(input: &[u8], mcl: usize, mp: usize) -> Outcome {
        let whole = run_chunks(&[input], mcl, mp);
        for k in 0..=input.len() {
            let split = run_chunks(&[&input[..k], &input[k..]], mcl, mp);
            assert_eq!(split, whole, "split at {k} of {}", input.escape_ascii());
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run_chunks(&bytes, mcl, mp), whole, "byte by byte");
        whole
    }

    #[test]
    fn connect_and_info() {
        assert_eq!(
            one(b"CONNECT {\"verbose\":false}\r\n"),
            "CONNECT[{\\\"verbose\\\":false}]"
        );
        assert_eq!(one(b"connect\t {}  \t\r\n"), "CONNECT[{}]");
        assert_eq!(one(b"CONNECT{}\r\n"), "CONNECT[{}]");
        assert_eq!(one(b"CONNECT {}\n"), "CONNECT[{}]");
        assert_eq!(one(b"INFO {\"a\":1}\r\n"), "INFO[{\\\"a\\\":1}]");
        assert_eq!(one(b"info{}\r\n"), "INFO[{}]");
        assert_eq!(err(b"CONNECT\r\n"), ParseError::Malformed);
        assert_eq!(err(b"CONNECT  \t \r\n"), ParseError::Malformed);
        assert_eq!(err(b"INFO\r\n"), ParseError::Malformed);
    }

    /// Whole ops are counted once each, however the bytes arrive; a
    /// partial op is not counted until it completes.
    #[test]
    fn whole_ops_are_counted() {
        let mut p = headered(MCL, MP);
        let input = b"PUB foo 2\r\nhi\r\nPING\r\nSUB a 1\r\nPUB b 3\r\nab";
        let mut at = 0;
        while let Ok(Some((_, used))) = p.next(&input[at..]) {
            at += used;
        }
        assert_eq!(p.take_ops_parsed(), 3);
        assert_eq!(p.take_ops_parsed(), 0, "taking resets the count");
        // The caller gives the unparsed op again, now whole.
        assert!(matches!(p.next(b"PUB b 3\r\nabc\r\n"), Ok(Some(_))));
        assert_eq!(p.take_ops_parsed(), 1);
    }

    #[test]
    fn pub_variants() {
        assert_eq!(one(b"PUB foo 2\r\nhi\r\n"), "PUB[foo][None][None][hi]");
        assert_eq!(
            one(b"pub foo bar.baz 2\r\nhi\r\n"),
            "PUB[foo][Some(\"bar.baz\")][None][hi]"
        );
        assert_eq!(
            one(b"PuB \t foo\t\t  2 \r\nhi\r\n"),
            "PUB[foo][None][None][hi]"
        );
        assert_eq!(one(b"PUB foo 0\r\n\r\n"), "PUB[foo][None][None][]");
        assert_eq!(one(b"PUB foo 2\nhi\r\n"), "PUB[foo][None][None][hi]");
        // Payload bytes are opaque, CRLFs and op names included.
        assert_eq!(
            one(b"PUB foo 10\r\nPING\r\n\r\nab\r\n"),
            "PUB[foo][None][None][PING\\r\\n\\r\\nab]"
        );
        assert_eq!(
            one(b"PUB foo 000000002\r\nhi\r\n"),
            "PUB[foo][None][None][hi]"
        );
    }

    #[test]
    fn hpub_variants() {
        let msg = b"HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n";
        let mut p = headered(MCL, MP);
        let (op, used) = p.next(msg).unwrap().unwrap();
        assert_eq!(used, msg.len());
        let ClientOp::Pub(publish) = op else {
            panic!("not a pub")
        };
        assert_eq!(publish.subject, b"FOO");
        assert_eq!(publish.reply, None);
        assert_eq!(publish.header_len, Some(22));
        assert_eq!(
            publish.payload,
            &b"NATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!"[..]
        );
        assert_eq!(
            one(b"hpub foo _INBOX.1 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
            "PUB[foo][Some(\"_INBOX.1\")][Some(12)][NATS/1.0\\r\\n\\r\\n]"
        );
        assert_eq!(one(b"HPUB foo 0 0\r\n\r\n"), "PUB[foo][None][Some(0)][]");
        assert_eq!(err(b"HPUB foo 5 3\r\n"), ParseError::Malformed);
        assert_eq!(err(b"HPUB foo 3\r\n"), ParseError::Malformed);
        assert_eq!(err(b"HPUB foo a b c 3\r\n"), ParseError::Malformed);
        assert_eq!(err(b"HPUB foo x 3\r\n"), ParseError::Malformed);
        assert_eq!(err(b"HPUB foo 1 x\r\n"), ParseError::Malformed);
        assert_eq!(
            err(b"HPUB foo 1 1048577\r\n"),
            ParseError::MaxPayloadExceeded
        );
        // nats-server checks header > total before the payload limit.
        assert_eq!(err(b"HPUB foo 2000000 1048577\r\n"), ParseError::Malformed);
        assert_eq!(err(b"HPUBfoo 1 1\r\n"), ParseError::UnknownOperation);
    }

    /// Without negotiated headers, nats-server gives up on HPUB when its line
    /// ends: before its fields, the payload limit or the payload itself are
    /// looked at. Only the control-line limit comes first.
    #[test]
    fn hpub_without_headers() {
        let refused = |input: &[u8]| {
            let mut p = Parser::new(MCL, MP);
            p.next(input).err()
        };
        let not_negotiated = Some(ParseError::HeadersNotNegotiated);
        assert_eq!(refused(b"HPUB foo 12 14\r\n"), not_negotiated);
        assert_eq!(refused(b"hpub foo 12 14\n"), not_negotiated);
        assert_eq!(refused(b"HPUB foo\r\n"), not_negotiated);
        assert_eq!(refused(b"HPUB foo 20 14\r\n"), not_negotiated);
        assert_eq!(refused(b"HPUB foo 12 2000000\r\n"), not_negotiated);
        let mut long = b"HPUB ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MCL + 1));
        long.extend_from_slice(b" 12 14\r\n");
        assert_eq!(refused(&long), Some(ParseError::MaxControlLineExceeded));
        // Not before the line ends.
        assert_eq!(
            Parser::new(MCL, MP).next(b"HPUB foo 12 14").ok(),
            Some(None)
        );
        // PUB is not affected, and turning headers on lets HPUB through.
        assert!(matches!(
            Parser::new(MCL, MP).next(b"PUB foo 2\r\nhi\r\n"),
            Ok(Some(_))
        ));
        let mut p = Parser::new(MCL, MP);
        p.set_headers(true);
        assert!(matches!(
            p.next(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            Ok(Some(_))
        ));
    }

    #[test]
    fn sub_unsub() {
        assert_eq!(one(b"SUB foo 1\r\n"), "SUB[foo][None][1]");
        assert_eq!(
            one(b"sub foo.* grp abc-XYZ_1\n"),
            "SUB[foo.*][Some(\"grp\")][abc-XYZ_1]"
        );
        assert_eq!(one(b"SUB\tfoo \t q \t 9  \r\n"), "SUB[foo][Some(\"q\")][9]");
        assert_eq!(one(b"UNSUB 1\r\n"), "UNSUB[1][None]");
        assert_eq!(one(b"unsub 1 2\r\n"), "UNSUB[1][Some(2)]");
        assert_eq!(one(b"UNSUB 1 0\r\n"), "UNSUB[1][Some(0)]");
        assert_eq!(one(b"UNSUB 1 x\r\n"), "UNSUB[1][Some(0)]");
        assert_eq!(one(b"UNSUB 1 1234567890\r\n"), "UNSUB[1][Some(0)]");
        assert_eq!(err(b"SUB foo\r\n"), ParseError::Malformed);
        assert_eq!(err(b"SUB a b c d\r\n"), ParseError::Malformed);
        assert_eq!(err(b"SUB \r\n"), ParseError::Malformed);
        assert_eq!(err(b"UNSUB 1 2 3\r\n"), ParseError::Malformed);
        assert_eq!(err(b"UNSUB \r\n"), ParseError::Malformed);
        assert_eq!(err(b"UNSUB\r\n"), ParseError::UnknownOperation);
        assert_eq!(err(b"SUBfoo 1\r\n"), ParseError::UnknownOperation);
    }

    #[test]
    fn ping_pong_ok_err() {
        assert_eq!(one(b"PING\r\n"), "PING");
        assert_eq!(one(b"ping\n"), "PING");
        assert_eq!(one(b"PING foo bar\r\n"), "PING");
        assert_eq!(one(b"PINGPONG\r\n"), "PING");
        assert_eq!(one(b"PONG\r\n"), "PONG");
        assert_eq!(one(b"pOnG x\n"), "PONG");
        assert_eq!(one(b"+OK\r\n"), "+OK");
        assert_eq!(one(b"+ok\r\n"), "+OK");
        assert_eq!(
            one(b"-ERR 'Stale Connection'\r\n"),
            "-ERR[\\'Stale Connection\\']"
        );
        assert_eq!(one(b"-err\t'x'  \r\n"), "-ERR[\\'x\\']");
        assert_eq!(err(b"-ERR\r\n"), ParseError::UnknownOperation);
    }

    #[test]
    fn unknown_operations() {
        for input in [
            &b"FOO bar\r\n"[..],
            b" PING\r\n",
            b"\tPING\r\n",
            b"\r\n",
            b"\n",
            b"MSG foo 1 2\r\nhi\r\n",
            b"HMSG foo 1 2 2\r\nhi\r\n",
            b"RS+ foo 1\r\n",
            b"RS- foo\r\n",
            b"RMSG $G foo 2\r\nhi\r\n",
            b"LS+ foo\r\n",
            b"LMSG foo\r\n",
            b"A+ foo\r\n",
            b"PUBfoo 1\r\n",
            b"PUB\r\n",
            b"PUB\n",
            b"PINX\r\n",
            b"+OX\r\n",
            b"CONNEXT {}\r\n",
            b"INF {}\r\n",
            b"PUB foo 2\r\nhello\r\n",
            b"PUB foo 2\r\nh\r\n",
            b"PUB foo 2\r\nhi\n",
            b"PUB foo 2\r\nhi\rX",
            b"PUB foo 2\r\nhiXY",
            b"PUB foo 0\r\nX",
        ] {
            assert_eq!(
                err(input),
                ParseError::UnknownOperation,
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn unknown_operation_reported_before_newline() {
        for input in [
            &b"PUBX"[..],
            b"CONNX",
            b"M",
            b"HM",
            b"UNSUB\r",
            b"x",
            b" ",
            b"\r",
        ] {
            let mut p = headered(MCL, MP);
            assert_eq!(
                p.next(input).map(|_| ()),
                Err(ParseError::UnknownOperation),
                "{}",
                input.escape_ascii()
            );
        }
        // ...but prefixes of valid ops wait for more.
        for input in [
            &b"P"[..],
            b"PU",
            b"PUB",
            b"CONNEC",
            b"CONNECT",
            b"+",
            b"-ER",
            b"-ERR",
            b"h",
            b"UNSUB",
        ] {
            let mut p = headered(MCL, MP);
            assert_eq!(
                p.next(input).map(|o| o.is_none()),
                Ok(true),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn malformed_pub() {
        for input in [
            &b"PUB foo\r\n"[..],
            b"PUB \r\n",
            b"PUB foo bar baz 1\r\n",
            b"PUB foo -1\r\n",
            b"PUB foo +1\r\n",
            b"PUB foo 1a\r\n",
            b"PUB foo 1234567890\r\n",
        ] {
            assert_eq!(
                err(input),
                ParseError::Malformed,
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn max_payload() {
        assert_eq!(err(b"PUB foo 1048577\r\n"), ParseError::MaxPayloadExceeded);
        // Reported on the control line alone, before any payload arrives.
        let mut p = headered(MCL, 10);
        assert_eq!(
            p.next(b"PUB foo 11\r\n").map(|_| ()),
            Err(ParseError::MaxPayloadExceeded)
        );
        let mut p = headered(MCL, 10);
        assert_eq!(p.next(b"PUB foo 10\r\n").map(|o| o.is_none()), Ok(true));
        assert_eq!(p.bytes_needed(), Some(12 + 10 + 2));
        // Exactly max_payload is accepted.
        let mut big = b"PUB big 1048576\r\n".to_vec();
        big.resize(big.len() + MP, b'x');
        big.extend_from_slice(b"\r\n");
        let out = run(&big);
        assert_eq!(out.error, None);
        assert_eq!(out.ops.len(), 1);
    }

    #[test]
    fn max_control_line() {
        // Argument of exactly max_control_line bytes is accepted.
        let mut line = b"PUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', MCL - 2));
        line.extend_from_slice(b" 1\r\nx\r\n");
        assert_eq!(run(&line).error, None);
        // One more byte is not.
        let mut line = b"PUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', MCL - 1));
        line.extend_from_slice(b" 1\r\nx\r\n");
        assert_eq!(err(&line), ParseError::MaxControlLineExceeded);
        // Trailing blanks count (they are part of the argument).
        let mut line = b"SUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', MCL - 2));
        line.extend_from_slice(b" 1 \r\n");
        assert_eq!(err(&line), ParseError::MaxControlLineExceeded);
        // The separating blanks do not count.
        let mut line = b"SUB    ".to_vec();
        line.extend(std::iter::repeat_n(b'a', MCL - 2));
        line.extend_from_slice(b" 1\r\n");
        assert_eq!(run(&line).error, None);
        // A partial line is cut off once it passes the limit.
        let mut p = headered(MCL, MP);
        let mut partial = b"SUB ".to_vec();
        partial.extend(std::iter::repeat_n(b'a', MCL));
        assert_eq!(p.next(&partial).map(|o| o.is_none()), Ok(true));
        partial.push(b'\r'); // may be the CRLF: not counted yet
        assert_eq!(p.next(&partial).map(|o| o.is_none()), Ok(true));
        partial.push(b'a');
        assert_eq!(
            p.next(&partial).map(|_| ()),
            Err(ParseError::MaxControlLineExceeded)
        );
        // CONNECT is limited too, glued or not.
        let mut line = b"CONNECT{".to_vec();
        line.extend(std::iter::repeat_n(b' ', MCL));
        line.extend_from_slice(b"}\r\n");
        assert_eq!(err(&line), ParseError::MaxControlLineExceeded);
        // Bounded memory (documented deviation): endless blanks or junk.
        let mut line = b"PUB".to_vec();
        line.extend(std::iter::repeat_n(b' ', MCL + 1));
        assert_eq!(err(&line), ParseError::MaxControlLineExceeded);
        let mut line = b"PING".to_vec();
        line.extend(std::iter::repeat_n(b'j', MCL + 1));
        assert_eq!(err(&line), ParseError::MaxControlLineExceeded);
        // A huge buffer without any newline is rejected without scanning it all.
        let mut line = b"SUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 10 * MCL));
        line.extend_from_slice(b" 1\r\n");
        assert_eq!(err(&line), ParseError::MaxControlLineExceeded);
    }

    #[test]
    fn resumes_a_big_payload_without_rescanning() {
        let mut p = headered(MCL, MP);
        let mut buf = b"PUB foo reply 100000\r\n".to_vec();
        let line_len = buf.len();
        assert_eq!(p.next(&buf).map(|o| o.is_none()), Ok(true));
        assert_eq!(p.bytes_needed(), Some(line_len + 100_000 + 2));
        // Arriving in pieces, and with the buffer moved each time.
        for piece in 0..10 {
            buf.extend(std::iter::repeat_n(b'0' + piece, 10_000));
            let moved = buf.clone();
            assert_eq!(p.next(&moved).map(|o| o.is_none()), Ok(true));
            assert_eq!(p.bytes_needed(), Some(line_len + 100_002));
        }
        buf.push(b'\r');
        assert_eq!(p.next(&buf).map(|o| o.is_none()), Ok(true));
        buf.extend_from_slice(b"\n");
        let (op, used) = p.next(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        let ClientOp::Pub(publish) = op else {
            panic!("not a pub")
        };
        assert_eq!(publish.subject, b"foo");
        assert_eq!(publish.reply, Some(&b"reply"[..]));
        assert_eq!(publish.payload.len(), 100_000);
        assert_eq!(publish.payload[99_999], b'9');
        assert_eq!(p.bytes_needed(), None);
    }

    /// A long stream of every valid op form, back to back.
    fn mixed_stream() -> Vec<u8> {
        let parts: &[&[u8]] = &[
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n",
            b"PING\r\n",
            b"CONNECT{}\n",
            b"INFO {}\r\n",
            b"sub foo 1\r\n",
            b"SUB\tbar.*  q \t 22\r\n",
            b"PUB foo 2\r\nhi\r\n",
            b"PUB foo reply.to 5\r\nhello\r\n",
            b"pub \t foo\t\t  2 \r\nhi\r\n",
            b"PUB notify 0\r\n\r\n",
            b"PUB crlf 6\r\n\r\n\r\n\r\n\r\n",
            b"PUB bare 3\nabc\r\n",
            b"HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n",
            b"hpub foo _INBOX.a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
            b"UNSUB 1\r\n",
            b"unsub 22 5\r\n",
            b"UNSUB 3 x\n",
            b"PING foo bar\r\n",
            b"ping\n",
            b"PONG\r\n",
            b"+OK\r\n",
            b"PUB foo 4\r\nPUB \r\n",
            b"PUB big 40\r\n0123456789012345678901234567890123456789\r\n",
            b"-ERR 'whatever'\r\n",
        ];
        parts.concat()
    }

    #[test]
    fn mixed_stream_same_result_for_every_split() {
        let stream = mixed_stream();
        let whole = assert_split_invariant(&stream, MCL, MP);
        assert_eq!(whole.error, None);
        assert_eq!(whole.leftover, 0);
        assert_eq!(whole.ops.len(), 24);
        assert_eq!(
            whole.ops[0],
            "CONNECT[{\\\"verbose\\\":false,\\\"pedantic\\\":false,\\\"headers\\\":true}]"
        );
        assert_eq!(
            whole.ops[12],
            "PUB[FOO][None][Some(22)][NATS/1.0\\r\\nBar: Baz\\r\\n\\r\\nHello NATS!]"
        );
        assert_eq!(whole.ops[23], "-ERR[\\'whatever\\']");
        // Three-way splits at pseudo-random points (xorshift; no rand crate).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = (x % (stream.len() as u64 + 1)) as usize;
            let b = ((x >> 32) % (stream.len() as u64 + 1)) as usize;
            let (a, b) = (a.min(b), a.max(b));
            let out = run_chunks(&[&stream[..a], &stream[a..b], &stream[b..]], MCL, MP);
            assert_eq!(out, whole, "splits at {a}, {b}");
        }
    }

    #[test]
    fn errors_same_for_every_split() {
        // Small limits so the limit cases stay short.
        let (mcl, mp) = (16, 8);
        let ok = b"PING\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\n";
        let cases: &[(&[u8], ParseError)] = &[
            (b"FOO bar\r\n", ParseError::UnknownOperation),
            (b" PING\r\n", ParseError::UnknownOperation),
            (b"\r\n", ParseError::UnknownOperation),
            (b"MSG foo 1 2\r\nhi\r\n", ParseError::UnknownOperation),
            (b"PUBfoo 1\r\n", ParseError::UnknownOperation),
            (b"UNSUB\r\n", ParseError::UnknownOperation),
            (b"PUB foo 2\r\nhello\r\n", ParseError::UnknownOperation),
            (b"PUB foo 2\r\nhi\n", ParseError::UnknownOperation),
            (b"PUB foo 0\r\n\n", ParseError::UnknownOperation),
            (b"PUB foo\r\n", ParseError::Malformed),
            (b"PUB foo 1x\r\nx\r\n", ParseError::Malformed),
            (b"HPUB foo 3 2\r\nxx\r\n", ParseError::Malformed),
            (b"SUB foo\r\n", ParseError::Malformed),
            (b"UNSUB 1 2 3\r\n", ParseError::Malformed),
            (b"CONNECT \r\n", ParseError::Malformed),
            (
                b"PUB foo 9\r\n123456789\r\n",
                ParseError::MaxPayloadExceeded,
            ),
            (
                b"HPUB foo 1 9\r\n123456789\r\n",
                ParseError::MaxPayloadExceeded,
            ),
            (
                b"SUB 0123456789abcdef 1\r\n",
                ParseError::MaxControlLineExceeded,
            ),
            (b"SUB 0123456789abcdef", ParseError::MaxControlLineExceeded),
            (
                b"SUB 0123456789abc 1\rX\r\n",
                ParseError::MaxControlLineExceeded,
            ),
            (
                b"PUB                  foo 1\r\nx\r\n",
                ParseError::MaxControlLineExceeded,
            ),
        ];
        for (bad, expected) in cases {
            let input = [&ok[..], bad, b"PING\r\n"].concat();
            let out = assert_split_invariant(&input, mcl, mp);
            assert_eq!(out.error, Some(*expected), "{}", input.escape_ascii());
            assert_eq!(out.ops.len(), 3, "{}", input.escape_ascii());
        }
        // Just under the limits: accepted at every split.
        for good in [
            &b"SUB 0123456789abc 1\r\n"[..],
            b"SUB 0123456789ab 1\r\n",
            b"PUB f 8\r\n12345678\r\n",
            b"PUB                f 1\r\nx\r\n",
        ] {
            let input = [&ok[..], good].concat();
            let out = assert_split_invariant(&input, mcl, mp);
            assert_eq!(
                (out.error, out.ops.len()),
                (None, 4),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn never_panics_on_random_bytes() {
        // Random streams built from protocol-ish fragments and noise.
        let fragments: &[&[u8]] = &[
            b"PUB ", b"HPUB ", b"SUB ", b"UNSUB ", b"PING", b"CONNECT", b"-ERR ", b"+OK", b" ",
            b"\t", b"\r", b"\n", b"\r\n", b"foo", b"1", b"2", b"0", b"99", b"x", b"\x00", b"\xff",
        ];
        let mut x: u64 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..(next() % 12) {
                input.extend_from_slice(fragments[(next() % fragments.len() as u64) as usize]);
            }
            let whole = run_chunks(&[&input], 16, 8);
            let k = (next() % (input.len() as u64 + 1)) as usize;
            assert_eq!(
                run_chunks(&[&input[..k], &input[k..]], 16, 8),
                whole,
                "{}",
                input.escape_ascii()
            );
        }
    }

    /// The general path alone, without `pub_line`'s fast path.
    fn general_next<'a>(
        parser: &mut Parser,
        buf: &'a [u8],
    ) -> Result<Option<(ClientOp<'a>, usize)>, ParseError> {
        match identify(buf) {
            Ok(Some(op)) => parser.parse_line(buf, op, op.name().len()),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[test]
    fn plain_pub_fast_path_parses_as_the_general_path() {
        let fragments: &[&[u8]] = &[
            b" ",
            b"  ",
            b"\t",
            b"\r",
            b"\n",
            b"\r\n",
            b"a",
            b"foo.bar",
            b"bench.subject.long",
            b"_INBOX.abcdefgh",
            b"0",
            b"1",
            b"8",
            b"16",
            b"123456789",
            b"1234567890",
            b"x",
            b"\x00",
            b"\xff",
            b"\x7f",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut fast = 0;
        for _ in 0..20_000 {
            let mut input = b"PUB ".to_vec();
            if next() % 2 == 0 {
                // Free-form arguments.
                for _ in 0..(next() % 8) {
                    input.extend_from_slice(fragments[(next() % fragments.len() as u64) as usize]);
                }
            } else {
                // A well-formed line (subject, maybe a reply, the size),
                // then maybe one byte of it changed.
                let token = |n: u64| &b"abcdefghijklmnopqrstuvwxyz.>*_"[..(n % 30) as usize + 1];
                input.extend_from_slice(token(next()));
                if next() % 2 == 0 {
                    input.push(b' ');
                    input.extend_from_slice(token(next()));
                }
                input.extend_from_slice(format!(" {}\r\n", next() % 20).as_bytes());
                if next() % 3 == 0 {
                    let at = 4 + (next() % (input.len() as u64 - 4)) as usize;
                    input[at] = b" \t\r\n\x00\xffa9"[(next() % 8) as usize];
                }
            }
            input.extend_from_slice(b"0123456789abcdef\r\n");
            for (mcl, mp) in [(MCL, MP), (16, 8)] {
                let general = general_next(&mut headered(mcl, mp), &input)
                    .map(|r| r.map(|(op, used)| (describe(&op), used)));
                let ours = headered(mcl, mp)
                    .next(&input)
                    .map(|r| r.map(|(op, used)| (describe(&op), used)));
                assert_eq!(ours, general, "{}", input.escape_ascii());
                if super::pub_line::scan(&input, mcl, mp).is_some() {
                    fast += 1;
                }
            }
        }
        // The generator must reach the fast path often enough to mean
        // something.
        assert!(fast > 1000, "fast path taken {fast} times");
    }

    /// Micro-benchmark: `cargo test --release --lib -- --ignored --nocapture bench_`.
    #[test]
    #[ignore]
    fn bench_parse_small_pub() {
        // 16-byte PUB ops back to back, as a publisher of tiny messages sends them.
        let msg = b"PUB foo.b 1\r\nx\r\n";
        assert_eq!(msg.len(), 16);
        let stream: Vec<u8> = msg.iter().copied().cycle().take(16 * 4096).collect();
        let mut parser = headered(MCL, MP);
        let rounds = 500;
        let mut best = f64::MAX;
        for _trial in 0..5 {
            let start = std::time::Instant::now();
            let mut total = 0usize;
            for _ in 0..rounds {
                let mut off = 0;
                while let Ok(Some((op, used))) = parser.next(std::hint::black_box(&stream[off..])) {
                    if let ClientOp::Pub(p) = op {
                        total += p.payload.len();
                    }
                    off += used;
                }
            }
            let ops = rounds * 4096;
            assert_eq!(total, ops);
            best = best.min(start.elapsed().as_nanos() as f64 / ops as f64);
        }
        println!(
            "parse 16-byte PUB: {best:.1} ns/op (best of 5), {:.1} M ops/s",
            1e3 / best
        );
    }
}
