//! Renaming subjects as they cross accounts: a stream import's `prefix` or
//! `to`, a service import's `to`. A mapping's destination names the
//! source's wildcards by position (`*` in order, `$1` or
//! `{{wildcard(1)}}` explicitly) and may end in `>` for the source's tail.

use crate::subject::tokens;

/// One token of a mapping's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Box<[u8]>),
    /// The source's n-th `*` token (0-based).
    Wildcard(usize),
    /// Whatever the source's `>` matched.
    Tail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectTransform {
    /// `prefix: p`: `subject` becomes `p.subject`.
    Prefix(Box<[u8]>),
    /// `to`: the source pattern's wildcards placed into the destination.
    Map {
        source: Box<[u8]>,
        destination: Vec<Piece>,
    },
}

impl SubjectTransform {
    /// `prefix`, with nats-server's trailing dot added when missing.
    pub fn prefix(prefix: &str) -> SubjectTransform {
        let mut bytes = prefix.as_bytes().to_vec();
        if !bytes.ends_with(b".") {
            bytes.push(b'.');
        }
        SubjectTransform::Prefix(bytes.into())
    }

    /// A mapping from the `source` pattern to `destination`, or why it
    /// cannot be one.
    pub fn mapping(source: &str, destination: &str) -> Result<SubjectTransform, String> {
        let stars = tokens(source.as_bytes()).filter(|t| *t == b"*").count();
        let has_tail = source.ends_with('>') && tokens(source.as_bytes()).last() == Some(b">");
        let mut next_star = 0;
        let mut pieces = Vec::new();
        for token in tokens(destination.as_bytes()) {
            let piece = if token == b"*" {
                next_star += 1;
                Piece::Wildcard(next_star - 1)
            } else if token == b">" {
                Piece::Tail
            } else if let Some(n) = wildcard_reference(token) {
                if n == 0 {
                    return Err(format!("invalid wildcard reference in {destination:?}"));
                }
                Piece::Wildcard(n - 1)
            } else {
                Piece::Literal(token.into())
            };
            match piece {
                Piece::Wildcard(n) if n >= stars => {
                    return Err(format!(
                        "{destination:?} uses more wildcards than {source:?} has"
                    ))
                }
                Piece::Tail if !has_tail => {
                    return Err(format!("{destination:?} uses '>' but {source:?} does not"))
                }
                _ => {}
            }
            pieces.push(piece);
        }
        Ok(SubjectTransform::Map {
            source: source.as_bytes().into(),
            destination: pieces,
        })
    }

    /// Writes the new name of `subject` (which matches the source pattern)
    /// into `out`, replacing what it held.
    pub fn apply(&self, subject: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            SubjectTransform::Prefix(prefix) => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(subject);
            }
            SubjectTransform::Map {
                source,
                destination,
            } => {
                let mut stars: [&[u8]; 16] = [b""; 16];
                let mut star_count = 0;
                let mut tail: &[u8] = b"";
                let mut offset = 0;
                for pattern in tokens(source) {
                    let rest = &subject[offset.min(subject.len())..];
                    if pattern == b">" {
                        tail = rest;
                        break;
                    }
                    let len = memchr::memchr(b'.', rest).unwrap_or(rest.len());
                    if pattern == b"*" && star_count < stars.len() {
                        stars[star_count] = &rest[..len];
                        star_count += 1;
                    }
                    offset += len + 1;
                }
                for (i, piece) in destination.iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    match piece {
                        Piece::Literal(bytes) => out.extend_from_slice(bytes),
                        Piece::Wildcard(n) => {
                            out.extend_from_slice(stars.get(*n).unwrap_or(&&b""[..]))
                        }
                        Piece::Tail => out.extend_from_slice(tail),
                    }
                }
            }
        }
    }
}

/// `$N` or `{{wildcard(N)}}` (spaces allowed inside the braces).
fn wildcard_reference(token: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(token).ok()?;
    if let Some(n) = text.strip_prefix('$') {
        return n.parse().ok();
    }
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let args = inner.strip_prefix("wildcard")?.trim();
    args.strip_prefix('(')?
        .strip_suffix(')')?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &SubjectTransform, subject: &str) -> String {
        let mut out = Vec::new();
        t.apply(subject.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prefix_adds_one_dot() {
        assert_eq!(
            run(&SubjectTransform::prefix("imp"), "foo.bar"),
            "imp.foo.bar"
        );
        assert_eq!(run(&SubjectTransform::prefix("imp."), "foo"), "imp.foo");
    }

    #[test]
    fn mapping_places_wildcards() {
        let literal = SubjectTransform::mapping("foo", "bar").unwrap();
        assert_eq!(run(&literal, "foo"), "bar");
        let positional = SubjectTransform::mapping("a.*.*", "b.*.*").unwrap();
        assert_eq!(run(&positional, "a.x.y"), "b.x.y");
        let swapped = SubjectTransform::mapping("a.*.*", "b.$2.{{wildcard(1)}}").unwrap();
        assert_eq!(run(&swapped, "a.x.y"), "b.y.x");
        let tail = SubjectTransform::mapping("req.*.>", "svc.$1.>").unwrap();
        assert_eq!(run(&tail, "req.one.two.three"), "svc.one.two.three");
    }

    #[test]
    fn bad_mappings_are_refused() {
        assert!(SubjectTransform::mapping("a.*", "b.$2").is_err());
        assert!(SubjectTransform::mapping("a.*", "b.>").is_err());
        assert!(SubjectTransform::mapping("a", "b.*").is_err());
    }
}
