//! Renaming subjects: a stream import's `prefix` or `to`, a service
//! import's `to`, and an account's subject `mappings` ([`super::mapping`]).
//! A destination names the source's wildcards by number (`$1` or
//! `{{wildcard(1)}}`), may end in `>` for the source's tail, and may use
//! nats-server 2.9's transform functions: `partition`, `split`,
//! `splitFromLeft`, `splitFromRight`, `sliceFromLeft`, `sliceFromRight`.
//!
//! What is accepted, how each function cuts a token and the error texts
//! are nats-server 2.9.10's (accounts.go `newTransform`, `transform`,
//! sublist.go `ValidateMappingDestination`), quirks included, so that a
//! config that works there maps the same subjects the same way here.

use crate::subject::tokens;

/// One token of a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Box<[u8]>),
    /// The subject's token at this index (a source wildcard, resolved).
    Wildcard(usize),
    /// `{{partition(n, w...)}}`: FNV-1a of the named tokens, concatenated,
    /// modulo `buckets` (kept as nats-server's int32, used as its uint32).
    Partition {
        buckets: i32,
        tokens: Box<[usize]>,
    },
    /// `{{splitFromLeft(w, p)}}`: the token cut in two after `p` bytes.
    SplitFromLeft {
        token: usize,
        position: i32,
    },
    /// `{{splitFromRight(w, p)}}`: the token cut in two `p` bytes from its end.
    SplitFromRight {
        token: usize,
        position: i32,
    },
    /// `{{sliceFromLeft(w, n)}}`: the token in pieces of `n` bytes from its
    /// start (the last one shorter).
    SliceFromLeft {
        token: usize,
        size: i32,
    },
    /// `{{sliceFromRight(w, n)}}`: the same from its end (the first shorter).
    SliceFromRight {
        token: usize,
        size: i32,
    },
    /// `{{split(w, d)}}`: the token cut at every `d`, empty parts dropped.
    Split {
        token: usize,
        delimiter: Box<[u8]>,
    },
    /// What the source's `>` matched: the subject from this token on.
    Tail(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectTransform {
    /// `prefix: p`: `subject` becomes `p.subject`.
    Prefix(Box<[u8]>),
    /// A destination built from the tokens of a subject that matches
    /// `source`.
    Map {
        source: Box<[u8]>,
        destination: Vec<Piece>,
    },
}

// nats-server's error texts (errors.go), after "invalid mapping destination: ".
const INVALID_SUBJECT: &str = "invalid subject";
const NOT_ALL_WILDCARDS: &str = "not using all of the token wildcard(s)";
const UNKNOWN_FUNCTION: &str = "unknown function";
const INDEX_OUT_OF_RANGE: &str = "wildcard index out of range";
const NOT_ENOUGH_ARGUMENTS: &str = "not enough arguments passed to the function";
const INVALID_ARGUMENT: &str = "function argument is invalid or in the wrong format";
const TOO_MANY_ARGUMENTS: &str = "too many arguments passed to the function";

/// `subject` with its `*` tokens, in order, as `$1`, `$2`, ...: how
/// nats-server turns an import's `to` into a destination, and a weighted
/// mapping's unlisted remainder into one that keeps the source subject.
pub(super) fn number_wildcards(subject: &str) -> String {
    let mut next = 0;
    subject
        .split('.')
        .map(|token| {
            if token == "*" {
                next += 1;
                format!("${next}")
            } else {
                token.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// nats-server's `mappingDestinationErr`: the reason, then where.
fn destination_error(reason: &str, token: &str) -> String {
    format!("invalid mapping destination: {reason} in {token}")
}

/// The transform functions, spelled as nats-server's patterns accept them:
/// an upper-case letter here also matches its lower case (`[pP]artition`,
/// `[sS]plit[fF]rom[lL]eft`); the other letters must be as written.
const WILDCARD: &str = "Wildcard";
const PARTITION: &str = "Partition";
const SPLIT_FROM_LEFT: &str = "SplitFromLeft";
const SPLIT_FROM_RIGHT: &str = "SplitFromRight";
const SLICE_FROM_LEFT: &str = "SliceFromLeft";
const SLICE_FROM_RIGHT: &str = "SliceFromRight";
const SPLIT: &str = "Split";
const FUNCTIONS: [&str; 7] = [
    PARTITION,
    WILDCARD,
    SPLIT_FROM_LEFT,
    SPLIT_FROM_RIGHT,
    SLICE_FROM_LEFT,
    SLICE_FROM_RIGHT,
    SPLIT,
];

/// A destination token that takes something from the subject.
struct Placeholder {
    piece: PlaceholderKind,
    /// Source wildcard numbers (1-based as written; checked by the caller).
    wildcards: Vec<i64>,
}

enum PlaceholderKind {
    Wildcard,
    Partition(i32),
    SplitFromLeft(i32),
    SplitFromRight(i32),
    SliceFromLeft(i32),
    SliceFromRight(i32),
    Split(Box<[u8]>),
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

    /// An import's `to`: as [`SubjectTransform::new`], with each `*` of
    /// `destination` standing for the source's next wildcard (nats-server
    /// rewrites them to `$1`, `$2`, ... first).
    pub fn mapping(source: &str, destination: &str) -> Result<SubjectTransform, String> {
        SubjectTransform::new(source, &number_wildcards(destination))
    }

    /// The transform from the `source` pattern to `destination`, or
    /// nats-server's reason why there is none. Both must be subjects, with
    /// a `>` in both or neither and no `*` in the destination; when the
    /// source has wildcards every one must be used. A source without
    /// wildcards maps to `destination` as written (`$1` stays literal).
    pub fn new(source: &str, destination: &str) -> Result<SubjectTransform, String> {
        let source_info = SubjectInfo::of(source);
        let dest_info = SubjectInfo::of(destination);
        let (Some(src), Some(dst)) = (source_info, dest_info) else {
            return Err(INVALID_SUBJECT.to_string());
        };
        if dst.stars > 0 || src.tail != dst.tail {
            return Err(INVALID_SUBJECT.to_string());
        }
        let source_tokens: Vec<&str> = source.split('.').collect();
        let mut pieces = Vec::new();
        if src.stars == 0 && !src.tail {
            pieces.extend(
                destination
                    .split('.')
                    .map(|t| Piece::Literal(t.as_bytes().into())),
            );
        } else {
            // Wildcard number n (1-based) is the source's token at
            // stars[n - 1]; nats-server's lookup gives token 0 for a
            // number no wildcard has (0 or negative), so does this.
            let stars: Vec<usize> = source_tokens
                .iter()
                .enumerate()
                .filter(|(_, t)| **t == "*")
                .map(|(i, _)| i)
                .collect();
            let index = |n: i64| -> usize {
                usize::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|n| stars.get(n).copied())
                    .unwrap_or(0)
            };
            let mut placeholders = 0;
            for token in destination.split('.') {
                let Some(placeholder) = placeholder(token)? else {
                    pieces.push(if token == ">" {
                        Piece::Tail(source_tokens.len() - 1)
                    } else {
                        Piece::Literal(token.as_bytes().into())
                    });
                    continue;
                };
                placeholders += 1;
                for &n in &placeholder.wildcards {
                    if n > src.stars as i64 {
                        return Err(destination_error(
                            INDEX_OUT_OF_RANGE,
                            &format!("{token}: [{n}]"),
                        ));
                    }
                }
                let first = index(placeholder.wildcards.first().copied().unwrap_or(0));
                pieces.push(match placeholder.piece {
                    PlaceholderKind::Wildcard => Piece::Wildcard(first),
                    PlaceholderKind::Partition(buckets) => {
                        // nats-server divides by it on every message (and
                        // panics on 0); refused here instead.
                        if buckets == 0 {
                            return Err(destination_error(INVALID_ARGUMENT, token));
                        }
                        Piece::Partition {
                            buckets,
                            tokens: placeholder.wildcards.iter().map(|&n| index(n)).collect(),
                        }
                    }
                    PlaceholderKind::SplitFromLeft(position) => Piece::SplitFromLeft {
                        token: first,
                        position,
                    },
                    PlaceholderKind::SplitFromRight(position) => Piece::SplitFromRight {
                        token: first,
                        position,
                    },
                    PlaceholderKind::SliceFromLeft(size) => {
                        Piece::SliceFromLeft { token: first, size }
                    }
                    PlaceholderKind::SliceFromRight(size) => {
                        Piece::SliceFromRight { token: first, size }
                    }
                    PlaceholderKind::Split(delimiter) => Piece::Split {
                        token: first,
                        delimiter,
                    },
                });
            }
            if placeholders < src.stars {
                return Err(destination_error(NOT_ALL_WILDCARDS, destination));
            }
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
            SubjectTransform::Map { destination, .. } => {
                // The subject's tokens, on the stack for any usual subject.
                let mut stack: [&[u8]; 32] = [b""; 32];
                let heap: Vec<&[u8]>;
                let count = tokens(subject).count();
                let subject_tokens: &[&[u8]] = if count <= stack.len() {
                    for (slot, token) in stack.iter_mut().zip(tokens(subject)) {
                        *slot = token;
                    }
                    &stack[..count]
                } else {
                    heap = tokens(subject).collect();
                    &heap
                };
                let token = |i: usize| subject_tokens.get(i).copied().unwrap_or(b"");
                for (i, piece) in destination.iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    write_piece(piece, &token, subject_tokens, out);
                }
            }
        }
    }
}

fn write_piece<'a>(
    piece: &Piece,
    token: &impl Fn(usize) -> &'a [u8],
    subject_tokens: &[&[u8]],
    out: &mut Vec<u8>,
) {
    match piece {
        Piece::Literal(bytes) => out.extend_from_slice(bytes),
        Piece::Wildcard(i) => out.extend_from_slice(token(*i)),
        Piece::Partition { buckets, tokens } => {
            let mut hash = Fnv1a32::default();
            for &i in tokens.iter() {
                hash.write(token(i));
            }
            // nats-server: `h % uint32(n)` with n its int32.
            let bucket = hash.0 % (*buckets as u32);
            write_decimal(bucket, out);
        }
        Piece::SplitFromLeft { token: i, position } => {
            let t = token(*i);
            match usize::try_from(*position) {
                Ok(p) if p > 0 && p < t.len() => {
                    out.extend_from_slice(&t[..p]);
                    out.push(b'.');
                    out.extend_from_slice(&t[p..]);
                }
                _ => out.extend_from_slice(t),
            }
        }
        Piece::SplitFromRight { token: i, position } => {
            let t = token(*i);
            match usize::try_from(*position) {
                Ok(p) if p > 0 && p < t.len() => {
                    out.extend_from_slice(&t[..t.len() - p]);
                    out.push(b'.');
                    out.extend_from_slice(&t[t.len() - p..]);
                }
                _ => out.extend_from_slice(t),
            }
        }
        Piece::SliceFromLeft { token: i, size } => {
            let t = token(*i);
            match usize::try_from(*size) {
                Ok(n) if n > 0 && n < t.len() => {
                    let mut start = 0;
                    while start + n <= t.len() {
                        if start != 0 {
                            out.push(b'.');
                        }
                        out.extend_from_slice(&t[start..start + n]);
                        if start + n != t.len() && start + 2 * n > t.len() {
                            out.push(b'.');
                            out.extend_from_slice(&t[start + n..]);
                            break;
                        }
                        start += n;
                    }
                }
                _ => out.extend_from_slice(t),
            }
        }
        Piece::SliceFromRight { token: i, size } => {
            let t = token(*i);
            match usize::try_from(*size) {
                Ok(n) if n > 0 && n < t.len() => {
                    let remainder = t.len() % n;
                    if remainder > 0 {
                        out.extend_from_slice(&t[..remainder]);
                        out.push(b'.');
                    }
                    let mut start = remainder;
                    while start + n <= t.len() {
                        out.extend_from_slice(&t[start..start + n]);
                        if start + n < t.len() {
                            out.push(b'.');
                        }
                        start += n;
                    }
                }
                _ => out.extend_from_slice(t),
            }
        }
        Piece::Split {
            token: i,
            delimiter,
        } => {
            let parts = split_like_go(token(*i), delimiter);
            // nats-server's joining: empty parts dropped, and no dot
            // before an empty part or after a leading empty one.
            for (j, part) in parts.iter().enumerate() {
                out.extend_from_slice(part);
                let next_non_empty = parts.get(j + 1).is_some_and(|p| !p.is_empty());
                if next_non_empty && !(j == 0 && part.is_empty()) {
                    out.push(b'.');
                }
            }
        }
        Piece::Tail(from) => {
            for (k, t) in subject_tokens.iter().skip(*from).enumerate() {
                if k > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(t);
            }
        }
    }
}

/// Go's `strings.Split`: an empty delimiter cuts after each UTF-8
/// character (each byte of an invalid sequence on its own).
fn split_like_go<'a>(text: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    if delimiter.is_empty() {
        let mut rest = text;
        while !rest.is_empty() {
            let len = utf8_char_len(rest);
            parts.push(&rest[..len]);
            rest = &rest[len..];
        }
        return parts;
    }
    let mut start = 0;
    let mut i = 0;
    while i + delimiter.len() <= text.len() {
        if &text[i..i + delimiter.len()] == delimiter {
            parts.push(&text[start..i]);
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The length of the UTF-8 character `bytes` starts with (1 when invalid).
fn utf8_char_len(bytes: &[u8]) -> usize {
    let want = match bytes[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return 1,
    };
    match bytes.get(..want).map(std::str::from_utf8) {
        Some(Ok(_)) => want,
        _ => 1,
    }
}

/// 32-bit FNV-1a, Go's `hash/fnv` `New32a` (nats-server's partition hash).
struct Fnv1a32(u32);

impl Default for Fnv1a32 {
    fn default() -> Self {
        Fnv1a32(0x811c_9dc5)
    }
}

impl Fnv1a32 {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// `n` in decimal, without a temporary string.
fn write_decimal(mut n: u32, out: &mut Vec<u8>) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[..len].iter().rev());
}

/// nats-server's `subjectInfo`: `None` for an invalid subject (empty, an
/// empty token, anything after `>`), else its `*` count and whether it
/// ends in `>`. Spaces are not checked here (the destination check is).
struct SubjectInfo {
    stars: usize,
    tail: bool,
}

impl SubjectInfo {
    fn of(subject: &str) -> Option<SubjectInfo> {
        if subject.is_empty() {
            return None;
        }
        let mut info = SubjectInfo {
            stars: 0,
            tail: false,
        };
        for token in subject.split('.') {
            if token.is_empty() || info.tail {
                return None;
            }
            match token {
                "*" => info.stars += 1,
                ">" => info.tail = true,
                _ => {}
            }
        }
        Some(info)
    }
}

/// nats-server's `ValidateMappingDestination`, checked on a mapping's
/// destination before its transform is built: no empty token, nothing
/// after `>`, no white space outside `{{...}}`, and only known functions.
pub fn validate_destination(destination: &str) -> Result<(), String> {
    let mut after_tail = false;
    for token in destination.split('.') {
        if token.is_empty() || after_tail {
            return Err(destination_error(INVALID_SUBJECT, token));
        }
        if is_mustache(token) {
            if FUNCTIONS
                .iter()
                .all(|name| function_arguments(token, name).is_none())
            {
                return Err(destination_error(UNKNOWN_FUNCTION, token));
            }
            continue;
        }
        if token == ">" {
            after_tail = true;
        } else if token.bytes().any(is_go_space) {
            return Err(format!("invalid mapping destination: {INVALID_SUBJECT}"));
        }
    }
    Ok(())
}

/// `{{...}}` with something inside.
fn is_mustache(token: &str) -> bool {
    token.len() > 4 && token.starts_with("{{") && token.ends_with("}}")
}

/// RE2's `\s`.
fn is_go_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// nats-server's `indexPlaceHolders`: `$n`, or a `{{function(...)}}`,
/// with its arguments; `None` for a literal token.
fn placeholder(token: &str) -> Result<Option<Placeholder>, String> {
    if token.len() <= 1 {
        return Ok(None);
    }
    if let Some(number) = token.strip_prefix('$') {
        // Other things rely on `$` tokens, so one that is not a number is
        // a literal.
        return Ok(number.parse::<i64>().ok().map(|n| Placeholder {
            piece: PlaceholderKind::Wildcard,
            wildcards: vec![n],
        }));
    }
    if !is_mustache(token) {
        return Ok(None);
    }
    let fail = |reason: &str| Err(destination_error(reason, token));
    let number = |text: &str| text.trim_matches(' ').parse::<i64>().ok();
    if let Some(args) = function_arguments(token, WILDCARD) {
        return match args.as_slice() {
            [""] => fail(NOT_ENOUGH_ARGUMENTS),
            [one] => match number(one) {
                Some(n) => Ok(Some(Placeholder {
                    piece: PlaceholderKind::Wildcard,
                    wildcards: vec![n],
                })),
                None => fail(INVALID_ARGUMENT),
            },
            _ => fail(TOO_MANY_ARGUMENTS),
        };
    }
    if let Some(args) = function_arguments(token, PARTITION) {
        if args.len() < 2 {
            return fail(NOT_ENOUGH_ARGUMENTS);
        }
        let Some(buckets) = number(args[0]) else {
            return fail(INVALID_ARGUMENT);
        };
        let mut wildcards = Vec::new();
        for arg in &args[1..] {
            match number(arg) {
                Some(n) => wildcards.push(n),
                None => return fail(INVALID_ARGUMENT),
            }
        }
        return Ok(Some(Placeholder {
            // nats-server keeps the count in an int32.
            piece: PlaceholderKind::Partition(buckets as i32),
            wildcards,
        }));
    }
    type Make = fn(i32) -> PlaceholderKind;
    let index_and_number: [(&str, Make); 4] = [
        (SPLIT_FROM_LEFT, PlaceholderKind::SplitFromLeft),
        (SPLIT_FROM_RIGHT, PlaceholderKind::SplitFromRight),
        (SLICE_FROM_LEFT, PlaceholderKind::SliceFromLeft),
        (SLICE_FROM_RIGHT, PlaceholderKind::SliceFromRight),
    ];
    for (name, make) in index_and_number {
        let Some(args) = function_arguments(token, name) else {
            continue;
        };
        return match args.as_slice() {
            [_] => fail(NOT_ENOUGH_ARGUMENTS),
            [index, value] => match (number(index), number(value)) {
                (Some(index), Some(value)) => Ok(Some(Placeholder {
                    piece: make(value as i32),
                    wildcards: vec![index],
                })),
                _ => fail(INVALID_ARGUMENT),
            },
            _ => fail(TOO_MANY_ARGUMENTS),
        };
    }
    if let Some(args) = function_arguments(token, SPLIT) {
        return match args.as_slice() {
            [_] => fail(NOT_ENOUGH_ARGUMENTS),
            [index, delimiter] => match number(index) {
                Some(_) if delimiter.contains(' ') || delimiter.contains('.') => {
                    fail(INVALID_ARGUMENT)
                }
                Some(index) => Ok(Some(Placeholder {
                    piece: PlaceholderKind::Split(delimiter.as_bytes().into()),
                    wildcards: vec![index],
                })),
                None => fail(INVALID_ARGUMENT),
            },
            _ => fail(TOO_MANY_ARGUMENTS),
        };
    }
    fail(UNKNOWN_FUNCTION)
}

/// The arguments of function `name` in `token`, as nats-server's pattern
/// `{{\s*name\s*\((.*)\)\s*}}` finds them (anywhere in the token, the
/// parentheses' content as long as it can be), split at `,\s*`; `None`
/// when the pattern is not there.
fn function_arguments<'a>(token: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let bytes = token.as_bytes();
    let skip_space = |mut i: usize| {
        while bytes.get(i).copied().is_some_and(is_go_space) {
            i += 1;
        }
        i
    };
    for start in 0..bytes.len() {
        if !bytes[start..].starts_with(b"{{") {
            continue;
        }
        let mut i = skip_space(start + 2);
        if !name_at(&bytes[i.min(bytes.len())..], name) {
            continue;
        }
        i = skip_space(i + name.len());
        if bytes.get(i) != Some(&b'(') {
            continue;
        }
        let open = i + 1;
        // `.` stops at a newline; the longest content wins.
        let limit = bytes[open..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |n| open + n);
        let close = (open..limit.min(bytes.len()))
            .rev()
            .find(|&c| bytes[c] == b')' && bytes[skip_space(c + 1)..].starts_with(b"}}"));
        if let Some(close) = close {
            return Some(split_arguments(&token[open..close]));
        }
    }
    None
}

/// Whether `text` starts with function `name` as nats-server's patterns
/// spell it (see [`FUNCTIONS`]).
fn name_at(text: &[u8], name: &str) -> bool {
    text.len() >= name.len()
        && name.bytes().zip(text).all(|(want, &got)| {
            if want.is_ascii_uppercase() {
                got.eq_ignore_ascii_case(&want)
            } else {
                got == want
            }
        })
}

/// Go's `regexp.MustCompile(",\s*").Split(s, -1)`.
fn split_arguments(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b',' {
            parts.push(&text[start..i]);
            i += 1;
            while bytes.get(i).copied().is_some_and(is_go_space) {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &SubjectTransform, subject: &str) -> String {
        let mut out = Vec::new();
        t.apply(subject.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn map(source: &str, destination: &str, subject: &str) -> String {
        let t = SubjectTransform::new(source, destination)
            .unwrap_or_else(|e| panic!("{source} -> {destination}: {e}"));
        run(&t, subject)
    }

    fn refused(source: &str, destination: &str) -> String {
        match SubjectTransform::new(source, destination) {
            Ok(_) => panic!("{source} -> {destination} accepted"),
            Err(e) => e,
        }
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
    fn import_mapping_places_wildcards() {
        let literal = SubjectTransform::mapping("foo", "bar").unwrap();
        assert_eq!(run(&literal, "foo"), "bar");
        let positional = SubjectTransform::mapping("a.*.*", "b.*.*").unwrap();
        assert_eq!(run(&positional, "a.x.y"), "b.x.y");
        let swapped = SubjectTransform::mapping("a.*.*", "b.$2.{{wildcard(1)}}").unwrap();
        assert_eq!(run(&swapped, "a.x.y"), "b.y.x");
        let tail = SubjectTransform::mapping("req.*.>", "svc.$1.>").unwrap();
        assert_eq!(run(&tail, "req.one.two.three"), "svc.one.two.three");
        assert!(SubjectTransform::mapping("a.*", "b.$2").is_err());
        assert!(SubjectTransform::mapping("a.*", "b.>").is_err());
    }

    #[test]
    fn wildcards_and_tail() {
        assert_eq!(map("a.*.*", "b.$2.$1", "a.x.y"), "b.y.x");
        assert_eq!(map("a.*.*", "b.{{ Wildcard( 2 ) }}.$1", "a.x.y"), "b.y.x");
        assert_eq!(map("a.*.>", "b.$1.>", "a.x.y.z"), "b.x.y.z");
        assert_eq!(map("a.>", ">", "a.x.y"), "x.y");
        assert_eq!(map("a.*.*", "b.$1.$1", "a.x.y"), "b.x.x");
        // A source without wildcards maps to the destination as written.
        assert_eq!(map("a", "b.$1", "a"), "b.$1");
        // `$` and a non-number stays literal.
        assert_eq!(map("a.*", "$x.$1", "a.q"), "$x.q");
    }

    #[test]
    fn partition_is_fnv1a_modulo() {
        // FNV-1a("foo") = 0xa9f37ed7 = 2851307223; % 7 = 2.
        assert_eq!(map("p.*", "p.{{partition(7,1)}}.$1", "p.foo"), "p.2.foo");
        // Several tokens hash concatenated: ("fo","o") == ("foo").
        assert_eq!(map("p.*.*", "{{partition(7,1,2)}}.$1", "p.fo.o"), "2.fo");
        assert!(refused("p.*", "{{partition(0,1)}}").contains("invalid"));
    }

    #[test]
    fn split_and_slice_functions() {
        assert_eq!(map("*", "{{splitFromLeft(1,2)}}", "abcdef"), "ab.cdef");
        assert_eq!(map("*", "{{SplitFromRight(1,2)}}", "abcdef"), "abcd.ef");
        assert_eq!(map("*", "{{splitFromLeft(1,9)}}", "abc"), "abc");
        assert_eq!(map("*", "{{sliceFromLeft(1,2)}}", "abcde"), "ab.cd.e");
        assert_eq!(map("*", "{{sliceFromLeft(1,2)}}", "abcd"), "ab.cd");
        assert_eq!(map("*", "{{sliceFromRight(1,2)}}", "abcde"), "a.bc.de");
        assert_eq!(map("*", "{{sliceFromRight(1,2)}}", "abcd"), "ab.cd");
        assert_eq!(map("*", "{{split(1,-)}}", "-a--b-"), "a.b");
        assert_eq!(map("*", "{{split(1,-)}}", "a-b"), "a.b");
        assert_eq!(map("*", "x.{{split(1,-)}}", "abc"), "x.abc");
    }

    #[test]
    fn errors_read_as_nats_server_words_them() {
        assert_eq!(refused("a.*", "b.*"), "invalid subject");
        assert_eq!(refused("a.*", "b.>"), "invalid subject");
        assert_eq!(
            refused("a.*", "b.$2"),
            "invalid mapping destination: wildcard index out of range in $2: [2]"
        );
        assert_eq!(
            refused("a.*.*", "b.$1"),
            "invalid mapping destination: not using all of the token wildcard(s) in b.$1"
        );
        assert_eq!(
            refused("a.*", "{{partition(3)}}"),
            "invalid mapping destination: not enough arguments passed to the function in {{partition(3)}}"
        );
        assert_eq!(
            refused("a.*", "{{wildcard(1,2)}}"),
            "invalid mapping destination: too many arguments passed to the function in {{wildcard(1,2)}}"
        );
        assert_eq!(
            refused("a.*", "{{wildcard(x)}}"),
            "invalid mapping destination: function argument is invalid or in the wrong format in {{wildcard(x)}}"
        );
        assert_eq!(
            refused("a.*", "{{nope(1)}}"),
            "invalid mapping destination: unknown function in {{nope(1)}}"
        );
        assert_eq!(
            validate_destination("b.{{nope(1)}}").unwrap_err(),
            "invalid mapping destination: unknown function in {{nope(1)}}"
        );
        assert_eq!(
            validate_destination("b..c").unwrap_err(),
            "invalid mapping destination: invalid subject in "
        );
        assert_eq!(
            validate_destination("b c").unwrap_err(),
            "invalid mapping destination: invalid subject"
        );
        assert!(validate_destination("b.{{partition(3, 1)}}").is_ok());
    }
}
