//! Encoding of server→client frames into a connection's outbound queue.
//!
//! Every delivery is appended to the subscriber's queue (header and payload
//! copied: for the small messages that dominate NATS traffic a copy is
//! cheaper than tracking a shared segment), and the connection is flushed
//! once per unit of work with a single vectored write. Nothing here
//! allocates; the `*_len_bound` functions tell the queue how much room a
//! frame may need.

/// Room for the longest `MSG`/`HMSG` line around a payload: the verb,
/// four separators, two decimal sizes and two CRLFs.
const MSG_FRAMING_BOUND: usize = 64;

/// At least as many bytes as [`encode_msg`] appends for these arguments.
pub fn msg_len_bound(subject: &[u8], sid: &[u8], reply: Option<&[u8]>, payload: &[u8]) -> usize {
    subject.len() + sid.len() + reply.map_or(0, <[u8]>::len) + payload.len() + MSG_FRAMING_BOUND
}

/// At least as many bytes as [`encode_err`] appends for `text`.
pub fn err_len_bound(text: &str) -> usize {
    text.len() + 16
}

/// Appends `MSG`/`HMSG` for one delivery.
///
/// `header_len` is `Some(h)` when the message carries a header block (the
/// first `h` bytes of `payload`). A subscriber that did not ask for headers
/// gets a plain `MSG` with the header block stripped, as nats-server does.
pub fn encode_msg(
    out: &mut Vec<u8>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    payload: &[u8],
    client_supports_headers: bool,
) {
    let mut itoa_buf = itoa::Buffer::new();
    match header_len {
        Some(h) if client_supports_headers => {
            out.extend_from_slice(b"HMSG ");
            push_subject_sid_reply(out, subject, sid, reply);
            out.extend_from_slice(itoa_buf.format(h).as_bytes());
            out.push(b' ');
            out.extend_from_slice(itoa_buf.format(payload.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(payload);
        }
        _ => {
            let body = match header_len {
                Some(h) => payload.get(h..).unwrap_or_default(),
                None => payload,
            };
            out.extend_from_slice(b"MSG ");
            push_subject_sid_reply(out, subject, sid, reply);
            out.extend_from_slice(itoa_buf.format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn push_subject_sid_reply(out: &mut Vec<u8>, subject: &[u8], sid: &[u8], reply: Option<&[u8]>) {
    out.extend_from_slice(subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(reply) = reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
}

const NO_RESPONDERS_STATUS: &[u8] = b"NATS/1.0 503\r\n\r\n";

/// At least as many bytes as [`encode_no_responders`] appends.
pub fn no_responders_len_bound(reply_subject: &[u8], sid: &[u8]) -> usize {
    msg_len_bound(reply_subject, sid, None, NO_RESPONDERS_STATUS)
}

/// The no-responders status message: `HMSG <reply> <sid> 16 16` with a bare
/// `NATS/1.0 503` header block and no payload.
pub fn encode_no_responders(out: &mut Vec<u8>, reply_subject: &[u8], sid: &[u8]) {
    const STATUS: &[u8] = NO_RESPONDERS_STATUS;
    encode_msg(
        out,
        reply_subject,
        sid,
        None,
        Some(STATUS.len()),
        STATUS,
        true,
    );
}

/// `-ERR '<text>'\r\n`.
pub fn encode_err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

pub const OK: &[u8] = b"+OK\r\n";
pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_and_hmsg_bytes() {
        let mut out = Vec::new();
        encode_msg(&mut out, b"foo", b"1", Some(b"bar.baz"), None, b"hi", true);
        assert_eq!(out, b"MSG foo 1 bar.baz 2\r\nhi\r\n");
        out.clear();
        let payload = b"NATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!";
        encode_msg(&mut out, b"FOO", b"1", None, Some(22), payload, true);
        assert_eq!(
            out,
            b"HMSG FOO 1 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n"
        );
        out.clear();
        encode_msg(&mut out, b"FOO", b"1", None, Some(22), payload, false);
        assert_eq!(out, b"MSG FOO 1 11\r\nHello NATS!\r\n");
        out.clear();
        encode_msg(&mut out, b"foo", b"1", None, None, b"", true);
        assert_eq!(out, b"MSG foo 1 0\r\n\r\n");
    }

    #[test]
    fn no_responders_bytes() {
        let mut out = Vec::new();
        encode_no_responders(&mut out, b"_INBOX.x", b"7");
        assert_eq!(out, b"HMSG _INBOX.x 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
    }

    #[test]
    fn bounds_cover_the_encoded_frames() {
        let long_sid = [b'9'; 30];
        let payload = vec![b'p'; 1_000_000];
        let mut out = Vec::new();
        encode_msg(
            &mut out,
            b"a.b",
            &long_sid,
            Some(b"_INBOX.r"),
            Some(10),
            &payload,
            true,
        );
        assert!(out.len() <= msg_len_bound(b"a.b", &long_sid, Some(b"_INBOX.r"), &payload));
        out.clear();
        encode_no_responders(&mut out, b"_INBOX.x", &long_sid);
        assert!(out.len() <= no_responders_len_bound(b"_INBOX.x", &long_sid));
        out.clear();
        encode_err(&mut out, "Maximum Payload Violation");
        assert!(out.len() <= err_len_bound("Maximum Payload Violation"));
    }

    #[test]
    fn err_bytes() {
        let mut out = Vec::new();
        encode_err(&mut out, "Unknown Protocol Operation");
        assert_eq!(out, b"-ERR 'Unknown Protocol Operation'\r\n");
    }
}
