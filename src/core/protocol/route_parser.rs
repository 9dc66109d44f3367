//! Parser of the server → server route protocol as nats-server 2.9 speaks
//! it (`proto: 2`, account-aware): `INFO`, `CONNECT`, `PING`, `PONG`,
//! `+OK`, `-ERR`, interest (`RS+`/`RS-`, and the leafnode-origin forms
//! `LS+`/`LS-`) and messages (`RMSG`, `HMSG`, `LMSG`).
//!
//! Like the client parser it borrows the caller's buffer and never copies
//! or allocates. It is simpler about resumption: a control line that is not
//! complete is scanned again on the next call (route control lines are
//! short), and once a message line is parsed [`RouteParser::bytes_needed`]
//! tells the caller how large the buffer must grow for the payload.
//!
//! Route input is trusted more than client input (no `max_payload` check,
//! as nats-server), but never unconditionally: every malformed line is an
//! error that closes that route only, and no input makes this panic.

use memchr::memchr;

/// Longest route control line accepted. nats-server has no limit on routes;
/// this only bounds the memory a broken peer can make us hold.
pub const MAX_ROUTE_CONTROL_LINE: usize = 1024 * 1024;

/// Why a route connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteParseError {
    /// Not a route op (nats-server answers `-ERR 'Unknown Protocol Operation'`).
    UnknownOperation,
    /// Wrong field count, bad size, bad queue marker.
    Malformed,
    /// A control line longer than [`MAX_ROUTE_CONTROL_LINE`].
    LineTooLong,
}

/// The queue group names of a routed message: blank-separated names as
/// they stood on the `RMSG` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteQueues<'a>(&'a [u8]);

impl<'a> RouteQueues<'a> {
    pub fn new(names: &'a [u8]) -> RouteQueues<'a> {
        RouteQueues(names)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&b| is_blank(b))
    }
}

impl<'a> Iterator for RouteQueues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|&b| !is_blank(b))?;
        let rest = &self.0[start..];
        let end = rest.iter().position(|&b| is_blank(b)).unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

/// A message that arrived over a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutedMsg<'a> {
    pub account: &'a [u8],
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// The queue groups the sending server picked this server for.
    pub queues: RouteQueues<'a>,
    /// `Some(h)`: the first `h` bytes of `payload` are the header block.
    pub header_len: Option<usize>,
    pub payload: &'a [u8],
}

