//! Go's `strconv.Quote` (`%q`), which nats-server uses for subjects, queue
//! names and config values in its `-ERR` texts, logs and errors: double
//! quotes, `"` and `\` escaped, control characters as `\a \b \f \n \r \t
//! \v`, `\xNN` or `\uNNNN`, and bytes that are not UTF-8 as `\xNN`.

use std::fmt::Write;

pub fn go_quote(text: impl AsRef<[u8]>) -> String {
    let bytes = text.as_ref();
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn like_strconv_quote() {
        assert_eq!(go_quote("a.b"), "\"a.b\"");
        assert_eq!(go_quote("a \"b\" \\"), "\"a \\\"b\\\" \\\\\"");
        assert_eq!(go_quote("\t\n\x0c\x01\u{7f}"), "\"\\t\\n\\f\\x01\\x7f\"");
        assert_eq!(go_quote("é"), "\"é\"");
        assert_eq!(go_quote(b"foo.\xff"), "\"foo.\\xff\"");
    }
}
