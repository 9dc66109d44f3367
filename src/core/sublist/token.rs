//! A trie edge's token, stored in 16 bytes: inline when it is at most
//! [`INLINE`] bytes long (digits, short words: most subject tokens), boxed
//! beyond. A boxed token costs a heap block of 32 bytes or more besides,
//! one per subscribed subject token; inline ones cost nothing more.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Longest token kept inline (what fits beside the enum's niche in 16
/// bytes).
const INLINE: usize = 7;

#[derive(Clone)]
pub(super) enum Token {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<[u8]>),
}

impl Token {
    pub(super) fn new(token: &[u8]) -> Token {
        if token.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..token.len()].copy_from_slice(token);
            Token::Inline {
                len: token.len() as u8,
                bytes,
            }
        } else {
            Token::Boxed(token.into())
        }
    }

    #[inline]
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Token::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Token::Boxed(bytes) => bytes,
        }
    }
}

// Equality, hashing and `Borrow<[u8]>` all go through the bytes, so a map
// keyed by `Token` is searched with a plain `&[u8]`.
impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Token {}

impl Hash for Token {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Token {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes_inline_or_boxed() {
        assert_eq!(std::mem::size_of::<Token>(), 16);
        for text in [
            &b""[..],
            b"x",
            b"1234567",
            b"12345678",
            b"a-much-longer-token",
        ] {
            let token = Token::new(text);
            assert_eq!(token.as_bytes(), text);
            assert_eq!(matches!(token, Token::Inline { .. }), text.len() <= INLINE);
        }
        assert_eq!(Token::new(b"abc"), Token::new(b"abc"));
        assert_ne!(Token::new(b"abc"), Token::new(b"abd"));
    }
}
