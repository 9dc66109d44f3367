//! The client → server operations, as borrowed views into the read buffer.
//!
//! Invariant: every slice in a `ClientOp` points into the buffer that was
//! handed to `Parser::next`; nothing is copied or allocated. Field slices
//! never contain the separators (space/tab) around them, nor the line's CRLF.

/// One operation sent by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp<'a> {
    /// `CONNECT <json>`: the JSON argument with surrounding blanks removed.
    /// Never empty (an empty argument is `ParseError::Malformed`).
    Connect(&'a [u8]),
    /// `INFO <json>` from a client: decoded and ignored by the broker.
    /// Never empty (an empty argument is `ParseError::Malformed`).
    Info(&'a [u8]),
    /// `PUB` and `HPUB`.
    Pub(Publish<'a>),
    /// `SUB <subject> [queue] <sid>`. The subject is not validated here.
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max]`. `max` is `None` when absent; a max that is not a
    /// valid size (non-digits, more than 9 digits) is `Some(0)`, which the
    /// broker treats as "remove now", like nats-server 2.9.
    Unsub {
        sid: &'a [u8],
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `+OK` from a client: ignored by the broker.
    Ok,
    /// `-ERR <text>` from a client: the broker logs it and closes. The text
    /// is passed as sent (quotes included), without surrounding blanks.
    Err(&'a [u8]),
}

/// A message published with `PUB` or `HPUB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Not validated (non-pedantic servers accept any bytes).
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// `Some(h)` for HPUB: the first `h` bytes of `payload` are the header
    /// block. Always `<= payload.len()`.
    pub header_len: Option<usize>,
    /// Exactly the announced number of bytes (HPUB: header block + body),
    /// without the CRLF that terminates it.
    pub payload: &'a [u8],
}
