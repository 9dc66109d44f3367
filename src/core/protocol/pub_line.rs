//! The PUB control line in the form clients send nearly always,
//! `PUB <subject> [<reply>] <size>\r\n` with single spaces, read in one
//! pass.
//!
//! The general path ([`super::parser`]) recognises the op name, searches
//! the line for `\n` with `memchr`, checks the blank run and argument
//! lengths, then splits the fields byte by byte: about 600 instructions for
//! `PUB bench.subj 16` (callgrind, `micro`'s `parse_pub16`, 2026-12-06), two
//! thirds of what a shard spends on a publish nobody subscribes to. Here the
//! fields are found eight bytes at a time and the line is read once.
//!
//! Anything else, or anything the general path would refuse, returns
//! `None` and goes the general way, which decides the error. So a line this
//! accepts parses exactly as the general path parses it (the parser's tests
//! check that on generated lines), and every error, limit and resumption
//! rule stays in one place.

use super::parser::{parse_size, PendingPub, Span};

const NAME: &[u8; 4] = b"PUB ";

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Offset of the first byte at or below `b' '` (a blank, CR, LF or another
/// control byte) in `buf[at..]`, or `None` if there is none.
///
/// Eight bytes at a time: `(w - 0x21…21) & !w & 0x80…80` flags every byte
/// below 0x21. A borrow only starts at such a byte and only reaches the
/// bytes above it, so the lowest flag (the first byte, little-endian) is
/// exact; flags above it may be false and are never read.
#[inline(always)]
fn first_control_or_space(buf: &[u8], mut at: usize) -> Option<usize> {
    while let Some(chunk) = buf.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let flags = word.wrapping_sub(ONES * 0x21) & !word & HIGHS;
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = buf.get(at..)?;
    tail.iter().position(|&b| b <= b' ').map(|p| at + p)
}

/// The pending publish of a plain PUB line at the start of `buf` whose
/// line (through its `\n`) is all in `buf`, or `None` when the line is not
/// in that form, not complete, or breaks a limit (the general path then
/// reads it and reports what is wrong).
#[inline]
pub(super) fn scan(buf: &[u8], max_control_line: usize, max_payload: usize) -> Option<PendingPub> {
    if buf.get(..NAME.len())? != NAME {
        return None;
    }
    // The line's `\n` must lie inside this window, which is what makes the
    // argument at most `max_control_line` bytes; a longer line goes the
    // general way, which reports the limit.
    let window_end = max_control_line.saturating_add(NAME.len() + 2);
    let window = &buf[..buf.len().min(window_end)];

    let subject_end = first_control_or_space(window, NAME.len())?;
    if subject_end == NAME.len() || window[subject_end] != b' ' {
        return None;
    }
    let second = subject_end + 1;
    let second_end = first_control_or_space(window, second)?;
    if second_end == second {
        return None;
    }
    let (reply, size_field, cr) = match window[second_end] {
        b'\r' => (None, second..second_end, second_end),
        b' ' => {
            let third = second_end + 1;
            let third_end = first_control_or_space(window, third)?;
            if third_end == third || window[third_end] != b'\r' {
                return None;
            }
            let reply = Span {
                start: second,
                end: second_end,
            };
            (Some(reply), third..third_end, third_end)
        }
        _ => return None,
    };
    if window.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    let size = parse_size(&window[size_field])?;
    if size > max_payload {
        return None;
    }
    Some(PendingPub {
        subject: Span {
            start: NAME.len(),
            end: subject_end,
        },
        reply,
        header_len: None,
        payload_start: cr + 2,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_delimiter_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut buf = vec![b'a'; len];
                // Bytes above 0x7f never count as delimiters, and never
                // hide one after them.
                if len > 0 {
                    buf[0] = 0xff;
                }
                assert_eq!(first_control_or_space(&buf, 0), None);
                if at < len {
                    buf[at] = b' ';
                    if at + 1 < len {
                        buf[at + 1] = b'\r';
                    }
                    assert_eq!(first_control_or_space(&buf, 0), Some(at), "{len} {at}");
                    assert_eq!(first_control_or_space(&buf, at), Some(at));
                }
            }
        }
        assert_eq!(first_control_or_space(b"ab", 5), None);
        for b in 0..=255u8 {
            let buf = [b'x', b'x', b'x', b, b'x', b'x', b'x', b'x', b'x'];
            let expected = (b <= b' ').then_some(3);
            assert_eq!(first_control_or_space(&buf, 0), expected, "{b:#x}");
        }
    }

    /// Subject, reply, size and where the payload starts.
    type Fields = (Vec<u8>, Option<Vec<u8>>, usize, usize);

    fn fields(line: &[u8]) -> Option<Fields> {
        scan(line, 4096, 1 << 20).map(|p| {
            (
                p.subject.of(line).to_vec(),
                p.reply.map(|r| r.of(line).to_vec()),
                p.size,
                p.payload_start,
            )
        })
    }

    #[test]
    fn reads_the_plain_forms() {
        assert_eq!(
            fields(b"PUB bench.subj 16\r\n0123456789abcdef\r\n"),
            Some((b"bench.subj".to_vec(), None, 16, 19))
        );
        assert_eq!(
            fields(b"PUB a _INBOX.x 0\r\n\r\n"),
            Some((b"a".to_vec(), Some(b"_INBOX.x".to_vec()), 0, 18))
        );
    }

    #[test]
    fn leaves_everything_else_to_the_general_path() {
        for line in [
            &b"pub a 1\r\n"[..],
            b"PUB  a 1\r\n",
            b"PUB a  1\r\n",
            b"PUB a\t1\r\n",
            b"PUB a 1\n",
            b"PUB a 1\r",
            b"PUB a 1",
            b"PUB a 1 \r\n",
            b"PUB a\r\n",
            b"PUB a b c 1\r\n",
            b"PUB a 1x\r\n",
            b"PUB a 1234567890\r\n",
            b"PUB a\x01b 1\r\n",
            b"HPUB a 1 1\r\n",
        ] {
            assert_eq!(fields(line), None, "{}", line.escape_ascii());
        }
        // Limits: the general path reports them.
        assert!(scan(b"PUB a 9\r\n", 4096, 8).is_none());
        assert!(scan(b"PUB abc 1\r\n", 4, 8).is_none());
        assert!(scan(b"PUB ab 1\r\n", 4, 8).is_some());
    }
}
