//! The payload part of nats-server's `<<- MSG_PAYLOAD: [...]` trace line
//! (client.go, traceMsg), with `max_traced_msg_len`: a payload longer than
//! the limit is cut, and what is shown is the first `limit` characters of
//! the *quoted* form of its first `limit` bytes, then `...` inside the
//! quotes. So escapes count towards the limit and may be cut in half
//! (`he\nlo` at 3 shows `["he\..."]`), exactly as nats-server prints it.

use crate::go_quote::go_quote;

/// `["<payload>"]`, or `["<cut>..."]` past `limit` bytes (0: no limit).
/// `payload` excludes the CRLF that ends it on the wire.
pub fn traced_payload(payload: &[u8], limit: usize) -> String {
    if limit == 0 || payload.len() <= limit {
        return format!("[{}]", go_quote(payload));
    }
    let quoted = go_quote(&payload[..limit]);
    // The quoted form is at least `limit + 2` bytes long (every byte shows
    // as itself or as an escape), so the range is in bounds; the cut may
    // split a multi-byte character, which shows as U+FFFD.
    let cut = quoted
        .as_bytes()
        .get(1..limit + 1)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    format!("[\"{cut}...\"]")
}

#[cfg(test)]
mod tests {
    use super::traced_payload;

    #[test]
    fn like_nats_server() {
        assert_eq!(traced_payload(b"hello", 0), "[\"hello\"]");
        assert_eq!(traced_payload(b"hello", 5), "[\"hello\"]");
        assert_eq!(traced_payload(b"hello", 3), "[\"hel...\"]");
        assert_eq!(traced_payload(b"he\nlo", 3), "[\"he\\...\"]");
        assert_eq!(traced_payload(b"a\"b\r\n", 0), "[\"a\\\"b\\r\\n\"]");
        assert_eq!(traced_payload(b"", 1), "[\"\"]");
        assert_eq!(traced_payload(b"\xff\xfe", 1), "[\"\\...\"]");
    }
}