/// One operation a peer server sends on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOp<'a> {
    Info(&'a [u8]),
    Connect(&'a [u8]),
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    /// `RS+ <account> <subject> [<queue> <weight>]` (also `LS+`, whose
    /// origin cluster is dropped: this server has no leafnodes).
    Sub {
        account: &'a [u8],
        subject: &'a [u8],
        queue: Option<(&'a [u8], u32)>,
    },
    /// `RS- <account> <subject> [<queue>]` (also `LS-`).
    Unsub {
        account: &'a [u8],
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// `RMSG`, `HMSG` or `LMSG`.
    Msg(RoutedMsg<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Info,
    Connect,
    Ping,
    Pong,
    Ok,
    Err,
    RsPlus,
    RsMinus,
    LsPlus,
    LsMinus,
    Rmsg,
    Hmsg,
    Lmsg,
}

const VERBS: [(&[u8], Verb); 13] = [
    (b"INFO", Verb::Info),
    (b"CONNECT", Verb::Connect),
    (b"PING", Verb::Ping),
    (b"PONG", Verb::Pong),
    (b"+OK", Verb::Ok),
    (b"-ERR", Verb::Err),
    (b"RS+", Verb::RsPlus),
    (b"RS-", Verb::RsMinus),
    (b"LS+", Verb::LsPlus),
    (b"LS-", Verb::LsMinus),
    (b"RMSG", Verb::Rmsg),
    (b"HMSG", Verb::Hmsg),
    (b"LMSG", Verb::Lmsg),
];

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Sizes are 1 to 9 ASCII digits.
fn parse_size(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
    )
}

/// The blank-separated fields of `line`.
fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    line.split(|&b| is_blank(b)).filter(|f| !f.is_empty())
}

/// The bytes of `line` from the start of field `first` to the end of field
/// `last` (inclusive), both counted as [`fields`] counts them.
fn field_range(line: &[u8], first: usize, last: usize) -> &[u8] {
    let mut start = None;
    let mut end = line.len();
    for (i, f) in fields(line).enumerate() {
        // Fields are subslices of `line`: their offsets follow from the
        // pointers.
        let offset = f.as_ptr() as usize - line.as_ptr() as usize;
        if i == first {
            start = Some(offset);
        }
        if i == last {
            end = offset + f.len();
            break;
        }
    }
    match start {
        Some(start) if start <= end => &line[start..end],
        _ => &[],
    }
}

/// Parser state of one route connection.
#[derive(Debug, Clone, Default)]
pub struct RouteParser {
    /// Total bytes the message at the front of the buffer needs, once its
    /// control line is known.
    needed: Option<usize>,
    /// Whole ops parsed since [`RouteParser::take_ops_parsed`] (sizes the
    /// route's reads: `ReadBuffer::note_ops`).
    ops_parsed: u32,
}

impl RouteParser {
    pub fn new() -> RouteParser {
        RouteParser::default()
    }

    /// Total bytes (line, payload, CRLF) the op at the front of the buffer
    /// needs, when it is a message whose payload has not fully arrived.
    pub fn bytes_needed(&self) -> Option<usize> {
        self.needed
    }

    /// Whole ops parsed since the last call.
    pub fn take_ops_parsed(&mut self) -> u32 {
        std::mem::take(&mut self.ops_parsed)
    }

    /// Parses one op at the start of `buf`. `Ok(None)`: append more bytes
    /// and call again with a buffer that starts with the same bytes.
    pub fn next<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(RouteOp<'a>, usize)>, RouteParseError> {
        let result = self.parse_op(buf);
        if let Ok(Some(_)) = result {
            self.ops_parsed = self.ops_parsed.saturating_add(1);
        }
        result
    }

    fn parse_op<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(RouteOp<'a>, usize)>, RouteParseError> {
        self.needed = None;
        let Some(newline) = memchr(b'\n', &buf[..buf.len().min(MAX_ROUTE_CONTROL_LINE + 2)]) else {
            if buf.len() > MAX_ROUTE_CONTROL_LINE {
                return Err(RouteParseError::LineTooLong);
            }
            // A partial line must at least start like an op.
            return match identify(buf) {
                Err(e) => Err(e),
                Ok(_) => Ok(None),
            };
        };
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let line = &buf[..line_end];
        let (verb, name_len) = identify(line)?.ok_or(RouteParseError::UnknownOperation)?;
        let args = &line[name_len..];
        let after_line = newline + 1;
        let op = match verb {
            Verb::Ping => RouteOp::Ping,
            Verb::Pong => RouteOp::Pong,
            Verb::Ok => RouteOp::Ok,
            Verb::Err => RouteOp::Err(trim(args)),
            Verb::Info => RouteOp::Info(non_empty(args)?),
            Verb::Connect => RouteOp::Connect(non_empty(args)?),
            Verb::RsPlus | Verb::LsPlus => parse_sub(args, verb == Verb::LsPlus)?,
            Verb::RsMinus | Verb::LsMinus => parse_unsub(args)?,
            Verb::Rmsg | Verb::Hmsg | Verb::Lmsg => {
                let header = parse_msg_line(args, verb)?;
                let end = after_line + header.size;
                match buf.get(end..end + 2) {
                    Some(b"\r\n") => {}
                    Some(_) => return Err(RouteParseError::Malformed),
                    None => {
                        self.needed = Some(end + 2);
                        return Ok(None);
                    }
                }
                let msg = RoutedMsg {
                    account: header.account,
                    subject: header.subject,
                    reply: header.reply,
                    queues: header.queues,
                    header_len: header.header_len,
                    payload: &buf[after_line..end],
                };
                return Ok(Some((RouteOp::Msg(msg), end + 2)));
            }
        };
        Ok(Some((op, after_line)))
    }
}

/// The verb at the start of `line` and its length: `Ok(None)` when the
/// bytes present could still become one.
fn identify(line: &[u8]) -> Result<Option<(Verb, usize)>, RouteParseError> {
    // A partial line may end in the `\r` of its CRLF.
    let word_end = line
        .iter()
        .position(|&b| is_blank(b) || b == b'\r')
        .unwrap_or(line.len());
    let word = &line[..word_end];
    for (name, verb) in VERBS {
        if word.len() == name.len() && word.eq_ignore_ascii_case(name) {
            // A word that ends the buffer may still grow (`RMSG` vs `RMSGX`)
            // only if no blank followed it; callers pass whole lines when it
            // matters.
            return Ok(Some((verb, word_end)));
        }
        if word_end == line.len()
            && word.len() < name.len()
            && name[..word.len()].eq_ignore_ascii_case(word)
        {
            return Ok(None);
        }
    }
    Err(RouteParseError::UnknownOperation)
}

fn trim(arg: &[u8]) -> &[u8] {
    let start = arg.iter().position(|&b| !is_blank(b)).unwrap_or(arg.len());
    let arg = &arg[start..];
    let len = arg.len() - arg.iter().rev().take_while(|&&b| is_blank(b)).count();
    &arg[..len]
}

fn non_empty(arg: &[u8]) -> Result<&[u8], RouteParseError> {
    let arg = trim(arg);
    if arg.is_empty() {
        return Err(RouteParseError::Malformed);
    }
    Ok(arg)
}

fn parse_sub(args: &[u8], with_origin: bool) -> Result<RouteOp<'_>, RouteParseError> {
    let mut f = fields(args);
    if with_origin {
        f.next().ok_or(RouteParseError::Malformed)?;
    }
    let (a, s, q, w, extra) = (f.next(), f.next(), f.next(), f.next(), f.next());
    match (a, s, q, w, extra) {
        (Some(account), Some(subject), None, None, None) => Ok(RouteOp::Sub {
            account,
            subject,
            queue: None,
        }),
        (Some(account), Some(subject), Some(queue), Some(weight), None) => {
            // nats-server reads a weight it cannot parse as -1 and stores
            // it; a weight of at least one keeps the group reachable.
            let weight = parse_size(weight).map_or(1, |w| w.max(1) as u32);
            Ok(RouteOp::Sub {
                account,
                subject,
                queue: Some((queue, weight)),
            })
        }
        _ => Err(RouteParseError::Malformed),
    }
}

fn parse_unsub(args: &[u8]) -> Result<RouteOp<'_>, RouteParseError> {
    let mut f = fields(args);
    match (f.next(), f.next(), f.next(), f.next()) {
        (Some(account), Some(subject), queue, None) => Ok(RouteOp::Unsub {
            account,
            subject,
            queue,
        }),
        _ => Err(RouteParseError::Malformed),
    }
}

