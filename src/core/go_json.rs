//! Go's `encoding/json` escaping, as a post-pass over JSON that serde_json
//! wrote. nats-server marshals INFO, its route CONNECT, the monitoring
//! bodies and the system account's messages with Go's default encoder,
//! which escapes inside strings what serde_json writes raw or otherwise:
//!
//! - `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026` (HTML-safe output; a
//!   route INFO's permissions show `"\u003e"` for `>`);
//! - U+2028 and U+2029 as `\u2028`, `\u2029`;
//! - backspace and form feed as `\u0008`, `\u000c` (serde_json: `\b`, `\f`).
//!
//! A post-pass is safe: outside strings JSON has none of these characters,
//! and a backslash only ever appears inside a string, starting an escape.
//! Idempotent (its output contains none of what it rewrites). For rarely
//! rendered lines and bodies only, never the per-message path.

use std::borrow::Cow;

/// `json` (serde_json's output, or any valid JSON) with Go's escapes;
/// borrowed when there is nothing to rewrite.
pub fn go_json_escape(json: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = json.iter().position(|&b| needs_look(b)) else {
        return Cow::Borrowed(json);
    };
    let mut out = Vec::with_capacity(json.len() + 16);
    out.extend_from_slice(&json[..first]);
    let mut i = first;
    while i < json.len() {
        let b = json[i];
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            b'\\' => {
                // An escape: two bytes, of which only \b and \f change.
                match json.get(i + 1) {
                    Some(b'b') => out.extend_from_slice(b"\\u0008"),
                    Some(b'f') => out.extend_from_slice(b"\\u000c"),
                    Some(&next) => out.extend_from_slice(&[b'\\', next]),
                    None => out.push(b'\\'),
                }
                i += 2;
                continue;
            }
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
            0xE2 if json.get(i + 1) == Some(&0x80)
                && matches!(json.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if json[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// [`go_json_escape`] for JSON held as a `String`.
pub fn go_json_string(json: String) -> String {
    match go_json_escape(json.as_bytes()) {
        Cow::Borrowed(_) => json,
        // Whole ASCII characters and whole 3-byte sequences were replaced
        // by ASCII: still UTF-8.
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn needs_look(b: u8) -> bool {
    matches!(b, b'<' | b'>' | b'&' | b'\\' | 0xE2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(json: &str) -> String {
        go_json_string(json.to_string())
    }

    #[test]
    fn html_characters_become_unicode_escapes() {
        assert_eq!(
            esc(r#"{"import":{"allow":[">","a.<b>&c"]}}"#),
            r#"{"import":{"allow":["\u003e","a.\u003cb\u003e\u0026c"]}}"#
        );
    }

    #[test]
    fn line_and_paragraph_separators_are_escaped_other_utf8_kept() {
        let json = serde_json::to_string("a\u{2028}b\u{2029}c é \u{2027}\u{202a} 😀").unwrap();
        assert_eq!(esc(&json), "\"a\\u2028b\\u2029c é \u{2027}\u{202a} 😀\"");
    }

    #[test]
    fn backspace_and_form_feed_as_go_writes_them() {
        let json = serde_json::to_string("\u{8}\u{c}\n\r\t\u{1}\"\\b\\f").unwrap();
        assert_eq!(json, r#""\b\f\n\r\t\u0001\"\\b\\f""#);
        // An escaped backslash followed by b stays as it is.
        assert_eq!(esc(&json), r#""\u0008\u000c\n\r\t\u0001\"\\b\\f""#);
    }

    #[test]
    fn nothing_to_rewrite_borrows_and_it_is_idempotent() {
        let plain = br#"{"server_id":"N1","port":4222}"#;
        assert!(matches!(go_json_escape(plain), Cow::Borrowed(_)));
        let once = esc(r#"{"a":"<\b>"}"#);
        assert_eq!(esc(&once), once);
    }

    #[test]
    fn a_parser_reads_back_the_same_values() {
        let value = serde_json::json!({"s": "<>&\u{2028}\u{2029}\u{8}\u{c}x", "n": [1, ">"]});
        let escaped = esc(&value.to_string());
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }
}
