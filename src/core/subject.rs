//! Subjects: validation and pattern matching, as nats-server 2.9.10 does it
//! (`tests/reference/protocol.md` §8).
//!
//! A subject is a sequence of tokens separated by `.`. A token is any
//! non-empty run of bytes without space, tab, CR, LF or FF (UTF-8 is fine).
//! In a subscription pattern a token that is exactly `*` matches one token,
//! and a token that is exactly `>`, allowed only last, matches one or more
//! tokens. `*` or `>` inside a longer token is an ordinary character.
//!
//! Invariant: `pattern_matches` is the reference semantics of the
//! subscription index (`sublist`): a published subject is matched token by
//! token, its own `*`/`>` tokens being plain literals, and a subject with an
//! empty token matches nothing. The index's tests compare against it.

/// The tokens of `subject`, split on `.` (empty tokens included).
pub fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    subject.split(|&b| b == b'.')
}

/// Bytes that can never appear in a token (nats-server rejects subscribe
/// subjects containing them).
fn is_forbidden(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c')
}

/// Valid for `SUB`: non-empty, no empty token, no forbidden byte, `>` only
/// as the last token.
pub fn is_valid_subscribe_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut after_full_wildcard = false;
    for token in tokens(subject) {
        if token.is_empty() || after_full_wildcard || token.iter().any(|&b| is_forbidden(b)) {
            return false;
        }
        after_full_wildcard = token == b">";
    }
    true
}

/// Valid literal subject (what pedantic mode requires of `PUB`): a valid
/// subscribe subject without any wildcard token.
pub fn is_valid_publish_subject(subject: &[u8]) -> bool {
    is_valid_subscribe_subject(subject) && !has_wildcard_token(subject)
}

/// True if some token is exactly `*` or `>`.
pub fn has_wildcard_token(subject: &[u8]) -> bool {
    tokens(subject).any(|t| t == b"*" || t == b">")
}

/// True if a subject contains an empty token (or is empty): such a
/// published subject matches no subscription.
pub fn has_empty_token(subject: &[u8]) -> bool {
    tokens(subject).any(|t| t.is_empty())
}

/// Does the subscription `pattern` match the published `subject`?
///
/// `pattern` is expected to be a valid subscribe subject. The subject's own
/// `*`/`>` tokens are literals (a `foo.*` pattern matches the subject
/// `foo.*`, a `foo.bar` pattern does not). A subject with an empty token
/// matches nothing.
pub fn pattern_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut pattern_tokens = tokens(pattern);
    let mut subject_tokens = tokens(subject);
    loop {
        match (pattern_tokens.next(), subject_tokens.next()) {
            (None, None) => return true,
            // `>` needs at least one token and takes all the rest.
            (Some(b">"), Some(token)) => {
                return !token.is_empty() && subject_tokens.all(|t| !t.is_empty());
            }
            (Some(p), Some(token)) => {
                if token.is_empty() || (p != b"*" && p != token) {
                    return false;
                }
            }
            // Different token counts.
            _ => return false,
        }
    }
}

/// Every subject `pattern` matches is also matched by `of` (an import's
/// subject against an export's): `>` covers any non-empty rest, `*` covers
/// one token (a literal or another `*`), literals must be equal.
pub fn is_subset(pattern: &[u8], of: &[u8]) -> bool {
    let mut pattern_tokens = tokens(pattern);
    let mut of_tokens = tokens(of);
    loop {
        match (of_tokens.next(), pattern_tokens.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(token)) if token != b">" => {}
            (Some(literal), Some(token)) if literal == token => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_validity() {
        for ok in [
            &b"foo"[..],
            b"foo.bar",
            b"foo.*",
            b"*",
            b">",
            b"foo.>",
            b"*.*.>",
            b"foo*",
            b"f>o",
            b"foo.>bar",
            b"$JS.API.>",
            "été.*".as_bytes(),
        ] {
            assert!(is_valid_subscribe_subject(ok), "{}", ok.escape_ascii());
        }
        for bad in [
            &b""[..],
            b".",
            b"foo.",
            b".foo",
            b"foo..bar",
            b"foo.>.bar",
            b">.foo",
            b"> ",
            b"foo bar",
            b"foo\tbar",
            b"foo\r",
            b"foo\n",
            b"foo\x0cbar",
        ] {
            assert!(!is_valid_subscribe_subject(bad), "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn publish_validity() {
        assert!(is_valid_publish_subject(b"foo.bar"));
        assert!(is_valid_publish_subject(b"foo*.b>r"));
        assert!(!is_valid_publish_subject(b"foo.*"));
        assert!(!is_valid_publish_subject(b">"));
        assert!(!is_valid_publish_subject(b"foo."));
        assert!(!is_valid_publish_subject(b""));
    }

    #[test]
    fn matching() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"foo", b"foo", true),
            (b"foo", b"foo.bar", false),
            (b"foo.bar", b"foo", false),
            (b"foo.*", b"foo.bar", true),
            (b"foo.*", b"foo", false),
            (b"foo.*", b"foo.bar.baz", false),
            (b"*.bar", b"foo.bar", true),
            (b"foo.>", b"foo.bar", true),
            (b"foo.>", b"foo.bar.baz", true),
            (b"foo.>", b"foo", false),
            (b">", b"foo", true),
            (b">", b"a.b.c", true),
            (b"*", b"a.b", false),
            (b"foo*", b"foo*", true),
            (b"foo*", b"foox", false),
            // Wildcard tokens in the published subject are literals.
            (b"foo.*", b"foo.*", true),
            (b">", b"foo.*", true),
            (b"foo.bar", b"foo.*", false),
            (b"foo.>", b"foo.>", true),
            (b"foo.*", b"foo.>", true),
            // Empty tokens match nothing.
            (b">", b"foo..bar", false),
            (b"foo.>", b"foo.bar.", false),
            (b"*", b"", false),
            (b">", b"", false),
            (b"foo.*", b"foo.", false),
        ];
        for &(pattern, subject, expected) in cases {
            assert_eq!(
                pattern_matches(pattern, subject),
                expected,
                "{} vs {}",
                pattern.escape_ascii(),
                subject.escape_ascii()
            );
        }
    }

    #[test]
    fn subsets() {
        assert!(is_subset(b"foo.bar", b"foo.bar"));
        assert!(is_subset(b"foo.bar", b"foo.*"));
        assert!(is_subset(b"foo.*", b"foo.*"));
        assert!(is_subset(b"foo.*.baz", b"foo.>"));
        assert!(is_subset(b"foo.>", b"foo.>"));
        assert!(is_subset(b"foo.>", b">"));
        assert!(!is_subset(b"foo.>", b"foo.*"));
        assert!(!is_subset(b"foo.*", b"foo.bar"));
        assert!(!is_subset(b"foo", b"foo.>"));
        assert!(!is_subset(b"foo.bar.baz", b"foo.*"));
    }

    #[test]
    fn token_helpers() {
        assert_eq!(
            tokens(b"a.bb.c").collect::<Vec<_>>(),
            vec![&b"a"[..], b"bb", b"c"]
        );
        assert_eq!(tokens(b"a..").count(), 3);
        assert!(has_wildcard_token(b"a.*.c"));
        assert!(!has_wildcard_token(b"a*.c>"));
        assert!(has_empty_token(b""));
        assert!(has_empty_token(b"a..b"));
        assert!(!has_empty_token(b"a.b"));
    }
}