struct MsgLine<'a> {
    account: &'a [u8],
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    queues: RouteQueues<'a>,
    header_len: Option<usize>,
    size: usize,
}

/// The fields of an `RMSG`/`HMSG`/`LMSG` line (after the verb):
/// `[origin] <account> <subject> [<reply> | + <reply> <q>... | \| <q>...]
/// [<#header>] <#total>`.
fn parse_msg_line(args: &[u8], verb: Verb) -> Result<MsgLine<'_>, RouteParseError> {
    let skip = usize::from(verb == Verb::Lmsg);
    let sizes = if verb == Verb::Rmsg { 1 } else { 2 };
    let all = fields(args);
    let count = all.clone().count();
    if count < skip + 2 + sizes {
        return Err(RouteParseError::Malformed);
    }
    let mut f = all.clone().skip(skip);
    let account = f.next().ok_or(RouteParseError::Malformed)?;
    let subject = f.next().ok_or(RouteParseError::Malformed)?;
    // Between the subject and the sizes: nothing, a reply, or a queue form.
    let middle = count - skip - 2 - sizes;
    let last = all.clone().last().ok_or(RouteParseError::Malformed)?;
    let size = parse_size(last).ok_or(RouteParseError::Malformed)?;
    let header_len = if sizes == 2 {
        let h = all
            .clone()
            .nth(count - 2)
            .ok_or(RouteParseError::Malformed)?;
        let h = parse_size(h).ok_or(RouteParseError::Malformed)?;
        if h > size {
            return Err(RouteParseError::Malformed);
        }
        // LMSG always carries a header size; 0 means none.
        (verb != Verb::Lmsg || h > 0).then_some(h)
    } else {
        None
    };
    let (reply, queues) = match middle {
        0 => (None, RouteQueues::default()),
        1 => (f.next(), RouteQueues::default()),
        _ => {
            let marker = f.next().ok_or(RouteParseError::Malformed)?;
            let first_queue_field = skip + 3;
            match marker {
                b"+" => {
                    let reply = f.next().ok_or(RouteParseError::Malformed)?;
                    if middle < 3 {
                        return Err(RouteParseError::Malformed);
                    }
                    let names = field_range(args, first_queue_field + 1, count - sizes - 1);
                    (Some(reply), RouteQueues::new(names))
                }
                b"|" => {
                    let names = field_range(args, first_queue_field, count - sizes - 1);
                    (None, RouteQueues::new(names))
                }
                _ => return Err(RouteParseError::Malformed),
            }
        }
    };
    Ok(MsgLine {
        account,
        subject,
        reply,
        queues,
        header_len,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(op: &RouteOp<'_>) -> String {
        let s = |b: &[u8]| b.escape_ascii().to_string();
        match op {
            RouteOp::Info(a) => format!("INFO[{}]", s(a)),
            RouteOp::Connect(a) => format!("CONNECT[{}]", s(a)),
            RouteOp::Ping => "PING".into(),
            RouteOp::Pong => "PONG".into(),
            RouteOp::Ok => "+OK".into(),
            RouteOp::Err(a) => format!("-ERR[{}]", s(a)),
            RouteOp::Sub {
                account,
                subject,
                queue,
            } => format!(
                "RS+[{}][{}][{:?}]",
                s(account),
                s(subject),
                queue.map(|(q, w)| format!("{} {w}", s(q)))
            ),
            RouteOp::Unsub {
                account,
                subject,
                queue,
            } => format!("RS-[{}][{}][{:?}]", s(account), s(subject), queue.map(s)),
            RouteOp::Msg(m) => format!(
                "MSG[{}][{}][{:?}][{}][{:?}][{}]",
                s(m.account),
                s(m.subject),
                m.reply.map(s),
                m.queues.map(s).collect::<Vec<_>>().join(","),
                m.header_len,
                s(m.payload)
            ),
        }
    }

    /// Parses `input` fed in pieces of `step` bytes; returns the ops or the error.
    fn run(input: &[u8], step: usize) -> Result<Vec<String>, RouteParseError> {
        let mut parser = RouteParser::new();
        let mut buf = Vec::new();
        let mut ops = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            buf.extend_from_slice(chunk);
            while let Some((op, used)) = parser.next(&buf)? {
                ops.push(describe(&op));
                buf.drain(..used);
            }
        }
        assert!(
            buf.is_empty(),
            "leftover {:?}",
            buf.escape_ascii().to_string()
        );
        Ok(ops)
    }

    const STREAM: &[u8] = b"INFO {\"server_id\":\"N1\"} \r\nCONNECT {\"name\":\"N1\"}\r\nPING\r\npong\r\n\
RS+ $G foo\r\nRS+ $G bar grp 3\r\nRS- $G foo\r\nRS- $G bar grp\r\nLS+ c1 $G baz\r\n\
RMSG $G baz 5\r\nhello\r\nRMSG $G baz rep.1 5\r\nhello\r\nHMSG $G baz 12 17\r\nNATS/1.0\r\n\r\nhello\r\n\
RMSG $G qq | workers 1\r\nq\r\nRMSG $G qq + _INBOX.r w1 w2 1\r\nq\r\n\
HMSG $G h + r q1 12 13\r\nNATS/1.0\r\n\r\nx\r\nLMSG c1 $G l 0 2\r\nab\r\n-ERR 'x'\r\n+OK\r\n";

    #[test]
    fn every_op_at_every_split() {
        let whole = run(STREAM, STREAM.len()).unwrap();
        assert_eq!(
            whole,
            [
                "INFO[{\\\"server_id\\\":\\\"N1\\\"}]",
                "CONNECT[{\\\"name\\\":\\\"N1\\\"}]",
                "PING",
                "PONG",
                "RS+[$G][foo][None]",
                "RS+[$G][bar][Some(\"grp 3\")]",
                "RS-[$G][foo][None]",
                "RS-[$G][bar][Some(\"grp\")]",
                "RS+[$G][baz][None]",
                "MSG[$G][baz][None][][None][hello]",
                "MSG[$G][baz][Some(\"rep.1\")][][None][hello]",
                "MSG[$G][baz][None][][Some(12)][NATS/1.0\\r\\n\\r\\nhello]",
                "MSG[$G][qq][None][workers][None][q]",
                "MSG[$G][qq][Some(\"_INBOX.r\")][w1,w2][None][q]",
                "MSG[$G][h][Some(\"r\")][q1][Some(12)][NATS/1.0\\r\\n\\r\\nx]",
                "MSG[$G][l][None][][None][ab]",
                "-ERR[\\'x\\']",
                "+OK",
            ]
        );
        for step in 1..40 {
            assert_eq!(run(STREAM, step).unwrap(), whole, "step {step}");
        }
    }

    #[test]
    fn whole_ops_are_counted() {
        let mut parser = RouteParser::new();
        let mut buf = STREAM.to_vec();
        let mut ops = 0;
        while let Ok(Some((_, used))) = parser.next(&buf) {
            buf.drain(..used);
            ops += 1;
        }
        assert!(buf.is_empty());
        assert_eq!(parser.take_ops_parsed(), ops);
        assert_eq!(parser.take_ops_parsed(), 0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &b"XYZ\r\n"[..],
            b"RS+ $G\r\n",
            b"RS+ $G a q\r\n",
            b"RMSG $G\r\n",
            b"RMSG $G a x\r\n",
            b"RMSG $G a ? q 1\r\nx\r\n",
            b"RMSG $G a + r 1\r\nx\r\n",
            b"HMSG $G a 5 2\r\nxy\r\n",
            b"RMSG $G a 1\r\nxyz\r\n",
            b"INFO\r\n",
            b"RMSG $G a 1234567890\r\n",
        ] {
            for step in [1, 3, bad.len()] {
                assert!(
                    run(bad, step).is_err(),
                    "{:?}",
                    bad.escape_ascii().to_string()
                );
            }
        }
        // A large payload asks for its room.
        let mut parser = RouteParser::new();
        assert_eq!(parser.next(b"RMSG $G a 100\r\nab").unwrap(), None);
        assert_eq!(parser.bytes_needed(), Some(15 + 100 + 2));
    }
}
